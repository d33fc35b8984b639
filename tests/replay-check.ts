// The kernel log's determinism, checked on whatever a suite does
// (HURD_TEST_JOURNAL=1, local bus; tests/restart/replay.test.ts runs the
// kernel conformance suites so): the suite's kernel leads with its log on,
// kept in memory; at the suite's end the log is replayed into a fresh
// kernel from entry 1, into another restored from a snapshot a standby
// would take part way, and into one restored from a snapshot the leader
// took of itself part way (a lone --journal kernel's); all four kernels'
// canonical dumps (snapshot.ts) must be the same text, and the leader's
// snapshot the same bytes as the standby's at its entry. Kernels here share one process, so the id counters are
// set back to where the leader's began before each replay (a standby
// process numbers its objects from the same start).
import type { Bus } from "@hurdmesh/mach";
import type { Kernel as KernelClass, KernelConfig } from "@hurdmesh/kernel";
import { Kernel } from "@hurdmesh/kernel";
import { Journal, type LogWriter } from "../services/kernel/src/journal.js";
import { idCounters, setIdCounters } from "../services/kernel/src/objects.js";
import { leaderSnapshot, Replica, SilentBus } from "../services/kernel/src/replay.js";
import { dumpKernel } from "../services/kernel/src/snapshot.js";
import { gunzipSync } from "node:zlib";

export const journalOn = process.env.HURD_TEST_JOURNAL === "1";

export interface RecordedKernel {
  /** The bus the kernel's trap server speaks on: its outputs wait for their entry. */
  bus: Bus;
  /** Replays the log into fresh kernels and compares; throws on any difference. `skip`: an entry the replicas leave out (to see the check fail). */
  check(o?: { skip?: number }): Promise<{ entries: number; snapshotAt: number; leaderSnapshotAt: number }>;
}

/** Call before the kernel is constructed (its ids start from here). */
export function idsBefore(): number[] {
  return idCounters();
}

export function recordKernel(k: KernelClass, config: Partial<KernelConfig>, bus: Bus, ids0: number[]): RecordedKernel {
  const entries: Uint8Array[] = [];
  const log: LogWriter = {
    append: async (data, expected) => {
      if (expected !== entries.length) throw new Error(`recorded log: append after ${expected}, the log is at ${entries.length}`);
      entries.push(Uint8Array.from(data));
      return entries.length;
    },
  };
  let failed: Error | null = null;
  // The leader's own snapshots, as failover.ts takes them: once written, at the next turn if still idle; one per LEADER_EVERY entries.
  const LEADER_EVERY = 20;
  const leaderSnaps: { seq: number; data: Buffer }[] = [];
  const written = () => {
    const at = leaderSnaps.at(-1)?.seq ?? 0;
    if (entries.length - at < LEADER_EVERY) return;
    setImmediate(() => {
      if (journal.idle && journal.lastSeq - (leaderSnaps.at(-1)?.seq ?? 0) >= LEADER_EVERY) leaderSnaps.push({ seq: journal.lastSeq, data: leaderSnapshot(k, journal.clock, null) });
    });
  };
  const journal = new Journal(log, bus, { lastSeq: 0, leading: () => true, deposed: (e) => (failed = e), written });
  k.useJournal(journal);
  const idle = () => (journal as unknown as { inflight: boolean }).inflight === false && (journal as unknown as { burst: { records: number } }).burst.records === 0;
  return {
    bus: journal.heldBus(),
    async check(o = {}) {
      // A cut where the kernel's state is exactly its log's: nothing applied and unwritten.
      for (let i = 0; i < 100 && !idle(); i++) await journal.synced();
      if (failed) throw failed;
      if (!idle()) throw new Error("recorded log: the kernel never went idle");
      const want = dumpKernel(k);
      const n = entries.length;
      const idsA = idCounters();
      const mid = Math.max(1, Math.floor(n / 2));
      const lead = leaderSnaps[Math.floor(leaderSnaps.length / 2)] ?? null;
      try {
        const full = replica(k.config.system, config, bus);
        let snap: Buffer | null = null;
        for (let i = 0; i < n; i++) {
          if (i + 1 === o.skip) full.r.applied = i + 1;
          else full.r.apply(i + 1, entries[i]!);
          if (i + 1 === mid) snap = full.r.snapshot();
          if (lead !== null && i + 1 === lead.seq) same(gunzipSync(full.r.snapshot()).toString(), gunzipSync(lead.data).toString(), `in the leader's own snapshot after entry ${lead.seq} (against a standby's there)`);
        }
        const fromStart = dumpKernel(full.k);
        full.k.close();
        same(want, fromStart, `replayed from entry 1 (${n} entries)`);
        if (snap !== null) {
          const restored = replica(k.config.system, config, bus);
          restored.r.restore(mid, snap);
          for (let i = mid; i < n; i++) restored.r.apply(i + 1, entries[i]!);
          const fromSnap = dumpKernel(restored.k);
          restored.k.close();
          same(want, fromSnap, `restored from a snapshot after entry ${mid}, then replayed to ${n}`);
        }
        if (lead !== null) {
          const restored = replica(k.config.system, config, bus);
          restored.r.restore(lead.seq, lead.data);
          for (let i = lead.seq; i < n; i++) restored.r.apply(i + 1, entries[i]!);
          const fromLeader = dumpKernel(restored.k);
          restored.k.close();
          same(want, fromLeader, `restored from the leader's own snapshot after entry ${lead.seq}, then replayed to ${n}`);
        }
      } finally {
        setIdCounters(idsA);
      }
      return { entries: n, snapshotAt: mid, leaderSnapshotAt: lead?.seq ?? 0 };

      function replica(system: string, cfg: Partial<KernelConfig>, b: Bus): { k: KernelClass; r: Replica } {
        setIdCounters(ids0);
        const rk = new Kernel({ ...cfg, system }, { log: () => {} });
        const r = new Replica(rk);
        rk.useJournal(r);
        rk.useBus(new SilentBus(b));
        return { k: rk, r };
      }
    },
  };
}

function same(want: string, got: string, what: string): void {
  if (want === got) return;
  let i = 0;
  while (i < want.length && want[i] === got[i]) i++;
  throw new Error(`kernel state ${what} differs from the leader's at character ${i} of ${want.length}:\n  leader:  …${want.slice(Math.max(0, i - 200), i + 200)}\n  replica: …${got.slice(Math.max(0, i - 200), i + 200)}`);
}
