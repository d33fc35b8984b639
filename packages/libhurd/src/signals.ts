// What glibc does with signals, on the runtime's one signal table: the
// default action of each signal, a wait status in words, and Linux signal
// names mapped to the Hurd's numbers.
import { NSIG, SIG, W, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED, signalName, signalNumber } from "@hurdmesh/mach";

export { NSIG, SIG, W, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED, signalName, signalNumber };

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

/** Describes a wait status as a shell would. */
export function describeStatus(s: number): string {
  if (W.ifexited(s)) return `exited with status ${W.exitstatus(s)}`;
  if (W.ifstopped(s)) return `stopped by ${signalName(W.stopsig(s))}`;
  if (W.ifcontinued(s)) return "continued";
  return `killed by ${signalName(W.termsig(s))}`;
}
