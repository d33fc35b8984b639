import type { Row, Subject } from "../harness.js";
import type { FabricKeys } from "@hurdmesh/mach/nats-auth";

/** What every row group gets from main. */
export interface BenchContext {
  /** The bench's own anonymous nats-server ("" when no selected group needs one): raw NATS and the "auth off" rows. */
  natsUrl: string;
  /** The bench's nats-server with NATS authorization on (null when no selected group needs one): the brokered "nats" rows. */
  natsAuth: { url: string; keys: FabricKeys } | null;
  /** Measured window per row, ms (a warm-up precedes it). */
  durationMs: number;
  /** Concurrency levels every group measures. */
  inFlight: number[];
  /** Progress lines (stderr, so --json output stays clean). */
  log(line: string): void;
}

/** What an opened group hands the bench: its subjects, and how to tear them down. */
export interface Opened {
  subjects: Subject[];
  close(): Promise<void>;
}

/**
 * A group of rows: one file in bench/rows, registered in bench/main.ts.
 * Either `open` (preferred: the bench measures the subjects at every level
 * of `inFlight`, interleaved with every other open group's, so ratios between
 * rows hold on a noisy machine) or `run` (the group measures by itself, e.g.
 * with `measure`, and answers its rows).
 */
export interface RowGroup {
  name: string;
  /**
   * Whether it uses the bench's nats-server, which is started only if some
   * selected group does (unset: assumed to).
   */
  needsNats?: boolean;
  open?(ctx: BenchContext): Promise<Opened>;
  run?(ctx: BenchContext): Promise<Row[]>;
}
