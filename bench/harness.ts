// The measuring loops. `inFlight` workers each issue calls back to back
// (closed loop), so "in flight" is exactly the concurrency offered. A warm-up
// (JIT, connection buffers, reply-port pools) is run and thrown away.
//
// On a shared, noisy machine two rows measured seconds apart see different
// machines, and a ratio between them is mostly noise. `measureInterleaved`
// therefore measures several subjects in turns of a short slice each, so all
// of them sample the same conditions; the ratios between its rows are what
// the targets judge. `measure` (one function, one window) is for groups that
// measure by themselves.

import { childrenCpuUs } from "./cpu.js";

export interface Measured {
  in_flight: number;
  /** Calls completed in the measured window(s). */
  calls: number;
  p50_us: number;
  p99_us: number;
  calls_per_s: number;
  /** Calls that threw (a row with errors is suspect; they are not timed). */
  errors: number;
  /**
   * This process's CPU time (user + system) per call, µs: steadier than
   * latency on a noisy machine. Excludes nats-server, which runs apart.
   */
  cpu_us_per_call: number;
  /**
   * CPU time per call of the processes the bench started (bench/cpu.ts:
   * its nats-servers, `hurd web`, a kernel in a process of its own),
   * shared by whatever rows run on them in the same slice's window.
   */
  children_cpu_us_per_call?: number;
  /** cpu_us_per_call + children_cpu_us_per_call: what a call costs the machine. */
  total_cpu_us_per_call?: number;
}

/** One table/JSON row: what was measured plus how to name it. */
export interface Row extends Measured {
  name: string;
  bus: string;
  /** Free-form extras (ratios, targets) added by groups or main. */
  [extra: string]: unknown;
}

/** Something to call, measured by the bench between other subjects' turns. */
export interface Subject {
  name: string;
  bus: string;
  call(): Promise<unknown>;
}

export interface MeasureOptions {
  durationMs: number;
  warmupMs?: number;
}

/** Runs `fn` with `inFlight` concurrent callers for `durationMs` (after a warm-up). */
export async function measure(fn: () => Promise<unknown>, inFlight: number, o: MeasureOptions): Promise<Measured> {
  await run(fn, inFlight, o.warmupMs ?? Math.min(500, o.durationMs / 4), null);
  const acc = new Acc();
  await acc.slice(fn, inFlight, o.durationMs);
  return acc.result(inFlight);
}

export interface InterleaveOptions extends MeasureOptions {
  /** Length of one turn, ms. */
  sliceMs?: number;
}

/**
 * Measures every subject at `inFlight` for about `durationMs` each, in turns
 * of `sliceMs` (the order rotating each round), after a warm-up of each.
 * Answers one row per subject, in the order given.
 */
export async function measureInterleaved(subjects: Subject[], inFlight: number, o: InterleaveOptions): Promise<Row[]> {
  const sliceMs = o.sliceMs ?? 250;
  const rounds = Math.max(1, Math.round(o.durationMs / sliceMs));
  for (const s of subjects) await run(s.call, inFlight, o.warmupMs ?? Math.min(500, o.durationMs / 4), null);
  const acc = subjects.map(() => new Acc());
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const i = (r + k) % subjects.length;
      await acc[i]!.slice(subjects[i]!.call, inFlight, sliceMs);
    }
  }
  return subjects.map((s, i) => ({ name: s.name, bus: s.bus, ...acc[i]!.result(inFlight) }));
}

/** Samples, time and CPU of one subject, summed over its slices. */
class Acc {
  private readonly lat = new Samples();
  private elapsedMs = 0;
  private errors = 0;
  private cpuUs = 0;
  private childUs = 0;

  async slice(fn: () => Promise<unknown>, inFlight: number, ms: number): Promise<void> {
    const cpu0 = process.cpuUsage();
    const child0 = childrenCpuUs();
    const r = await run(fn, inFlight, ms, this.lat);
    const cpu = process.cpuUsage(cpu0);
    this.childUs += Math.max(0, childrenCpuUs() - child0);
    this.cpuUs += cpu.user + cpu.system;
    this.elapsedMs += r.elapsedMs;
    this.errors += r.errors;
  }

  result(inFlight: number): Measured {
    const sorted = this.lat.sorted();
    return {
      in_flight: inFlight,
      calls: sorted.length,
      p50_us: round(quantile(sorted, 0.5) * 1000),
      p99_us: round(quantile(sorted, 0.99) * 1000),
      calls_per_s: Math.round(sorted.length / (this.elapsedMs / 1000)),
      errors: this.errors,
      cpu_us_per_call: sorted.length ? round(this.cpuUs / sorted.length) : NaN,
      children_cpu_us_per_call: sorted.length ? round(this.childUs / sorted.length) : NaN,
      total_cpu_us_per_call: sorted.length ? round((this.cpuUs + this.childUs) / sorted.length) : NaN,
    };
  }
}

async function run(fn: () => Promise<unknown>, inFlight: number, durationMs: number, lat: Samples | null): Promise<{ elapsedMs: number; errors: number }> {
  const start = performance.now();
  const end = start + durationMs;
  let errors = 0;
  const worker = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        await fn();
        lat?.push(performance.now() - t0);
      } catch (e) {
        // A failing row is reported, not fatal: print the first error only.
        if (errors++ === 0) console.error(`bench: call failed: ${(e as Error).message}`);
        if (errors > 1000) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  // Workers stop issuing at `end`; the window is until the last one finished.
  return { elapsedMs: performance.now() - start, errors };
}

/** Latencies in ms, in a growable typed array (no boxing, no GC pressure). */
class Samples {
  private a = new Float64Array(1 << 16);
  private n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  sorted(): Float64Array {
    return this.a.slice(0, this.n).sort();
  }
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
