// Signal numbers and wait-status encoding as the Hurd (BSD numbering) has them.

export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGKILL = 9;
export const SIGTERM = 15;
export const SIGSTOP = 17;
export const SIGTSTP = 18;
export const SIGCONT = 19;
export const SIGCHLD = 20;
export const NSIG = 32;

/** si_code values for SIGCHLD. */
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_STOPPED = 5;
export const CLD_CONTINUED = 6;

/** si_code for a signal sent by kill(). */
export const SI_USER = 0;

export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WSTOPPED = 2;
export const WCONTINUED = 4;
export const WNOWAIT = 8;
export const WEXITED = 16;

export const W_EXITCODE = (ret: number, sig: number) => ((ret & 0xff) << 8) | (sig & 0x7f);
export const W_STOPCODE = (sig: number) => ((sig & 0xff) << 8) | 0x7f;
export const W_CONTINUED = 0xffff;
export const WIFSTOPPED = (s: number) => (s & 0xff) === 0x7f;
