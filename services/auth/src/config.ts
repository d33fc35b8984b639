// Every bound auth keeps, in one place, with its default and why.

export interface AuthConfig {
  /**
   * How long one side of a rendezvous may wait for the other, ms, when the
   * caller names no deadline. The Hurd waits until the caller interrupts;
   * here a waiter holds a slot and flow-control credit, so it must end.
   */
  rendezvousWaitMs: number;
  /**
   * How long a waiter waits before auth asks the kernel to report R's death
   * (a dead-name request: a kernel call, and a port-deleted notification
   * when R's name goes). Most rendezvous pair within this, and never pay
   * for it; R dying sooner is still noticed, this much later.
   */
  deadNameGraceMs: number;
  /** The longest wait a caller may ask for (its timeout_ms is capped here). */
  maxRendezvousWaitMs: number;
  /**
   * Waiting calls per side (users, servers); past it, EAGAIN. Each waiter
   * holds one credit of auth's delivery window until it is answered, so the
   * two sides together are clamped to half the window: the partners' calls
   * and makeauth must still get through while the slots are full.
   */
  maxPendingPerSide: number;
  /** Live handles; past it, makeauth fails EAGAIN (memory is bounded by this). */
  maxHandles: number;
  /** Ids in one vector of a makeauth request; past it, E2BIG. */
  maxIdsPerVector: number;
}

export const defaultAuthConfig: AuthConfig = {
  rendezvousWaitMs: 3000,
  deadNameGraceMs: 100,
  maxRendezvousWaitMs: 30_000,
  maxPendingPerSide: 64,
  maxHandles: 1 << 20,
  // NGROUPS_MAX on Linux is 65536; a handle is copied on every getids and
  // rendezvous, so auth takes a tighter bound than any real login needs.
  maxIdsPerVector: 1024,
};

/** The configuration in force for a task whose delivery window is `window`. */
export function authConfig(over: Partial<AuthConfig> = {}, window = Infinity): AuthConfig {
  const c = { ...defaultAuthConfig, ...over };
  for (const [k, v] of Object.entries(c)) {
    const min = k === "deadNameGraceMs" ? 0 : 1;
    if (!Number.isInteger(v) || v < min) throw new RangeError(`auth config ${k} must be an integer >= ${min}, got ${v}`);
  }
  c.maxPendingPerSide = Math.max(1, Math.min(c.maxPendingPerSide, Math.floor(window / 4)));
  c.rendezvousWaitMs = Math.min(c.rendezvousWaitMs, c.maxRendezvousWaitMs);
  return c;
}
