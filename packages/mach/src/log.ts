// Structured logs for every hurdmesh program: pino, one JSON object a line
// on stdout when it is not a terminal (docker compose logs, Kubernetes'
// collectors), short readable lines on a terminal. Each line carries its
// level, the component that wrote it, the hurd's name when the component
// knows it, and, inside a trace, the trace and span ids of the active span
// (OpenTelemetry's log data model names them trace_id and span_id) so a line
// leads to its trace in Jaeger.
//
//   HURD_LOG_LEVEL   trace, debug, info (default), warn, error, fatal, silent
//   HURD_LOG_FORMAT  json or text: what a terminal or a pipe would get otherwise
//
// pino is loaded at a logger's first line, not at import: every program that
// imports the runtime imports this module, and `hurd ps` logs nothing.
import { createRequire } from "node:module";
import { tracingHooks } from "./hooks.js";
import { hexOf, isTraceContext } from "./trace-context.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a component writes its lines: a test passes a function that keeps them, a program its logger's sink. */
export type LogSink = (line: string, level?: LogLevel) => void;

export interface Logger {
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  fatal(msg: string, fields?: Record<string, unknown>): void;
  /** The same logger with more fields on every line (a component, a hurd's name). */
  child(bindings: Record<string, unknown>): Logger;
  /** This logger as a LogSink, info unless the caller says otherwise. */
  readonly sink: LogSink;
}

/** The few pino methods used here (pino's own types would make every importer load them). */
interface Pino {
  child(bindings: Record<string, unknown>): Pino;
  [level: string]: unknown;
}

let root: Pino | null = null;

/** The environment's choice of format: text on a terminal, JSON elsewhere, HURD_LOG_FORMAT over both. */
export function logFormat(env: NodeJS.ProcessEnv = process.env, tty = process.stdout.isTTY === true): "json" | "text" {
  const f = env.HURD_LOG_FORMAT;
  return f === "json" || f === "text" ? f : tty ? "text" : "json";
}

function rootLogger(): Pino {
  if (root) return root;
  const pino = createRequire(import.meta.url)("pino") as {
    (o: object, dest: object): Pino;
    destination(o: object): object;
    stdTimeFunctions: { isoTime: () => string };
  };
  const env = process.env.HURD_LOG_LEVEL?.toLowerCase();
  const level = env && (env === "silent" || (LOG_LEVELS as readonly string[]).includes(env)) ? env : "info";
  // Synchronous writes: a program that logs and exits (a crash report) loses no line.
  const out = pino.destination({ fd: 1, sync: true });
  root = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not pino's numbers: what log collectors and people search for.
      formatters: { level: (label: string) => ({ level: label }) },
      mixin: traceFields,
    },
    logFormat() === "text" ? new TextLines(out as { write(s: string): void }) : out,
  );
  return root;
}

/** The active span's ids, when this process traces and something runs inside a trace. */
function traceFields(): Record<string, string> {
  const c = tracingHooks.current?.();
  if (!c || !isTraceContext(c)) return {};
  return { trace_id: hexOf(c, 0, 16), span_id: hexOf(c, 16, 24) };
}

/** A logger named after its component ("kernel", "init", "hurd-proc"); bindings go on every line. */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return new LazyLogger({ name, ...dropEmpty(bindings) });
}

function dropEmpty(b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

class LazyLogger implements Logger {
  private p: Pino | null = null;
  constructor(private readonly bindings: Record<string, unknown>) {}
  private get pino(): Pino {
    return (this.p ??= rootLogger().child(this.bindings));
  }
  private write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    const f = this.pino[level] as (this: Pino, o: object, m: string) => void;
    f.call(this.pino, fields ?? {}, msg);
  }
  trace(msg: string, fields?: Record<string, unknown>): void {
    this.write("trace", msg, fields);
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write("error", msg, fields);
  }
  fatal(msg: string, fields?: Record<string, unknown>): void {
    this.write("fatal", msg, fields);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new LazyLogger({ ...this.bindings, ...dropEmpty(bindings) });
  }
  readonly sink: LogSink = (line, level = "info") => this.write(level, line);
}

const COLOURS: Record<string, string> = { trace: "90", debug: "90", info: "32", warn: "33", error: "31", fatal: "35" };
const QUIET_KEYS = new Set(["level", "time", "pid", "name", "msg", "hurd", "trace_id", "span_id"]);

/**
 * pino's JSON lines turned into text for a person at a terminal:
 *   12:04:05.120 INFO  init[alpha]: core servers up: auth, proc  trace=4bf92f35
 * (pino-pretty does the same with a dozen dependencies.)
 */
export class TextLines {
  constructor(
    private readonly out: { write(s: string): void },
    private readonly colour = process.stdout.isTTY === true && !process.env.NO_COLOR,
  ) {}
  write(line: string): void {
    this.out.write(formatLogLine(line, this.colour));
  }
}

export function formatLogLine(line: string, colour = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = String(o.level ?? "info");
  const time = typeof o.time === "string" ? o.time.slice(11, 23) : "";
  const lv = level.toUpperCase().padEnd(5);
  const who = `${o.name ?? ""}${o.hurd ? `[${o.hurd}]` : ""}`;
  const extra = Object.entries(o)
    .filter(([k]) => !QUIET_KEYS.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  if (o.trace_id) extra.push(`trace=${String(o.trace_id).slice(0, 8)}`);
  const head = colour ? `\x1b[2m${time}\x1b[0m \x1b[${COLOURS[level] ?? "0"}m${lv}\x1b[0m` : `${time} ${lv}`;
  return `${head} ${who ? `${who}: ` : ""}${o.msg ?? ""}${extra.length ? `  ${extra.join(" ")}` : ""}\n`;
}
