/**
 * `decide` at scale (issue #16): p50/p95 of one `decide` call for a Running job of 16 to 16,384 pods, for a
 * heartbeat batch and for a worker-crash batch that restarts every rank (bench/decide-scale.ts says what
 * each batch is). Target: heartbeat p50 ≤ 50 ms at 4,096 pods. The baseline in the same run is the
 * smallest job: a decide that does O(changed slots) work per observation grows with N only through the
 * passes the level-triggered lifecycle and the record's size checks make, so the `× 16 pods` column shows
 * how far from flat each size is. `DECIDE_BENCH_ITERATIONS` sets the calls per figure (default 30).
 * Wall and CPU time are both printed (on a loaded machine wall time also counts waits for a core).
 * Figures are printed, never asserted.
 */
import { measureDecide } from './decide-scale.ts';
import { loadLine, printTable } from './support.ts';

const SIZES = [16, 256, 1_024, 4_096, 16_384];
const ITERATIONS = Number(process.env.DECIDE_BENCH_ITERATIONS ?? 30);

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

export default async function bench(): Promise<void> {
  const rows: string[][] = [];
  let base: number | undefined;
  for (const pods of SIZES) {
    const f = measureDecide(pods, { iterations: ITERATIONS });
    base ??= f.p50Ms;
    rows.push([
      pods.toLocaleString('en-US'),
      fmt(f.p50Ms),
      fmt(f.p95Ms),
      fmt(f.cpuP50Ms),
      `${(f.p50Ms / base).toFixed(1)}×`,
      fmt(f.compactP50Ms),
      fmt(f.faultP50Ms),
      fmt(f.faultP95Ms),
      fmt(f.faultCpuP50Ms),
    ]);
  }
  printTable(
    [
      '>pods',
      '>heartbeat p50 (ms)',
      '>heartbeat p95 (ms)',
      '>heartbeat CPU p50 (ms)',
      '>p50 × 16 pods',
      '>of which compactRecord p50 (ms)',
      '>restart p50 (ms)',
      '>restart p95 (ms)',
      '>restart CPU p50 (ms)',
    ],
    rows,
  );
  console.log(`${ITERATIONS} calls per figure; target heartbeat p50 ≤ 50 ms at 4,096 pods`);
  console.log(loadLine());
}
