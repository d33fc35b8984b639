// The kernel log's determinism, checked on whatever a suite does
// (HURD_TEST_JOURNAL=1, local bus; tests/restart/replay.test.ts runs the
// kernel conformance suites so): the suite's kernel leads with its log on,
// kept in memory; at the suite's end the log is replayed into a fresh
// kernel from entry 1, and into another restored from a snapshot taken
// part way, and all three kernels' canonical dumps (snapshot.ts) must be
// the same text. Kernels here share one process, so the id counters are
// set back to where the leader's began before each replay (a standby
// process numbers its objects from the same start).
import type { Bus } from "@hurdmesh/mach";
import type { Kernel as KernelClass, KernelConfig } from "@hurdmesh/kernel";
import { Kernel } from "@hurdmesh/kernel";
import { Journal, type LogWriter } from "../services/kernel/src/journal.js";
import { idCounters, setIdCounters } from "../services/kernel/src/objects.js";
import { Replica, SilentBus } from "../services/kernel/src/replay.js";
import { dumpKernel } from "../services/kernel/src/snapshot.js";

export const journalOn = process.env.HURD_TEST_JOURNAL === "1";

export interface RecordedKernel {
  /** The bus the kernel's trap server speaks on: its outputs wait for their entry. */
  bus: Bus;
  /** Replays the log into fresh kernels and compares; throws on any difference. `skip`: an entry the replicas leave out (to see the check fail). */
  check(o?: { skip?: number }): Promise<{ entries: number; snapshotAt: number }>;
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
  const journal = new Journal(log, bus, { lastSeq: 0, leading: () => true, deposed: (e) => (failed = e) });
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
      try {
        const full = replica(k.config.system, config, bus);
        let snap: Buffer | null = null;
        for (let i = 0; i < n; i++) {
          if (i + 1 === o.skip) full.r.applied = i + 1;
          else full.r.apply(i + 1, entries[i]!);
          if (i + 1 === mid) snap = full.r.snapshot();
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
      } finally {
        setIdCounters(idsA);
      }
      return { entries: n, snapshotAt: mid };

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
