// Types of check-walls.mjs, for the test that runs it (tests/walls).
export interface Wall {
  wall: string;
  from: string[];
  to?: string[];
  only?: string[];
}
export interface Crossing {
  file: string;
  line: number;
  import: string;
  room: string;
  wall: string;
}
export declare const WALLS: Wall[];
export declare const ALLOWED_FOR_NOW: Array<{ file: string; import: string; why: string }>;
export declare function roomOfPath(path: string): string | null;
export declare function wallsCrossed(room: string, target: { room?: string; pkg?: string; name: string }): string[];
export declare function importsOf(file: string, source: string): Array<{ spec: string; line: number }>;
export declare function sourceFiles(root: string): string[];
export declare function checkWalls(root: string, sources?: Record<string, string>): Crossing[];
