// Every bound proc keeps, with its default and why.

export interface ProcConfig {
  /** PIDs run 1..pidMax-1 (Linux's PID_MAX_LIMIT, 4M, by default). */
  pidMax: number;
  /** Where allocation wraps to: low pids stay for the boot servers (the Hurd wraps to 100). */
  pidFloor: number;
  /**
   * Open process handles one uid may hold (EDQUOT past it): pinning must not
   * exhaust PIDs. A process with no ids has a quota of its own, not one
   * shared by every id-less process (one of them could otherwise deny the
   * others any handle).
   */
  handleQuota: number;
  /**
   * Processes one uid may have, zombies included (RLIMIT_NPROC): proc_child
   * past it is EAGAIN, as Linux's fork. Root (uid 0) is exempt, as a
   * process with CAP_SYS_RESOURCE is. 4,096 is what distributions commonly
   * set for users in limits.conf; the kernel bounds a hurd's tasks anyway.
   */
  maxProcsPerUid: number;
  /** Waits one process may have pending (EAGAIN past it). */
  maxWaitersPerProcess: number;
  /** Callers blocked in proc_getmsgport on one process. */
  maxMsgportWaiters: number;
  /** Bytes of argv + envp a process may register. */
  maxArgsBytes: number;
  /** Most entries in one proc_getallprocinfo page. */
  maxPage: number;
  /** task_info calls in flight for one PI_FETCH_TASKINFO page (top's message counts): a page never floods the kernel. */
  taskInfoInFlight: number;
  /** How long proc waits for a message port to accept a signal it relays (handles), ms. */
  signalTimeoutMs: number;
  /** Receive rights kept allocated ahead, so a new process port costs no round trip. */
  portPool: number;
  /** How long a reauthentication may wait for its completion, ms. */
  reauthTimeoutMs: number;
}

export const defaultProcConfig: ProcConfig = {
  pidMax: 4_194_304,
  pidFloor: 100,
  handleQuota: 4096,
  maxProcsPerUid: 4096,
  maxWaitersPerProcess: 64,
  maxMsgportWaiters: 64,
  maxArgsBytes: 128 * 1024,
  maxPage: 4096,
  taskInfoInFlight: 32,
  signalTimeoutMs: 5000,
  portPool: 64,
  reauthTimeoutMs: 10_000,
};
