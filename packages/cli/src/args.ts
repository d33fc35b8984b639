// Command lines as procps and psmisc read them, which commander cannot:
// a signal given as an option (`kill -9`, `pkill -HUP`, `killall -TERM`),
// negative operands (`kill -TERM -42`, a process group), bundled flags
// (`pgrep -fl`), values attached or apart (`-sKILL`, `-s KILL`, `--signal=KILL`)
// and `--`. main.ts declares the same options to commander for --help and
// completion only.
import { signalNumber } from "@hurdmesh/mach";
import { UsageError } from "./errors.js";

export interface OptDef {
  short?: string;
  long?: string;
  /** Takes a value (the next word, or attached). */
  value?: boolean;
  /** May repeat: its values are collected. */
  many?: boolean;
}

export interface Parsed {
  opts: Record<string, string | boolean | string[]>;
  operands: string[];
  /** The signal given as `-SIGNAL` (kill, pkill, killall), as written. */
  signal?: string;
}

export interface GetoptRules {
  /**
   * Where `-SIGNAL` is taken: "first" (procps: before any other option or
   * operand, for kill and pkill), "any" (psmisc's killall), or never.
   */
  signalOption?: "first" | "any";
  /** After the signal, `-N` is an operand (kill's negative pids: process groups). */
  negativeOperands?: boolean;
}

/** A word that names a signal when written as an option: -9, -TERM, -SIGTERM, -term. */
export function isSignalWord(w: string): boolean {
  return /^-(\d+|[A-Za-z][A-Za-z0-9+-]*)$/.test(w) && (w === "-0" || signalNumber(w.slice(1)) !== undefined);
}

export function getopt(argv: string[], defs: Record<string, OptDef>, rules: GetoptRules = {}): Parsed {
  const out: Parsed = { opts: {}, operands: [] };
  const byShort = new Map<string, [string, OptDef]>();
  const byLong = new Map<string, [string, OptDef]>();
  for (const [k, d] of Object.entries(defs)) {
    if (d.short) byShort.set(d.short, [k, d]);
    if (d.long) byLong.set(d.long, [k, d]);
  }
  const set = (k: string, d: OptDef, v: string | boolean) => {
    if (d.many) out.opts[k] = [...((out.opts[k] as string[] | undefined) ?? []), String(v)];
    else out.opts[k] = v;
  };
  let shortSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === "--") {
      out.operands.push(...argv.slice(i + 1));
      break;
    }
    if (w.startsWith("--")) {
      const eq = w.indexOf("=");
      const name = eq < 0 ? w.slice(2) : w.slice(2, eq);
      const hit = byLong.get(name);
      if (!hit) throw new UsageError(`unrecognized option '--${name}'`);
      const [k, d] = hit;
      if (d.value) {
        const v = eq >= 0 ? w.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`option '--${name}' requires an argument`);
        set(k, d, v);
      } else if (eq >= 0) throw new UsageError(`option '--${name}' takes no argument`);
      else set(k, d, true);
      continue;
    }
    if (w.startsWith("-") && w.length > 1) {
      // "first": before any operand or short option (long ones such as --hurd may come before it).
      const signalHere = rules.signalOption === "any" || (rules.signalOption === "first" && !out.operands.length && !shortSeen);
      // "-INT" is a signal even where -I is a flag: a word is a bundle of flags only if every letter is one.
      const bundle = [...w.slice(1)].every((ch) => byShort.has(ch));
      if (signalHere && out.signal === undefined && isSignalWord(w) && !bundle) {
        out.signal = w.slice(1);
        continue;
      }
      if (rules.negativeOperands && /^-\d+$/.test(w)) {
        out.operands.push(w);
        continue;
      }
      // Bundled short flags; a flag that takes a value ends the bundle.
      shortSeen = true;
      for (let j = 1; j < w.length; j++) {
        const hit = byShort.get(w[j]!);
        if (!hit) {
          if (signalHere && isSignalWord(w)) throw new UsageError(`give the signal once: ${w}`);
          if (rules.signalOption === "first" && isSignalWord(w)) throw new UsageError(`a signal given as ${w} must come first (or use --signal ${w.slice(1)})`);
          if (signalHere && /^-(\d+|[A-Z][A-Z0-9]*)$/.test(w)) throw new UsageError(`unknown signal name or number: ${w.slice(1)}`);
          throw new UsageError(`invalid option -- '${w[j]}'`);
        }
        const [k, d] = hit;
        if (d.value) {
          const v = j + 1 < w.length ? w.slice(j + 1) : argv[++i];
          if (v === undefined) throw new UsageError(`option requires an argument -- '${w[j]}'`);
          set(k, d, v);
          break;
        }
        set(k, d, true);
      }
      continue;
    }
    out.operands.push(w);
  }
  return out;
}

/** A signal as procps takes it ("9", "KILL", "SIGKILL", "kill"; 0 checks that a process exists). */
export function parseSignal(s: string): number {
  if (s === "0") return 0;
  const n = signalNumber(s);
  if (n === undefined) throw new UsageError(`unknown signal name or number: ${s}`);
  return n;
}

/** HOST:PORT as --listen and `hurd up --web` take it; anything else is a command line the command cannot take. */
export function checkListen(a: string): string {
  const i = a.lastIndexOf(":");
  const port = a.slice(i + 1);
  if (i <= 0 || !/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new UsageError(`not HOST:PORT: ${a}`);
  return a;
}
