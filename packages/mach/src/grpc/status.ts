import { status } from "@grpc/grpc-js";
import { Errno } from "../errors.js";

/**
 * The one mapping from Hurd codes to gRPC status codes, used at the kernel's
 * edge. The errno's name travels beside it in the `hurd-errno` trailer.
 */
const table = new Map<number, status>([
  [Errno.EPERM, status.PERMISSION_DENIED],
  [Errno.EACCES, status.PERMISSION_DENIED],
  [Errno.KERN_NO_ACCESS, status.PERMISSION_DENIED],
  [Errno.ESRCH, status.NOT_FOUND],
  [Errno.ENOENT, status.NOT_FOUND],
  [Errno.ECHILD, status.NOT_FOUND],
  [Errno.KERN_INVALID_NAME, status.NOT_FOUND],
  [Errno.EINVAL, status.INVALID_ARGUMENT],
  [Errno.KERN_INVALID_ARGUMENT, status.INVALID_ARGUMENT],
  [Errno.KERN_INVALID_VALUE, status.INVALID_ARGUMENT],
  [Errno.KERN_INVALID_RIGHT, status.INVALID_ARGUMENT],
  [Errno.KERN_INVALID_CAPABILITY, status.INVALID_ARGUMENT],
  [Errno.MIG_BAD_ARGUMENTS, status.INVALID_ARGUMENT],
  [Errno.MACH_SEND_INVALID_HEADER, status.INVALID_ARGUMENT],
  [Errno.MACH_SEND_INVALID_RIGHT, status.INVALID_ARGUMENT],
  [Errno.MACH_SEND_INVALID_TYPE, status.INVALID_ARGUMENT],
  [Errno.MACH_SEND_INVALID_REPLY, status.INVALID_ARGUMENT],
  [Errno.MACH_SEND_INVALID_DEST, status.FAILED_PRECONDITION],
  [Errno.KERN_NAME_EXISTS, status.ALREADY_EXISTS],
  [Errno.KERN_RIGHT_EXISTS, status.ALREADY_EXISTS],
  [Errno.EEXIST, status.ALREADY_EXISTS],
  [Errno.EBUSY, status.FAILED_PRECONDITION],
  [Errno.EAGAIN, status.UNAVAILABLE],
  [Errno.MIG_SERVER_DIED, status.UNAVAILABLE],
  [Errno.ETIMEDOUT, status.DEADLINE_EXCEEDED],
  [Errno.MACH_SEND_TIMED_OUT, status.DEADLINE_EXCEEDED],
  [Errno.EDQUOT, status.RESOURCE_EXHAUSTED],
  [Errno.KERN_RESOURCE_SHORTAGE, status.RESOURCE_EXHAUSTED],
  [Errno.KERN_NO_SPACE, status.RESOURCE_EXHAUSTED],
  [Errno.MACH_SEND_NO_BUFFER, status.RESOURCE_EXHAUSTED],
  [Errno.KERN_UREFS_OVERFLOW, status.RESOURCE_EXHAUSTED],
  [Errno.EOPNOTSUPP, status.UNIMPLEMENTED],
  [Errno.MIG_BAD_ID, status.UNIMPLEMENTED],
  [Errno.ENOSYS, status.UNIMPLEMENTED],
  [Errno.KERN_INVALID_TASK, status.UNAUTHENTICATED],
  [Errno.EINTR, status.CANCELLED],
]);

export function grpcStatusOf(code: number): status {
  return table.get(code) ?? status.UNKNOWN;
}
