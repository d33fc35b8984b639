// Signals as the Hurd numbers them (glibc's bits/signum for the Hurd: BSD
// numbering, not Linux's), wait statuses and SIGCHLD codes. One table for
// proc, which posts signals and encodes statuses, and libhurd, which
// receives and decodes them: the runtime is the one package both may import.

export const SIG = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, EMT: 7, FPE: 8, KILL: 9, BUS: 10, SEGV: 11, SYS: 12,
  PIPE: 13, ALRM: 14, TERM: 15, URG: 16, STOP: 17, TSTP: 18, CONT: 19, CHLD: 20, TTIN: 21, TTOU: 22, IO: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, INFO: 29, USR1: 30, USR2: 31,
} as const;
export const NSIG = 32;

/** si_code values of SIGCHLD (POSIX). */
export const CLD = { EXITED: 1, KILLED: 2, STOPPED: 5, CONTINUED: 6 } as const;

/** Options of wait and waitid (glibc's values for the Hurd). */
export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WSTOPPED = 2;
export const WCONTINUED = 4;
export const WNOWAIT = 8;
export const WEXITED = 16;

/** The status of a continued child (glibc's __W_CONTINUED). */
export const W_CONTINUED = 0xffff;

/** Wait statuses: glibc's W_EXITCODE and W_STOPCODE, and the WIF* tests. */
export const W = {
  exitcode: (ret: number, sig: number) => ((ret & 0xff) << 8) | (sig & 0x7f),
  stopcode: (sig: number) => ((sig & 0xff) << 8) | 0x7f,
  ifexited: (s: number) => (s & 0x7f) === 0,
  exitstatus: (s: number) => (s >> 8) & 0xff,
  ifsignaled: (s: number) => (s & 0x7f) !== 0 && (s & 0x7f) !== 0x7f,
  termsig: (s: number) => s & 0x7f,
  ifstopped: (s: number) => (s & 0xff) === 0x7f,
  stopsig: (s: number) => (s >> 8) & 0xff,
  ifcontinued: (s: number) => s === W_CONTINUED,
};

const byName = new Map<string, number>(Object.entries(SIG));
const byNumber = new Map<number, string>(Object.entries(SIG).map(([k, v]) => [v, k]));

/** "TERM", "SIGTERM", "15" -> 15; undefined when unknown. */
export function signalNumber(s: string | number): number | undefined {
  if (typeof s === "number") return s > 0 && s < NSIG ? s : undefined;
  if (/^\d+$/.test(s)) return signalNumber(Number(s));
  return byName.get(s.toUpperCase().replace(/^SIG/, ""));
}

/** 15 -> "SIGTERM"; "signal 40" for a number the Hurd has no name for. */
export function signalName(n: number): string {
  const s = byNumber.get(n);
  return s ? `SIG${s}` : `signal ${n}`;
}
