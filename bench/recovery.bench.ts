/**
 * Recovery latency end to end on the embedded local control plane (`startLocalControlPlane`: the real
 * Lambda handlers, dynalite, the local Kubernetes API + process kubelet, real `trainkeeper-agent`
 * processes running examples/trainers/sim_trainer.py, the log shipper and a 1 s sweep).
 *
 * For 4 pods × 2 workers and 16 pods × 1 worker, one job per recovery level, each hit by several faults in
 * a row (every fault after some training progress):
 * - `process`: a worker crash (chaos `crash`), recovered by a process-level restart in the same pods;
 * - `pod`: the rank's pod deleted with grace period 0 (chaos `kill-pod`), recovered by pod replacement;
 * - `job`: the same worker crash with `numRestartBeforeFullJobRestart: 0`, so the ladder escalates every
 *   automatic restart to a full job restart (every pod deleted and recreated).
 *
 * Detection latency = the remediation's `detectionTime` − the injection time (`ChaosResult.at`, taken by
 * the injector before the fault exists): it includes the trainer noticing its chaos file (≤ one step) and
 * the agent/kubelet reporting it. The remediation's own `detectionLatencyMs` (detection − the fault time
 * the control plane attributes: the exit or deletion it observed) is printed alongside. Recovery latency
 * = `restartLatencyMs` (FaultDetected → every agent of the new generation RUNNING).
 *
 * Targets on this machine: detection p50 < 500 ms; process-level recovery p50 < 2 s and ≥ 5× faster than a
 * full job restart. Figures are printed, never asserted. `RECOVERY_BENCH_FAULTS` sets the faults per job
 * (default 5).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosFault } from '../local/chaos.ts';
import { startLocalControlPlane } from '../local/control-plane.ts';
import { E2E, type JobDoc, jobManifest } from '../test/e2e/harness.ts';
import { loadLine, percentile, printTable } from './support.ts';

const FAULTS = Number(process.env.RECOVERY_BENCH_FAULTS ?? 5);
/** Pods × workers per pod: the small and the large case (16 × 1 keeps the process count sane on 2 cores). */
const SHAPES = [
  { pods: 4, nproc: 2 },
  { pods: 16, nproc: 1 },
] as const;
const LEVELS = ['process', 'pod', 'job'] as const;
type Level = (typeof LEVELS)[number];

const FAULT_OF: Record<Level, ChaosFault> = { process: 'crash', pod: 'kill-pod', job: 'crash' };
const RUN_POLICY: Record<Level, Record<string, unknown>> = {
  process: {
    jobMaxRetryCount: 100,
    restartPolicy: { numRestartBeforeFullJobRestart: 100, evalPeriodSeconds: 3600 },
  },
  pod: {
    jobMaxRetryCount: 100,
    restartPolicy: { numRestartBeforeFullJobRestart: 100, evalPeriodSeconds: 3600 },
  },
  job: {
    jobMaxRetryCount: 100,
    restartPolicy: { numRestartBeforeFullJobRestart: 0, evalPeriodSeconds: 3600, maxFullJobRestarts: 100 },
  },
};

/** One measured fault. */
interface Sample {
  /** detectionTime − injection time. */
  detectionMs: number;
  /** The remediation's own detectionLatencyMs (detection − attributed fault time). */
  ownDetectionMs: number;
  recoveryMs: number;
  level: string;
  reason: string;
}

type Remediation = JobDoc['status']['remediations'][number] & { detectionTime?: string };

/** Runs `FAULTS` faults of one level against a fresh job and returns one sample per fault. */
async function measure(t: E2E, pods: number, nproc: number, level: Level): Promise<Sample[]> {
  const name = `bench-${pods}x${nproc}-${level}`;
  const submitted = await t.submit(
    jobManifest(t.plane, {
      name,
      replicas: pods,
      nproc,
      steps: 1_000_000,
      stepTime: 0.1,
      checkpointEvery: 5,
      runPolicy: RUN_POLICY[level],
    }),
  );
  if (submitted.status !== 201)
    throw new Error(`submit ${name}: ${submitted.status} ${JSON.stringify(submitted.body)}`);
  const samples: Sample[] = [];
  try {
    for (let i = 0; i < FAULTS; i++) {
      const before = await t.waitForTraining(name, 5);
      const count = before.status.remediations.length;
      // A different rank each time (never rank 0's pod for kill-pod twice in a row).
      const rank = (i * 3 + 1) % (pods * nproc);
      const injected = await t.chaos(name, FAULT_OF[level], { rank, exitCode: 1 });
      const after = await t.waitFor(
        name,
        `recovery from fault ${i + 1} (${FAULT_OF[level]} rank ${rank})`,
        (j) =>
          j.status.phase === 'Running' &&
          j.status.remediations.slice(count).some((r) => r.restartLatencyMs !== null),
        120_000,
      );
      const r = after.status.remediations
        .slice(count)
        .find((x) => x.restartLatencyMs !== null) as Remediation;
      if (r.detectionTime === undefined) throw new Error(`${name}: remediation without detectionTime`);
      samples.push({
        detectionMs: Date.parse(r.detectionTime) - injected.at,
        ownDetectionMs: r.detectionLatencyMs,
        recoveryMs: r.restartLatencyMs as number,
        level: r.level,
        reason: r.reason,
      });
    }
  } finally {
    await fetch(`${t.api}/jobs/default/${name}`, { method: 'DELETE' });
    // Free the nodes before the next job: wait for Cancelled and for every pod to be gone.
    await t.waitFor(name, 'Cancelled', (j) => j.status.phase === 'Cancelled', 60_000).catch(() => undefined);
    const deadline = Date.now() + 60_000;
    while ((await t.kubePods(name)).length > 0 && Date.now() < deadline) await sleep(200);
  }
  return samples;
}

const p = (xs: number[], q: number): string => {
  const v = percentile(xs, q);
  return v === undefined ? '–' : `${Math.round(v).toLocaleString('en-US')}`;
};

/** Runs the benchmark and prints its table. */
export default async function bench(): Promise<void> {
  const nodes = Math.max(...SHAPES.map((s) => s.pods)) + 1;
  console.log(
    `worker crash recovered at process, pod and job level; ${FAULTS} faults per job; local control plane with ${nodes} nodes, 1 s sweep`,
  );
  console.log(`detection = remediation detectionTime − injection time; recovery = restartLatencyMs`);
  console.log(`start: ${loadLine()}`);
  const plane = await startLocalControlPlane({ nodes });
  const t = new E2E(plane);
  const rows: string[][] = [];
  const processP50: Record<number, number | undefined> = {};
  const jobP50: Record<number, number | undefined> = {};
  const mismatches: string[] = [];
  try {
    for (const { pods, nproc } of SHAPES) {
      for (const level of LEVELS) {
        const samples = await measure(t, pods, nproc, level);
        for (const s of samples)
          if (s.level !== level) mismatches.push(`${pods} pods, ${level}: got ${s.level} (${s.reason})`);
        const det = samples.map((s) => s.detectionMs);
        const own = samples.map((s) => s.ownDetectionMs);
        const rec = samples.map((s) => s.recoveryMs);
        if (level === 'process') processP50[pods] = percentile(rec, 0.5);
        if (level === 'job') jobP50[pods] = percentile(rec, 0.5);
        rows.push([
          `${pods} × ${nproc}`,
          level,
          String(samples.length),
          p(det, 0.5),
          p(det, 0.9),
          p(own, 0.5),
          p(rec, 0.5),
          p(rec, 0.9),
          [...new Set(samples.map((s) => s.reason))].join(', '),
        ]);
        console.log(`  done: ${pods} pods, ${level} (${loadLine()})`);
      }
    }
  } finally {
    await plane.stop();
  }
  printTable(
    [
      'pods × workers',
      'level',
      '>n',
      '>detection p50 ms',
      '>detection p90 ms',
      '>own detection p50 ms',
      '>recovery p50 ms',
      '>recovery p90 ms',
      'reason',
    ],
    rows,
  );
  for (const { pods } of SHAPES) {
    const proc = processP50[pods];
    const job = jobP50[pods];
    if (proc === undefined || job === undefined) continue;
    console.log(
      `${pods} pods: process-level recovery p50 ${Math.round(proc)} ms (target < 2,000) is ${(job / proc).toFixed(1)}× faster than a full job restart (target ≥ 5×)`,
    );
  }
  for (const m of mismatches) console.log(`UNEXPECTED LEVEL: ${m}`);
  console.log(`end: ${loadLine()}`);
}
