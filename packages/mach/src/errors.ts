// Hurd error codes, as the Hurd numbers them: Mach kern_return_t and mach_msg
// codes, MIG codes, and errno values (BSD numbering, tagged 0x40000000 as
// glibc's Hurd port does). One table, one error class, one mapping to gRPC.

const E = 0x40000000;

/** Every code the runtime names, by its Hurd name. */
export const Errno = {
  KERN_SUCCESS: 0,
  KERN_INVALID_ADDRESS: 1,
  KERN_PROTECTION_FAILURE: 2,
  KERN_NO_SPACE: 3,
  KERN_INVALID_ARGUMENT: 4,
  KERN_FAILURE: 5,
  KERN_RESOURCE_SHORTAGE: 6,
  KERN_NOT_RECEIVER: 7,
  KERN_NO_ACCESS: 8,
  KERN_NOT_IN_SET: 12,
  KERN_NAME_EXISTS: 13,
  KERN_ABORTED: 14,
  KERN_INVALID_NAME: 15,
  KERN_INVALID_TASK: 16,
  KERN_INVALID_RIGHT: 17,
  KERN_INVALID_VALUE: 18,
  KERN_UREFS_OVERFLOW: 19,
  KERN_INVALID_CAPABILITY: 20,
  KERN_RIGHT_EXISTS: 21,
  KERN_INVALID_HOST: 22,
  /** The task was terminated (gnumach's KERN_TERMINATED is not defined; hurdmesh uses Darwin's 37). */
  KERN_TERMINATED: 37,

  MACH_SEND_INVALID_DATA: 0x10000002,
  MACH_SEND_INVALID_DEST: 0x10000003,
  MACH_SEND_TIMED_OUT: 0x10000004,
  MACH_SEND_INTERRUPTED: 0x10000007,
  MACH_SEND_MSG_TOO_SMALL: 0x10000008,
  MACH_SEND_INVALID_REPLY: 0x10000009,
  MACH_SEND_INVALID_RIGHT: 0x1000000a,
  MACH_SEND_INVALID_NOTIFY: 0x1000000b,
  MACH_SEND_NO_BUFFER: 0x1000000d,
  MACH_SEND_INVALID_TYPE: 0x1000000f,
  MACH_SEND_INVALID_HEADER: 0x10000010,
  MACH_RCV_TIMED_OUT: 0x10004003,
  MACH_RCV_PORT_DIED: 0x10004009,

  MIG_TYPE_ERROR: -300,
  MIG_REPLY_MISMATCH: -301,
  MIG_REMOTE_ERROR: -302,
  MIG_BAD_ID: -303,
  MIG_BAD_ARGUMENTS: -304,
  MIG_NO_REPLY: -305,
  MIG_EXCEPTION: -306,
  MIG_ARRAY_TOO_LARGE: -307,
  MIG_SERVER_DIED: -308,

  EPERM: E | 1,
  ENOENT: E | 2,
  ESRCH: E | 3,
  EINTR: E | 4,
  EIO: E | 5,
  E2BIG: E | 7,
  EBADF: E | 9,
  ECHILD: E | 10,
  EDEADLK: E | 11,
  ENOMEM: E | 12,
  EACCES: E | 13,
  EFAULT: E | 14,
  EBUSY: E | 16,
  EEXIST: E | 17,
  ENOTDIR: E | 20,
  EINVAL: E | 22,
  ENOSPC: E | 28,
  ERANGE: E | 34,
  EAGAIN: E | 35,
  EMSGSIZE: E | 40,
  EOPNOTSUPP: E | 45,
  ETIMEDOUT: E | 60,
  EDQUOT: E | 69,
  ENOSYS: E | 78,
} as const;

export type ErrnoName = keyof typeof Errno;

/** EWOULDBLOCK is EAGAIN on the Hurd, as on BSD. */
export const EWOULDBLOCK = Errno.EAGAIN;

const names = new Map<number, ErrnoName>();
for (const [k, v] of Object.entries(Errno) as [ErrnoName, number][]) names.set(v, k);

const descriptions: Partial<Record<ErrnoName, string>> = {
  KERN_INVALID_ARGUMENT: "invalid argument",
  KERN_NO_ACCESS: "access denied",
  KERN_INVALID_NAME: "no such port name",
  KERN_INVALID_TASK: "invalid task",
  KERN_INVALID_RIGHT: "name does not denote that right",
  KERN_INVALID_VALUE: "invalid value",
  KERN_UREFS_OVERFLOW: "user references overflow",
  KERN_INVALID_CAPABILITY: "invalid capability",
  KERN_RESOURCE_SHORTAGE: "resource shortage",
  KERN_NOT_RECEIVER: "not the receiver",
  KERN_TERMINATED: "task terminated",
  KERN_NAME_EXISTS: "name exists",
  MACH_SEND_INVALID_DEST: "invalid destination port",
  MACH_SEND_TIMED_OUT: "send timed out",
  MACH_SEND_INVALID_REPLY: "invalid reply port",
  MACH_SEND_INVALID_RIGHT: "invalid port right in message",
  MACH_SEND_INVALID_TYPE: "invalid disposition in message",
  MACH_SEND_INVALID_HEADER: "invalid message header",
  MACH_SEND_NO_BUFFER: "message too large or no room",
  MACH_SEND_INVALID_DATA: "malformed message",
  MACH_SEND_INVALID_NOTIFY: "invalid notify port",
  MACH_RCV_TIMED_OUT: "receive timed out",
  MIG_BAD_ID: "bad request message id",
  MIG_BAD_ARGUMENTS: "bad message arguments",
  MIG_TYPE_ERROR: "type error in message",
  MIG_SERVER_DIED: "server died",
  MIG_REPLY_MISMATCH: "reply mismatch",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ESRCH: "no such process",
  EINTR: "interrupted",
  ECHILD: "no child processes",
  ENOMEM: "cannot allocate memory",
  EACCES: "permission denied",
  EBUSY: "device or resource busy",
  EEXIST: "exists",
  EINVAL: "invalid argument",
  EAGAIN: "resource temporarily unavailable",
  EOPNOTSUPP: "operation not supported",
  ETIMEDOUT: "timed out",
  EDQUOT: "quota exceeded",
  ENOSYS: "function not implemented",
};

/** The Hurd name of a code ("ESRCH"), or its number in hex when unnamed. */
export function errnoName(code: number): string {
  return names.get(code) ?? `0x${(code >>> 0).toString(16)}`;
}

/**
 * The one error type of hurdmesh: a Hurd error code with its name. Whatever is
 * thrown anywhere, `HurdError.from` turns it into one of these.
 */
export class HurdError extends Error {
  override readonly name = "HurdError";
  readonly code: number;
  constructor(code: number, detail?: string, options?: { cause?: unknown }) {
    const n = errnoName(code);
    const d = descriptions[n as ErrnoName];
    super(`${n}${d ? ` (${d})` : ""}${detail ? `: ${detail}` : ""}`, options);
    this.code = code;
  }
  /** The code's Hurd name, e.g. "EPERM". */
  get errno(): string {
    return errnoName(this.code);
  }
  is(name: ErrnoName): boolean {
    return this.code === Errno[name];
  }
  static from(e: unknown): HurdError {
    if (e instanceof HurdError) return e;
    if (e instanceof Error) {
      const err = new HurdError(Errno.EIO, e.message, { cause: e });
      return err;
    }
    return new HurdError(Errno.EIO, String(e));
  }
}

/** Throw a HurdError for `name`. */
export function fail(name: ErrnoName, detail?: string): never {
  throw new HurdError(Errno[name], detail);
}

/** Whether `e` is a HurdError with the given name. */
export function isErrno(e: unknown, name: ErrnoName): boolean {
  return e instanceof HurdError && e.code === Errno[name];
}
