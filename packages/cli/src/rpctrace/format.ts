// rpctrace's output, from the kernel's trace records: one line per RPC, the
// request `who->rpc (args)` completed by its reply ` = 0 {out args}` or
// ` = 0x40000003 (ESRCH)`. When another message comes between a request and
// its reply, the request's line ends with ` ...N` and the reply later
// appears as `N... = ...` (N is the request's record number), as rpctrace
// does with reply ports. Unknown ids print as numbers.
import { errnoName } from "@hurdmesh/mach";
import { registry, type Registry } from "@hurdmesh/mach/registry";
import type { TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import {
  DeadNameNotification,
  NewTaskNotification,
  NoSendersNotification,
  PortDeletedNotification,
  PortDestroyedNotification,
  SendOnceNotification,
  TaskTerminatedNotification,
} from "@hurdmesh/proto/hurd/mach/v1/mach";

const NOTIFY_BODIES: Record<number, { decode(b: Uint8Array): unknown }> = {
  65: PortDeletedNotification,
  69: PortDestroyedNotification,
  70: NoSendersNotification,
  71: SendOnceNotification,
  72: DeadNameNotification,
  4400: NewTaskNotification,
  4401: TaskTerminatedNotification,
};

export interface FormatOptions {
  /** A task's symbolic name: "task12(pid105)" (default "task12"). */
  who?: (taskId: number) => string;
  registry?: Registry;
  /** Strings longer than this are cut (rpctrace's -s, default 80). */
  strsize?: number;
  /** Prefix each line with the time (rpctrace's -t). */
  timestamps?: boolean;
  /** What ends a message's line (`--links`: " <Jaeger URL of its trace>"); "" for none. */
  link?: (r: TraceRecord) => string;
}

/** A trace id's 16 bytes as the 32 hex digits Jaeger and W3C write ("" when there is none). */
export function traceIdHex(id: Uint8Array): string {
  return id.length === 16 ? Buffer.from(id.buffer, id.byteOffset, 16).toString("hex") : "";
}

/** The Jaeger UI's page of a record's trace under `base` ("" when the record carries no trace). */
export function jaegerLink(base: string, r: TraceRecord): string {
  const id = traceIdHex(r.traceId);
  return id ? `${base.replace(/\/+$/, "")}/trace/${id}` : "";
}

/** A compact rendering of a decoded message: `{pid: 105, name: "x"}`, defaults left out. */
export function show(v: unknown, strsize = 80, depth = 0): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") {
    const cut = v.length > strsize ? v.slice(0, strsize) + "..." : v;
    return JSON.stringify(cut);
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (depth > 4) return "{...}";
  if (Array.isArray(v)) return `[${v.map((x) => show(x, strsize, depth + 1)).join(", ")}]`;
  if (typeof v === "object") {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (isDefault(x)) continue;
      parts.push(`${k}: ${show(x, strsize, depth + 1)}`);
    }
    return `{${parts.join(", ")}}`;
  }
  return String(v);
}

function isDefault(x: unknown): boolean {
  return (
    x === undefined ||
    x === null ||
    x === 0 ||
    x === 0n ||
    x === "" ||
    x === false ||
    (Array.isArray(x) && x.length === 0) ||
    (x instanceof Uint8Array && x.length === 0)
  );
}

export function errorText(code: number): string {
  return `0x${(code >>> 0).toString(16)} (${errnoName(code)})`;
}

export class RpcTraceFormatter {
  private readonly reg: Registry;
  private readonly who: (t: number) => string;
  private readonly strsize: number;
  /** The request whose line is still open (no newline yet), or 0. */
  private open = 0;
  /** What ends the open line (its link). */
  private openEnd = "";
  private readonly link: (r: TraceRecord) => string;
  /** Requests waiting for their reply: record number -> expects a reply. */
  private readonly waiting = new Set<number>();

  constructor(
    private readonly write: (s: string) => void,
    private readonly o: FormatOptions = {},
  ) {
    this.reg = o.registry ?? registry();
    this.who = o.who ?? ((t) => `task${t}`);
    this.strsize = o.strsize ?? 80;
    this.link = o.link ?? (() => "");
  }

  /** Decodes a body with the generated type of its request or reply, if the id is known. */
  decode(r: TraceRecord, reply: boolean): string | null {
    if (!r.body.length) return r.bodyLength ? `<${r.bodyLength} bytes>` : null;
    const info = this.reg.method(reply ? r.msgid - 100 : r.msgid);
    if (!info || r.kernel) return `<${r.bodyLength} bytes>`;
    try {
      const v = reply ? info.def.responseType.decode(r.body) : info.def.requestType.decode(r.body);
      return show(v, this.strsize);
    } catch {
      return `<${r.bodyLength} bytes, undecodable>`;
    }
  }

  private closeOpen(): void {
    if (this.open) {
      this.write(` ...${this.open}${this.openEnd}\n`);
      this.open = 0;
    }
  }

  private stamp(r: TraceRecord): string {
    return this.o.timestamps ? `${new Date(r.tsMs).toISOString().slice(11, 23)} ` : "";
  }

  push(r: TraceRecord): void {
    if (r.isReply) {
      const result = r.error ? ` = ${errorText(r.error)} (reply not delivered)` : r.code === 0 ? ` = 0${this.outArgs(r)}` : ` = ${errorText(r.code)}${this.errDetail(r)}`;
      if (r.replyTo && this.open === r.replyTo) {
        this.write(`${result}${this.openEnd}\n`);
        this.open = 0;
      } else {
        this.closeOpen();
        this.write(`${this.stamp(r)}${r.replyTo || "?"}...${result}${this.link(r)}\n`);
      }
      if (r.replyTo) this.waiting.delete(r.replyTo);
      return;
    }
    this.closeOpen();
    const from = r.kernel ? "kernel" : this.who(r.fromTask);
    const name = r.rpc || String(r.msgid);
    const args = r.kernel ? this.notifyArgs(r) : this.decode(r, false);
    const argText = args === null || args === "{}" ? "()" : `(${args.startsWith("{") ? args.slice(1, -1) : args})`;
    const ports = r.rights.filter((x) => !x.startsWith("reply "));
    const portText = ports.length ? ` pn{${ports.join(", ")}}` : "";
    const to = r.kernel && r.toTask ? ` [to ${this.who(r.toTask)}]` : "";
    let line = `${this.stamp(r)}${from}->${name} ${argText}${portText}${to}`;
    if (r.error) {
      this.write(`${line} = ${errorText(r.error)}${this.link(r)}\n`);
      return;
    }
    const expectsReply = r.rights.some((x) => x.startsWith("reply "));
    if (!expectsReply) {
      this.write(`${line}${this.link(r)}\n`);
      return;
    }
    this.waiting.add(r.n);
    this.write(line);
    this.open = r.n;
    this.openEnd = this.link(r);
  }

  private outArgs(r: TraceRecord): string {
    const d = this.decode(r, true);
    const ports = r.rights.length ? ` pn{${r.rights.join(", ")}}` : "";
    return (d === null || d === "{}" ? "" : ` ${d}`) + ports;
  }

  private errDetail(r: TraceRecord): string {
    if (!r.body.length) return "";
    const s = Buffer.from(r.body).toString("utf8");
    return s ? ` ${show(s, this.strsize)}` : "";
  }

  private notifyArgs(r: TraceRecord): string | null {
    if (!r.body.length) return r.bodyLength ? `<${r.bodyLength} bytes>` : null;
    const dec = NOTIFY_BODIES[r.msgid];
    try {
      return dec ? show(dec.decode(r.body), this.strsize) : `<${r.bodyLength} bytes>`;
    } catch {
      return `<${r.bodyLength} bytes, undecodable>`;
    }
  }

  /** Ends a line left open. */
  end(): void {
    this.closeOpen();
  }
}
