#!/usr/bin/env node
// The walls between hurdmesh's rooms, checked: every import of every source
// file under packages/ and services/ (static, dynamic, `export … from`, type
// imports) is read with the TypeScript compiler's parser and held against
// WALLS below. A crossing prints file:line and the wall, and the check
// fails. `npm run check:walls`; CI runs it.
//
//   node scripts/check-walls.mjs [ROOT]
//
// Rooms are the workspace's packages (packages/<x>, services/<x>), named as
// the architecture names them: proto, runtime (packages/mach), kernel,
// proc, auth, init, libhurd, iohelp, telemetry, cli and boot (the
// composition root). An import names a room (@hurdmesh/<x>, or a relative
// path into another package's folder) or an outside package (@grpc/grpc-js).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const SERVICES = ["kernel", "proc", "auth", "init"];
/** Outside packages that are a transport: NATS's client and gRPC's. */
const TRANSPORTS = ["@nats-io/*", "nats", "@grpc/*", "grpc-health-check"];

/**
 * The walls: who (`from`, rooms) must not import what (`to`: rooms or
 * outside packages, `*` ending a scope), or may import only what (`only`:
 * rooms; no outside package at all). A room never crosses a wall into itself.
 */
export const WALLS = [
  { wall: "the kernel holds no Hurd policy and imports no server", from: ["kernel"], to: ["proc", "auth", "init", "libhurd", "iohelp"] },
  { wall: "no service imports another service's code: they meet only through stubs", from: SERVICES, to: SERVICES },
  { wall: "proc, auth and init never import NATS or grpc-js: transport lives in the runtime", from: ["proc", "auth", "init"], to: TRANSPORTS },
  { wall: "the runtime imports no service, nor anything built on it", from: ["runtime"], to: [...SERVICES, "libhurd", "iohelp", "telemetry", "cli", "boot"] },
  { wall: "init depends only on the runtime, the stubs and the telemetry API", from: ["init"], only: ["runtime", "proto", "telemetry"] },
  { wall: "the libraries (libhurd, iohelp, telemetry) import no service", from: ["libhurd", "iohelp", "telemetry"], to: SERVICES },
  { wall: "only the composition roots (boot, cli) compose a hurd: nothing else imports them", from: ["proto", "runtime", ...SERVICES, "libhurd", "iohelp", "telemetry"], to: ["boot", "cli"] },
  { wall: "the boot script composes servers, it is no command: boot does not import the CLI", from: ["boot"], to: ["cli"] },
  { wall: "instrumented code imports the telemetry API, never the SDK: only a program's entry point builds one", from: ["runtime", "proc", "auth", "init", "libhurd", "iohelp", "telemetry"], to: ["telemetry-sdk"] },
];
/** Packages meet through their names (@hurdmesh/x and its exports), never by a relative path into another's files. */
const BY_PATH = "a package is imported by its name, never by a path into its files";

/**
 * Crossings that exist only until another branch that removes them is
 * merged: { file, import, why }. Empty: every crossing this check found on
 * this branch was removed here.
 */
export const ALLOWED_FOR_NOW = [];

/** Package folders and the rooms they are. */
const ROOMS = {
  "packages/proto": "proto",
  "packages/mach": "runtime",
  "packages/libhurd": "libhurd",
  "packages/iohelp": "iohelp",
  "packages/telemetry": "telemetry",
  "packages/telemetry-sdk": "telemetry-sdk",
  "packages/cli": "cli",
  "packages/boot": "boot",
  "services/kernel": "kernel",
  "services/proc": "proc",
  "services/auth": "auth",
  "services/init": "init",
};
/** @hurdmesh/<name> -> room. */
const PACKAGES = { proto: "proto", mach: "runtime", libhurd: "libhurd", iohelp: "iohelp", telemetry: "telemetry", "telemetry-sdk": "telemetry-sdk", cli: "cli", boot: "boot", kernel: "kernel", proc: "proc", auth: "auth", init: "init" };

/** The room a repository-relative path lies in: a known one, else its package folder's name, else null (tests/, bench/, …). */
export function roomOfPath(path) {
  const [top, name] = path.split("/");
  if ((top !== "packages" && top !== "services") || !name) return null;
  return ROOMS[`${top}/${name}`] ?? name;
}

/** What an import names: { room } in the workspace, { pkg } outside it, or null (node: built-ins, unresolved files outside every room). */
function targetOf(spec, file) {
  if (spec.startsWith("node:")) return null;
  if (spec.startsWith(".")) {
    const room = roomOfPath(join(dirname(file), spec).split(sep).join("/"));
    return room ? { room, name: spec } : null;
  }
  const parts = spec.split("/");
  const pkg = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  if (pkg.startsWith("@hurdmesh/")) {
    const n = pkg.slice("@hurdmesh/".length);
    return { room: PACKAGES[n] ?? n, name: spec };
  }
  return { pkg, name: spec };
}

function matchesPackage(pattern, pkg) {
  return pattern.endsWith("/*") ? pkg.startsWith(pattern.slice(0, -1)) : pattern === pkg;
}

/** The walls `target`, imported from `room`, crosses. */
export function wallsCrossed(room, target) {
  const out = [];
  if (target.room === room) return out;
  for (const w of WALLS) {
    if (!w.from.includes(room)) continue;
    if (w.only) {
      if (!(target.room && w.only.includes(target.room))) out.push(w.wall);
    } else if (target.room ? w.to.includes(target.room) : w.to.some((p) => matchesPackage(p, target.pkg))) out.push(w.wall);
  }
  return out;
}

/** Every module specifier in `source`, with its line (1-based). */
export function importsOf(file, source) {
  const kind = file.endsWith(".ts") || file.endsWith(".mts") || file.endsWith(".cts") ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, kind);
  const out = [];
  const add = (lit) => {
    if (lit && ts.isStringLiteralLike(lit)) out.push({ spec: lit.text, line: sf.getLineAndCharacterOfPosition(lit.getStart(sf)).line + 1 });
  };
  const visit = (n) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier) add(n.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) add(n.moduleReference.expression);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) add(n.argument.literal);
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === "require")) && n.arguments.length === 1)
      add(n.arguments[0]);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;

/** Source files under packages/ and services/ of `root`, repository-relative; generated code and dependencies skipped. */
export function sourceFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(join(root, dir))) {
      if (e === "node_modules" || e === "gen" || e === "dist" || e.startsWith(".")) continue;
      const p = `${dir}/${e}`;
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (SOURCE.test(e) && !e.endsWith(".d.ts")) out.push(p);
    }
  };
  for (const top of ["packages", "services"]) {
    try {
      walk(top);
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
  }
  return out.sort();
}

/**
 * Checks sources against the walls. `sources` maps repository-relative
 * paths to their text (default: every source file under `root`). Answers
 * the crossings, { file, line, import, room, wall }, allowed ones left out.
 */
export function checkWalls(root, sources) {
  const files = sources ? Object.keys(sources).sort() : sourceFiles(root);
  const crossings = [];
  for (const file of files) {
    const room = roomOfPath(file);
    if (!room) continue;
    const text = sources ? sources[file] : readFileSync(join(root, file), "utf8");
    for (const { spec, line } of importsOf(file, text)) {
      const target = targetOf(spec, file);
      if (!target) continue;
      const walls = wallsCrossed(room, target);
      if (spec.startsWith(".") && target.room && target.room !== room) walls.push(BY_PATH);
      for (const wall of walls) {
        if (ALLOWED_FOR_NOW.some((a) => a.file === file && a.import === spec)) continue;
        crossings.push({ file, line, import: spec, room, wall });
      }
    }
  }
  return crossings;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const crossings = checkWalls(root);
  for (const c of crossings) console.error(`${c.file}:${c.line}: ${c.room} imports ${c.import}: crosses "${c.wall}"`);
  if (crossings.length) {
    console.error(`check:walls: ${crossings.length} crossing${crossings.length === 1 ? "" : "s"} (the walls are in scripts/check-walls.mjs)`);
    process.exit(1);
  }
  console.log(`check:walls: ${sourceFiles(root).length} files, no wall crossed`);
}
