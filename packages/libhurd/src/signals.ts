// Signal numbers (the Hurd's, BSD numbering), wait-status helpers, and the
// default action of each signal.

export const SIG = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, EMT: 7, FPE: 8, KILL: 9, BUS: 10, SEGV: 11, SYS: 12,
  PIPE: 13, ALRM: 14, TERM: 15, URG: 16, STOP: 17, TSTP: 18, CONT: 19, CHLD: 20, TTIN: 21, TTOU: 22, IO: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, INFO: 29, USR1: 30, USR2: 31,
} as const;
export const NSIG = 32;

const byName = new Map<string, number>(Object.entries(SIG));
const byNumber = new Map<number, string>(Object.entries(SIG).map(([k, v]) => [v, k]));

/** "TERM", "SIGTERM", "15" -> 15; undefined when unknown. */
export function signalNumber(s: string | number): number | undefined {
  if (typeof s === "number") return s > 0 && s < NSIG ? s : undefined;
  if (/^\d+$/.test(s)) return signalNumber(Number(s));
  return byName.get(s.toUpperCase().replace(/^SIG/, ""));
}

export function signalName(n: number): string {
  const s = byNumber.get(n);
  return s ? `SIG${s}` : `signal ${n}`;
}

/** Linux signal names -> the Hurd's numbers (for programs run by spawn). */
export function fromLinux(name: NodeJS.Signals | null): number {
  if (!name) return 0;
  return signalNumber(name) ?? SIG.KILL;
}

export type Disposition = "terminate" | "ignore" | "stop" | "continue";

/** What a signal does when the program set no handler (POSIX defaults). */
export function defaultAction(sig: number): Disposition {
  switch (sig) {
    case SIG.CHLD:
    case SIG.URG:
    case SIG.WINCH:
    case SIG.INFO:
    case SIG.IO:
      return "ignore";
    case SIG.STOP:
    case SIG.TSTP:
    case SIG.TTIN:
    case SIG.TTOU:
      return "stop";
    case SIG.CONT:
      return "continue";
    default:
      return "terminate";
  }
}

export const W = {
  exitcode: (ret: number, sig: number) => ((ret & 0xff) << 8) | (sig & 0x7f),
  ifexited: (s: number) => (s & 0x7f) === 0,
  exitstatus: (s: number) => (s >> 8) & 0xff,
  ifsignaled: (s: number) => (s & 0x7f) !== 0 && (s & 0x7f) !== 0x7f,
  termsig: (s: number) => s & 0x7f,
  ifstopped: (s: number) => (s & 0xff) === 0x7f,
  stopsig: (s: number) => (s >> 8) & 0xff,
};

export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WCONTINUED = 4;
export const WNOWAIT = 8;
export const WEXITED = 16;

/** Describes a wait status as a shell would. */
export function describeStatus(s: number): string {
  if (W.ifexited(s)) return `exited with status ${W.exitstatus(s)}`;
  if (W.ifstopped(s)) return `stopped by ${signalName(W.stopsig(s))}`;
  if (s === 0xffff) return "continued";
  return `killed by ${signalName(W.termsig(s))}`;
}
