// The Prometheus text exposition format, read as a scraper reads it: one
// sample per line, `name{label="value",...} value`; comments skipped.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export type Samples = Sample[];

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Samples {
  const out: Samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = LINE.exec(line.trim());
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c));
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.push({ name: m[1]!, labels, value: v });
  }
  return out;
}

/** The sum of the samples called `name` whose labels include `labels` (undefined when none). */
export function sample(s: Samples, name: string, labels: Record<string, string>): number | undefined {
  let found = false;
  let sum = 0;
  for (const x of s) {
    if (x.name !== name) continue;
    if (Object.entries(labels).some(([k, v]) => x.labels[k] !== v)) continue;
    found = true;
    sum += x.value;
  }
  return found ? sum : undefined;
}

/** Every metric family name a page has (a histogram's _bucket/_sum/_count and a counter's _total as they are written). */
export function names(s: Samples): Set<string> {
  return new Set(s.map((x) => x.name));
}
