// Boot claims: how an init that runs in its own container (docker compose,
// Kubernetes) gets its boot task when it cannot read the kernel's boot file.
// It asks on the bus, on hurd.<system>.boot.claim (BootClaimRequest in
// proto/hurd/boot/v1/boot.proto), with the secret the
// kernel was started with (HURD_BOOT_SECRET); the kernel makes a fresh boot
// task holding the host port, in the root namespace for the root hurd or in
// a new namespace nested in the root's (or in a claimed parent subhurd's)
// for a subhurd, and answers its id and token.
//
// A claim stands for one boot of one hurd. While its task lives, a second
// claim for the same hurd is EBUSY. When the task ends, its hurd ends with
// it: a subhurd's namespace is destroyed (as Linux kills a PID namespace
// whose init dies) and the root hurd's tasks are terminated, so a restarted
// init boots a clean hurd, as the Hurd reboots when startup dies.
//
// With NATS authorization on, only a boot-claim user may publish a claim,
// its answer goes only to that user's inbox (one per hurd), and it carries
// the boot task's own NATS user (which may also send its hurd's launch
// orders); the secret is checked besides. Without it the bus is trusted
// fabric, and the secret keeps a confused container, not an attacker on
// the bus, from taking over a hurd.
//
// Per hurd (`perHurd`, hurd-kernel --boot-key-file; Kubernetes): the kernel
// holds a boot key, and each hurd's init holds its own secret derived from
// it (hurdBootSecret: an HMAC of the hurd's name), so an init, or whoever
// reads its namespace's Secret, can claim its own hurd and no other. The
// kernel keeps only the key; `hurd keys k8s` derives the inits' secrets.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Errno, HurdError, type Bus, type BusSubscription } from "@hurdmesh/mach";
import { inboxOf, subjectsOf } from "@hurdmesh/mach/internal";
import { BootClaimReply, BootClaimRequest } from "@hurdmesh/proto/hurd/boot/v1/boot";
import type { Kernel } from "./kernel.js";
import { ClaimOp } from "./log-format.js";
import type { Namespace } from "./namespace.js";
import { bootTask, type KTask } from "./task.js";

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

/** Hurd `hurd`'s boot secret under the boot key `key` ("" is the root hurd): what its init claims with when the kernel checks per hurd. */
export function hurdBootSecret(key: string, hurd: string): string {
  return createHmac("sha256", key).update(`hurdmesh boot claim\0${hurd}`).digest("base64url");
}

interface Claim {
  task: KTask;
  ns: Namespace;
}

export class BootClaims {
  private readonly claims = new Map<string, Claim>();
  private readonly secret: Buffer;
  private sub: BusSubscription | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly kernel: Kernel,
    private bus: Bus,
    secret: string,
    private readonly o: { log?: (l: string) => void; pollMs?: number; perHurd?: boolean } = {},
  ) {
    if (secret.length < 8) throw new HurdError(Errno.EINVAL, "a boot secret has at least 8 characters");
    // Per hurd, `secret` is the boot key and each claim's is derived from it; kept as given.
    this.key = o.perHurd ? secret : null;
    // Compared as digests, so the comparison is constant-time whatever the length asked.
    this.secret = createHash("sha256").update(secret).digest();
  }

  /** The claims made, for a kernel snapshot (snapshot.ts walks them with the kernel's tables). */
  snapshotState(): Map<string, Claim> {
    return this.claims;
  }

  /** A snapshot's claims (a kernel restored from one: their tasks and hurds are the snapshot's objects). */
  restoreState(claims: Map<string, Claim>): void {
    this.claims.clear();
    for (const [key, c] of claims) this.claims.set(key, c);
  }

  /** The boot key when each hurd has its own secret; null: one secret for every hurd. */
  private readonly key: string | null;

  get subject(): string {
    return subjectsOf(this.kernel.config.system).bootClaim;
  }

  /** Serves claims, answering on `bus` (a leading kernel's held bus, with its log on). */
  start(bus: Bus = this.bus): void {
    this.bus = bus;
    this.sub = this.bus.subscribe(this.subject, (_s, data, reply) => {
      if (!reply) return;
      let answer: Partial<BootClaimReply>;
      try {
        const r = parse(data);
        // The answer carries a task's token and NATS user: only to the inbox of the claimant of that hurd.
        if (this.kernel.natsUsers !== null && !reply.startsWith(`${inboxOf(this.kernel.config.system, { kind: "boot-claim", hurd: r.hurd })}.`)) {
          this.o.log?.(`boot claim for ${r.hurd || "the root hurd"} asking for its answer outside that hurd's claim inbox dropped`);
          return;
        }
        answer = this.claim(r);
      } catch (e) {
        const h = HurdError.from(e);
        answer = { errno: h.code, error: h.message };
      }
      try {
        this.bus.publish(reply, BootClaimReply.encode(BootClaimReply.fromPartial(answer)).finish());
      } catch {
        // The bus closed under us: the claimant retries elsewhere.
      }
    });
    // A claim ends with its task; a handful of claims makes polling cheaper than a hook in task death.
    this.timer = setInterval(() => {
      // With the log on, a sweep that ended a hurd is logged: a standby replays it (replay).
      if (this.sweep() > 0 && this.kernel.journal !== null) this.kernel.journal.claim(ClaimOp.SWEEP, null);
    }, this.o.pollMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Makes the boot task for a claim, or throws the errno the claimant gets. */
  claim(r: BootClaimRequest): Pick<BootClaimReply, "taskId" | "token" | "hostPriv" | "namespaceId" | "system" | "nats" | "procStore" | "authStore"> {
    const got = createHash("sha256").update(r.secret).digest();
    const want = this.key === null ? this.secret : createHash("sha256").update(hurdBootSecret(this.key, r.hurd)).digest();
    if (!timingSafeEqual(got, want)) throw new HurdError(Errno.EPERM, `wrong boot secret${this.key === null ? "" : ` for ${r.hurd ? `subhurd ${r.hurd}` : "the root hurd"}`}`);
    const j = this.kernel.journal;
    try {
      return this.make(r);
    } finally {
      // Logged whatever its outcome (its sweep may have ended a hurd before an EBUSY), and without the secret.
      if (j !== null) j.claim(ClaimOp.CLAIM, BootClaimRequest.encode({ ...r, secret: "" }).finish());
    }
  }

  /** A standby applies its leader's claims and sweeps (replay.ts): the same namespaces, tasks and users, the same errors. */
  replay(op: number, payload: Uint8Array): void {
    if (op === ClaimOp.SWEEP) {
      this.sweep();
      return;
    }
    if (op !== ClaimOp.CLAIM) throw new Error(`kernel log claim record of unknown op ${op}`);
    try {
      this.make(BootClaimRequest.decode(payload));
    } catch (e) {
      if (!(e instanceof HurdError)) throw e;
    }
  }

  private make(r: BootClaimRequest): Pick<BootClaimReply, "taskId" | "token" | "hostPriv" | "namespaceId" | "system" | "nats" | "procStore" | "authStore"> {
    const hurd = r.hurd;
    if (hurd && !NAME.test(hurd)) throw new HurdError(Errno.EINVAL, "a subhurd name is a letter, then up to 31 letters, digits, - or _");
    if (r.parent && !NAME.test(r.parent)) throw new HurdError(Errno.EINVAL, `bad parent name ${JSON.stringify(r.parent)}`);
    if (r.parent && !hurd) throw new HurdError(Errno.EINVAL, "the root hurd has no parent");
    this.sweep();
    if (this.claims.has(hurd)) throw new HurdError(Errno.EBUSY, `${hurd || "the root hurd"} is booted (its startup task lives)`);
    let ns = this.kernel.root;
    if (hurd) {
      let parent = this.kernel.root;
      if (r.parent) {
        const p = this.claims.get(r.parent);
        // The parent's init may still be starting: the claimant retries.
        if (!p) throw new HurdError(Errno.EAGAIN, `subhurd ${r.parent} is not booted yet`);
        parent = p.ns;
      }
      ns = this.kernel.newNamespace(parent, hurd);
    }
    // Not Kernel.bootTask: with the log on, the CLAIM record stands for the task (no BOOT record of its own).
    const b = bootTask(this.kernel, { name: r.name || "startup", hostPriv: true, ns });
    this.claims.set(hurd, { task: b.task, ns });
    this.o.log?.(`boot claim: ${hurd || "root hurd"} booted by task ${b.task.id} (namespace ${ns.id})`);
    // Its NATS user may also send this hurd's launch orders (to proc's and auth's containers).
    const nats = this.kernel.natsUsers?.task(b.task, hurd);
    // proc's and auth's store users (their own buckets only), for init to hand over in their launch orders: restart in place from JetStream.
    const users = this.kernel.natsUsers;
    // They do not expire (nats-users.ts): a server restarted in place long after the boot reads its state back with them.
    const store = (server: string) => (users ? { ...users.store(hurd, server), expires: 0 } : undefined);
    return { taskId: b.task.id, token: b.token, hostPriv: b.hostPriv, namespaceId: ns.id, system: this.kernel.config.system, nats, procStore: store("proc"), authStore: store("auth") };
  }

  /** Ends the hurd of every claim whose startup task has ended; how many it ended. */
  private sweep(): number {
    let n = 0;
    for (const [hurd, c] of this.claims) {
      if (c.task.active) continue;
      this.claims.delete(hurd);
      n++;
      if (c.ns === this.kernel.root) {
        const ended = this.kernel.resetRoot(`startup task ${c.task.id} ended`);
        this.o.log?.(`boot claim: the root hurd's startup ended; ${ended} tasks terminated`);
      } else if (c.ns.active) {
        const ended = this.kernel.destroyNamespace(c.ns, `startup of ${hurd} ended`);
        this.o.log?.(`boot claim: ${hurd}'s startup ended; ${ended} tasks terminated`);
      }
    }
    return n;
  }
}

function parse(data: Uint8Array): BootClaimRequest {
  let r: BootClaimRequest;
  try {
    r = BootClaimRequest.decode(data);
  } catch (e) {
    throw new HurdError(Errno.EINVAL, "a boot claim is a hurd.boot.v1.BootClaimRequest", { cause: e });
  }
  if (!r.secret) throw new HurdError(Errno.EINVAL, "a boot claim needs a secret");
  return r;
}
