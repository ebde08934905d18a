/**
 * How long one `decide` takes for a Running job of N pods (issue #16 "Scale"), as a function other benches
 * reuse (bench/decide.bench.ts prints a table of it; bench/scale.bench.ts puts it beside the store).
 *
 * The job: the spec of test/fixtures/manifests/p5-16-nodes-log-rules.yaml (four log rules, one replica
 * spec) with `replicas` set to N, every slot Running on its node with its agent RUNNING (`runningRecord`).
 * Two batches are timed, each `decide(job, batch, now)` call on its own:
 * - heartbeat: one agent heartbeat of one pod with a new training step, each call on the previous call's
 *   result (so the record keeps moving, as under a stream of log batches);
 * - fault: one agent `/status` answer FAULTED (a worker crash) from the Running job, which restarts every
 *   rank at process level (generation + 1, Restarting, StopAgents for all N pods): the expensive decision.
 *   Every call starts from the same Running record (decide never mutates its input).
 * Figures are nearest-rank percentiles of the calls, plus the time a heartbeat's `compactRecord` takes
 * (core/decide/compact.ts measures the JSON of every record decide changes); nothing is asserted about
 * time. The decisions are checked (a heartbeat changes the record, the fault restarts every rank) so the
 * figures time what they say.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compactRecord } from '../core/decide/compact.ts';
import { decide } from '../core/decide.ts';
import type { JobRecord } from '../core/job.ts';
import type { Observation } from '../core/observations.ts';
import { parseJobManifest } from '../core/spec/parse.ts';
import { runningRecord } from '../test/core/big-record.ts';
import { percentile } from './support.ts';

const MANIFEST = fileURLToPath(
  new URL('../test/fixtures/manifests/p5-16-nodes-log-rules.yaml', import.meta.url),
);

/** What `measureDecide` returns: milliseconds per `decide` call. */
export interface DecideFigures {
  /** Heartbeat batches: median and 95th percentile. */
  p50Ms: number;
  p95Ms: number;
  /** Worker-crash batches (process-level restart of every rank): median and 95th percentile. */
  faultP50Ms: number;
  faultP95Ms: number;
  /**
   * Medians of the CPU time (user + system, `process.cpuUsage`) of the same calls: on a shared machine
   * wall time counts the waits for a core too, CPU time much less so.
   */
  cpuP50Ms: number;
  faultCpuP50Ms: number;
  /**
   * Median of `compactRecord` alone on the records the heartbeats produced: the part of `p50Ms` spent
   * measuring (and, past `MAX_RECORD_BYTES`, trimming) the record's JSON, which grows with the record.
   */
  compactP50Ms: number;
}

/** A Running job of `pods` pods on the fixture's spec (see the module comment). */
export const runningJobOf = (pods: number): JobRecord => {
  if (!Number.isSafeInteger(pods) || pods < 1)
    throw new Error(`runningJobOf: pods must be a positive integer, got ${pods}`);
  const text = readFileSync(MANIFEST, 'utf8');
  if (!/^ {6}replicas: 16$/m.test(text)) throw new Error(`runningJobOf: no "replicas: 16" in ${MANIFEST}`);
  const parsed = parseJobManifest(text.replace(/^ {6}replicas: 16$/m, `      replicas: ${pods}`));
  if (!parsed.ok)
    throw new Error(
      `runningJobOf: the fixture does not parse with ${pods} replicas: ${JSON.stringify(parsed)}`,
    );
  return runningRecord(parsed.spec);
};

/** One agent heartbeat of `pod` at generation 0 with training step `step` (what a log batch carries). */
export const heartbeat = (pod: string, at: number, step: number): Observation => ({
  type: 'AgentRecord',
  pod,
  at,
  record: {
    trainkeeper: 'agent/v1',
    ts: new Date(at).toISOString(),
    generation: 0,
    state: 'RUNNING',
    kind: 'heartbeat',
    progress: { step },
  },
});

const crash = (job: JobRecord, at: number): Observation => ({
  type: 'AgentPolled',
  pod: job.pods[0]!.name,
  at,
  status: {
    status: 'faulted',
    faultCount: job.generation,
    reason: 'WorkerCrash',
    message: 'worker 3 exited with code 1',
  },
});

const time = (f: () => void, cpu?: number[]): number => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  cpu?.push((c.user + c.system) / 1000);
  return wall;
};

/**
 * Times `iterations` (default 30) heartbeat batches and as many worker-crash batches through `decide` for
 * a Running job of `pods` pods. Throws on a bad argument, or when a decision is not the one timed.
 */
export const measureDecide = (pods: number, opts: { iterations?: number } = {}): DecideFigures => {
  const iterations = opts.iterations ?? 30;
  if (!Number.isSafeInteger(iterations) || iterations < 1)
    throw new Error(`measureDecide: iterations must be a positive integer, got ${iterations}`);
  const start = runningJobOf(pods);
  const t0 = 2_000_000;

  const beats: number[] = [];
  const beatsCpu: number[] = [];
  const compacts: number[] = [];
  let job = start;
  for (let i = 0; i < iterations; i++) {
    const at = t0 + i * 100;
    const batch = [heartbeat(job.pods[i % pods]!.name, at, i + 1)];
    let out: ReturnType<typeof decide> | undefined;
    beats.push(time(() => (out = decide(job, batch, at)), beatsCpu));
    if (!out?.changed) throw new Error(`measureDecide: heartbeat ${i} did not change the record`);
    job = out.job;
    compacts.push(time(() => compactRecord(job)));
  }

  const faults: number[] = [];
  const faultsCpu: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const at = t0 + i * 100;
    const batch = [crash(start, at)];
    let out: ReturnType<typeof decide> | undefined;
    faults.push(time(() => (out = decide(start, batch, at)), faultsCpu));
    const stop = out?.actions.find((a) => a.type === 'StopAgents');
    if (
      out?.job.phase !== 'Restarting' ||
      out.job.generation !== start.generation + 1 ||
      stop?.type !== 'StopAgents' ||
      stop.pods.length !== pods
    )
      throw new Error(`measureDecide: the crash did not restart all ${pods} ranks at process level`);
  }

  return {
    p50Ms: percentile(beats, 0.5)!,
    p95Ms: percentile(beats, 0.95)!,
    faultP50Ms: percentile(faults, 0.5)!,
    faultP95Ms: percentile(faults, 0.95)!,
    compactP50Ms: percentile(compacts, 0.5)!,
    cpuP50Ms: percentile(beatsCpu, 0.5)!,
    faultCpuP50Ms: percentile(faultsCpu, 0.5)!,
  };
};
