// hurd top: the process table, refreshed, as procps's top. In a terminal it
// is interactive (q quits, k kills, h helps, M P T N R sort); -b is batch
// mode, for pipes and scripts. A task here has no CPU or memory accounting:
// the activity column is messages through the kernel per second (proc's
// PI_FETCH_TASKINFO: task_info's messages sent and received), which is what
// a Hurd server does; P sorts by it, M by port names (what a task holds),
// T by elapsed time.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { parseSignal } from "./args.js";
import { UsageError } from "./errors.js";
import { connect, type Connected } from "./session.js";
import { allProcs, isStopped, isZombie, numberList, parseFormat, PI_FETCH_TASKINFO, processJson, render, sorter, uidOf, type Row } from "./list.js";
import { isErrnoLike } from "./util.js";

export interface TopOptions {
  hurd?: string;
  /** -d: seconds between screens (procps's unit; fractions allowed). */
  delay?: string;
  /** -n: screens before exiting. */
  iterations?: string;
  /** -b: batch mode, no terminal control. */
  batch?: boolean;
  /** -p: only these pids. */
  pid?: string[];
  /** -u: only this user's processes. */
  user?: string;
  /** -b --json: one object per screen (schema/top.json). */
  json?: boolean;
}

const FORMAT = "pid,user,stat,msg/s,msgs,ports,etime,args";
const SORTS: Record<string, { spec: string; what: string }> = {
  P: { spec: "-msg/s,pid", what: "activity (messages per second, top's %CPU here)" },
  M: { spec: "-ports,pid", what: "port names held (top's %MEM here)" },
  T: { spec: "-etime,pid", what: "elapsed time (top's TIME+ here)" },
  N: { spec: "-pid", what: "pid" },
};

const HELP = `hurd top: keys
  q          quit                       k          kill: asks for a pid and a signal
  h or ?     this help                  space      refresh now
  P          sort by activity (MSG/S)   M          sort by port names (PORTS)
  T          sort by elapsed time       N          sort by pid
  R          reverse the order
MSG/S is messages through the kernel per second since the last screen (on the
first, since the process started): hurdmesh tasks have no CPU accounting.
Any key to go back.`;

/** One screen's worth of the table and its totals. */
export interface Screen {
  time: string;
  hurd: string;
  total: number;
  stopped: number;
  zombie: number;
  rows: Row[];
}

/** top -b --json, one line per screen (schema/top.json). */
export function screenJson(s: Screen) {
  return {
    time: s.time,
    hurd: s.hurd,
    total: s.total,
    stopped: s.stopped,
    zombie: s.zombie,
    processes: s.rows.map((r) => ({
      ...processJson(r.p, r.now),
      ports: r.p.portNames,
      msgs: r.p.messagesSent + r.p.messagesReceived,
      rate: r.rate === undefined ? null : Math.round(r.rate * 100) / 100,
    })),
  };
}

export async function top(o: TopOptions): Promise<void> {
  const delay = Number(o.delay ?? 3);
  if (!Number.isFinite(delay) || delay < 0) throw new UsageError(`bad delay interval: ${o.delay}`);
  const n = o.iterations !== undefined ? Number(o.iterations) : Infinity;
  if (!(n >= 1)) throw new UsageError(`bad iterations argument: ${o.iterations}`);
  const pids = numberList(o.pid, "pid");
  const uid = o.user !== undefined ? uidOf(o.user) : undefined;
  if (o.json && !o.batch) throw new UsageError("--json needs batch mode (-b)");
  const interactive = !o.batch && process.stdout.isTTY === true && process.stdin.isTTY === true;
  const c = await connect(o.hurd, "top");
  const t = new Top(c, { delayMs: Math.max(100, delay * 1000), pids, uid });
  try {
    if (interactive) await t.interactive(n);
    else await t.batch(n, o.json === true);
  } finally {
    await c.close();
  }
}

class Top {
  private prev = new Map<string, { msgs: number; at: number }>();
  private sort = "P";
  private reverse = false;
  private readonly cols = parseFormat([FORMAT]);
  constructor(
    private readonly c: Connected,
    private readonly o: { delayMs: number; pids?: number[]; uid?: number },
  ) {}

  async screen(): Promise<Screen> {
    const now = Date.now();
    const procs = (await allProcs(this.c.me, PI_FETCH_TASKINFO)).filter(
      (p) => !p.namespaceId && p.pid !== this.c.me.pid && (!this.o.pids || this.o.pids.includes(p.pid)) && (this.o.uid === undefined || (p.owned && p.owner === this.o.uid)),
    );
    const next = new Map<string, { msgs: number; at: number }>();
    const rows = procs.map((p): Row => {
      const key = `${p.pid}/${p.serial}`;
      const msgs = p.messagesSent + p.messagesReceived;
      next.set(key, { msgs, at: now });
      const before = this.prev.get(key);
      // The first screen (or a new process): its average since it started, as top's first %CPU is.
      const rate = before && now > before.at ? ((msgs - before.msgs) * 1000) / (now - before.at) : msgs / Math.max(1, (now - p.startMs) / 1000);
      return { p, now, rate };
    });
    this.prev = next;
    const order = sorter(SORTS[this.sort]!.spec);
    rows.sort((a, b) => (this.reverse ? -order(a, b) : order(a, b)));
    return {
      time: new Date(now).toISOString(),
      hurd: this.c.session.system,
      total: procs.length,
      stopped: procs.filter(isStopped).length,
      zombie: procs.filter(isZombie).length,
      rows,
    };
  }

  text(s: Screen, width = Infinity, height = Infinity): string {
    const rate = s.rows.reduce((a, r) => a + (r.rate ?? 0), 0);
    const head = [
      `hurd top - ${s.time.slice(11, 19)}  ${s.hurd}  processes: ${s.total} total, ${s.stopped} stopped, ${s.zombie} zombie`,
      `messages: ${rate.toFixed(1)}/s through the kernel; sorted by ${SORTS[this.sort]!.what}${this.reverse ? ", reversed" : ""}`,
      "",
    ];
    const table = render(this.cols, s.rows).split("\n");
    const lines = [...head, ...table].slice(0, height);
    return lines.map((l) => (l.length > width ? l.slice(0, width) : l)).join("\n");
  }

  async batch(n: number, json: boolean): Promise<void> {
    let stop = false;
    const onInt = () => (stop = true);
    process.on("SIGINT", onInt);
    try {
      for (let i = 0; i < n && !stop; i++) {
        const s = await this.screen();
        process.stdout.write(json ? `${JSON.stringify(screenJson(s))}\n` : `${this.text(s)}\n\n`);
        if (i + 1 < n) await sleep(this.o.delayMs);
      }
    } finally {
      process.off("SIGINT", onInt);
    }
  }

  async interactive(n: number): Promise<void> {
    const stdin = process.stdin;
    const out = process.stdout;
    let wake: (() => void) | null = null;
    let quit = false;
    let help = false;
    let prompt: { text: string; value: string; done: (v: string | null) => void } | null = null;
    let status = "";
    let last: Screen | null = null;
    const draw = () => {
      if (!last) return;
      const rows = out.rows || 24;
      const cols = out.columns || 80;
      let body = help ? HELP : this.text(last, cols, rows - 1);
      const foot = prompt ? `${prompt.text}${prompt.value}` : status;
      body += `\n${foot}`;
      out.write(`\x1b[H\x1b[2J${body}`);
    };
    const ask = (text: string) => new Promise<string | null>((done) => ((prompt = { text, value: "", done }), draw()));
    const onKey = (k: string) => {
      if (prompt) {
        const p = prompt;
        if (k === "\r" || k === "\n") (prompt = null), p.done(p.value);
        else if (k === "\x1b" || k === "\x03") (prompt = null), p.done(null);
        else if (k === "\x7f" || k === "\b") p.value = p.value.slice(0, -1);
        else if (k >= " ") p.value += k;
        draw();
        return;
      }
      if (help) {
        help = false;
        draw();
        return;
      }
      if (k === "q" || k === "\x03") quit = true;
      else if (k === "h" || k === "?") help = true;
      else if (k === "R") this.reverse = !this.reverse;
      else if (SORTS[k]) this.sort = k;
      else if (k === "k") void this.killPrompt(ask, last).then((s) => ((status = s), draw()));
      else if (k !== " " && k !== "\r") return;
      wake?.();
    };
    stdin.setRawMode(true);
    stdin.setEncoding("utf8");
    stdin.on("data", onKey);
    stdin.resume();
    out.write("\x1b[?1049h\x1b[?25l");
    const onResize = () => draw();
    out.on("resize", onResize);
    try {
      for (let i = 0; i < n && !quit; i++) {
        if (!help && !prompt) {
          last = await this.screen();
          draw();
        }
        if (i + 1 >= n) break;
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.o.delayMs);
          wake = () => (clearTimeout(t), r());
        });
        wake = null;
        // A prompt holds the screen still until it is answered.
        while (prompt && !quit) await sleep(50);
      }
    } finally {
      out.off("resize", onResize);
      stdin.off("data", onKey);
      stdin.setRawMode(false);
      stdin.pause();
      out.write("\x1b[?25h\x1b[?1049l");
    }
  }

  /** top's k: a pid (the first row by default), then a signal (TERM by default); sent through a handle. */
  private async killPrompt(ask: (t: string) => Promise<string | null>, s: Screen | null): Promise<string> {
    const first = s?.rows[0]?.p;
    const pidText = await ask(`PID to signal/kill [default pid = ${first?.pid ?? "none"}] `);
    if (pidText === null) return "";
    const pid = pidText.trim() ? Number(pidText.trim()) : first?.pid;
    if (!pid || !Number.isInteger(pid)) return `not a pid: ${pidText}`;
    const sigText = await ask(`Send pid ${pid} signal [15/sigterm] `);
    if (sigText === null) return "";
    let sig: number;
    try {
      sig = parseSignal(sigText.trim() || "TERM");
    } catch (e) {
      return (e as Error).message;
    }
    // The incarnation on screen, if it is the one listed: a recycled pid is never hit.
    const shown: ProcInfo | undefined = s?.rows.find((r) => r.p.pid === pid)?.p;
    try {
      const h = await this.c.me.open(pid, shown?.serial ?? 0);
      try {
        await h.signal(sig);
      } finally {
        await h.close();
      }
      return `pid ${pid} signalled (${sig})`;
    } catch (e) {
      return `pid ${pid}: ${isErrnoLike(e)}`;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
