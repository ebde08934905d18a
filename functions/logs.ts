/**
 * The `logs` Lambda: a CloudWatch Logs subscription delivers a batch of one log stream's events; each line
 * is attributed to (job, pod), agent status records become `AgentRecord` observations (decide reads a
 * heartbeat's training progress from them), and
 * worker lines run through the job's log rules. Then ONE reconcile per job touched: the cost is O(jobs),
 * not O(lines).
 *
 * Steps: decode → attribute → group by job → per job: skip if this batch was done → reconcile(agent
 * records + rule evaluation) → mark done.
 *
 * Duplicate delivery. CloudWatch → Lambda is at-least-once (async retries; a batch may even arrive twice
 * without an error). A per-(batch, job) mark, peeked before and written after a successful reconcile:
 *
 * ```
 *  delivery 1: peek ∅ ─ reconcile (write v8: FaultDetected, restart → g3) ─ mark ✓
 *  delivery 2:                                                               peek ✓ ─ skip        (common case)
 *
 *  delivery 1: peek ∅ ─ reconcile (write v8) ─ ✗ crash before mark
 *  delivery 2: peek ∅ ─ reconcile again:
 *              · agent FAULTED records for g2: job is at g3 → decide ignores them (faults dedupe by generation)
 *              · worker lines written before the g3 run started (`runningSince`) are not evaluated
 *              · findings for the same rule/stream/generation dedupe by finding identity in decide
 *              ─ mark ✓                                                       ⇒ one fault, one restart
 * ```
 * Claiming first instead (`claimOnce` before the reconcile) would lose the batch on a crash: the retry sees
 * the claim and skips lines nobody evaluated. The mark is therefore written only after success; the crash
 * window above can re-count healthy data points of that one batch (e.g. a SLOW streak), never re-restart.
 * Two deliveries of one batch *in flight at the same time* both see no mark; their writes race on the
 * version check and the loser re-evaluates from the winner's rule state (observations are a function of
 * the re-read job), so again only healthy data points can be counted twice — a fault still restarts once.
 * The mark uses the store's idempotency record (`getIdempotencyKey`/`putIdempotencyKey`) because it can be
 * read without being taken; `claimOnce` cannot.
 *
 * Bad input never sinks the batch: an undecodable payload, a 1 MB line, an unknown job, a malformed agent
 * record are counted (`trainkeeper_malformed_events_skipped_total{kind}`) and skipped.
 */
import type { CloudWatchLogsEvent as AwsCloudWatchLogsEvent, Handler } from 'aws-lambda';
import type { AgentRecord } from '../core/agent-protocol.ts';
import { type JobRecord, jobKey } from '../core/job.ts';
import { Metric } from '../core/metrics.ts';
import { type Observation, POD_LABELS } from '../core/observations.ts';
import type { CounterIncrement, JobRef } from '../core/ports.ts';
import { evaluateLines } from '../rules/engine.ts';
import type { LogLine } from '../rules/types.ts';
import { lambdaHandler } from './shell/deps.ts';
import { compiledRulesFor, ruleObservation, ruleStateFor } from './shell/job-rules.ts';
import {
  CloudWatchLogsEvent,
  classifyLine,
  decodeSubscriptionData,
  isMalformed,
  type MalformedKind,
  type SourcedLine,
  sourceLogEvent,
} from './shell/log-payload.ts';
import { countSafely, type Deps, forEachJob, reconcile, throwIfAnyRetryable } from './shell/reconcile.ts';

/** How long a processed (batch, job) mark is kept: longer than Lambda's 6 h async retry window. */
export const BATCH_MARK_TTL_SECONDS = 24 * 3600;

/** What one invocation did (returned for tests and the local control plane). */
export interface LogsOutcome {
  /** `control` for CONTROL_MESSAGE probes, `malformed` when the payload itself was unusable. */
  status: 'processed' | 'control' | 'malformed';
  events: number;
  jobs: { ref: JobRef; status: 'reconciled' | 'duplicate' | 'missing' | 'failed'; linesEvaluated: number }[];
  skipped: Partial<Record<MalformedKind, number>>;
}

interface WorkerLine {
  pod: string;
  localRank?: number;
  timestamp: number;
  text: string;
}

/** The lines of one batch that belong to one job. */
interface JobBatch {
  ref: JobRef;
  agent: { pod: string; record: AgentRecord; at: number }[];
  worker: WorkerLine[];
}

/** Builds the handler over the given ports. */
export function makeHandler(deps: Deps): (event: unknown) => Promise<LogsOutcome> {
  return async (event) => {
    const outcome: LogsOutcome = { status: 'processed', events: 0, jobs: [], skipped: {} };
    const skip = (kind: MalformedKind, detail: string, count = 1) => {
      outcome.skipped[kind] = (outcome.skipped[kind] ?? 0) + count;
      deps.log.warn('logs: skipped malformed input', { kind, detail: detail.slice(0, 300) });
    };
    try {
      const envelope = CloudWatchLogsEvent.safeParse(event);
      if (!envelope.success) {
        skip('payload-schema', 'the event has no awslogs.data');
        outcome.status = 'malformed';
        return outcome;
      }
      const payload = decodeSubscriptionData(envelope.data.awslogs.data);
      if (isMalformed(payload)) {
        skip(payload.malformed, payload.detail);
        outcome.status = 'malformed';
        return outcome;
      }
      if (payload.messageType === 'CONTROL_MESSAGE') {
        outcome.status = 'control';
        return outcome;
      }
      outcome.events = payload.logEvents.length;
      const first = payload.logEvents[0];
      const last = payload.logEvents.at(-1);
      if (!first || !last) return outcome;
      const batchKey = `logs#${payload.logGroup}#${payload.logStream}#${first.id}#${last.id}`;

      // attribute
      const resolver = new JobResolver(deps);
      const batches = new Map<string, JobBatch>();
      for (const logEvent of payload.logEvents) {
        const line = sourceLogEvent(logEvent, payload.logStream);
        if (isMalformed(line)) {
          skip(line.malformed, line.detail);
          continue;
        }
        const classified = classifyLine(line.text);
        if (isMalformed(classified)) {
          skip(classified.malformed, classified.detail);
          continue;
        }
        const ref = await resolver.resolve(line, classified.kind === 'agent' ? classified.record : undefined);
        if (!ref) {
          skip('unknown-job', `pod ${line.source.namespace}/${line.source.pod} belongs to no known job`);
          continue;
        }
        const key = jobKey(ref);
        const batch = batches.get(key) ?? { ref, agent: [], worker: [] };
        batches.set(key, batch);
        if (classified.kind === 'agent') {
          batch.agent.push({
            pod: classified.record.pod ?? line.source.pod,
            record: classified.record,
            at: line.timestamp,
          });
        } else {
          batch.worker.push({
            pod: line.source.pod,
            ...(classified.localRank !== undefined ? { localRank: classified.localRank } : {}),
            timestamp: line.timestamp,
            text: classified.text,
          });
        }
      }

      // one reconcile per job
      const jobBatches = [...batches.values()];
      const runs = await forEachJob(
        deps,
        'logs',
        jobBatches.map((b) => b.ref),
        (ref, i) => processJob(deps, jobBatches[i] as JobBatch, `${batchKey}#${jobKey(ref)}`),
      );
      for (const [i, run] of runs.entries()) {
        if (!run.ok) {
          outcome.jobs.push({ ref: run.ref, status: 'failed', linesEvaluated: 0 });
          continue;
        }
        outcome.jobs.push(run.value);
        if (run.value.status === 'missing') {
          const batch = jobBatches[i] as JobBatch;
          skip(
            'unknown-job',
            `job ${jobKey(run.ref)} does not exist`,
            batch.agent.length + batch.worker.length,
          );
        }
      }
      throwIfAnyRetryable('logs', runs);
      return outcome;
    } finally {
      const increments: CounterIncrement[] = Object.entries(outcome.skipped).map(([kind, by]) => ({
        name: Metric.malformedEventsSkipped,
        labels: { kind },
        by: by ?? 0,
      }));
      const evaluated = outcome.jobs.reduce((n, j) => n + j.linesEvaluated, 0);
      if (evaluated > 0) increments.push({ name: Metric.logLinesEvaluated, labels: {}, by: evaluated });
      await countSafely(deps, increments);
    }
  };
}

/** peek the mark → reconcile (agent observations + rules) → maybe a second pass → mark. */
async function processJob(
  deps: Deps,
  batch: JobBatch,
  markKey: string,
): Promise<LogsOutcome['jobs'][number]> {
  if (await deps.idempotency.getIdempotencyKey(markKey))
    return { ref: batch.ref, status: 'duplicate', linesEvaluated: 0 };
  const fixed: Observation[] = [];
  for (const a of batch.agent) fixed.push({ type: 'AgentRecord', pod: a.pod, record: a.record, at: a.at });
  let evaluated = 0;
  let wasRunning = false;
  const observe =
    (withAgentRecords: boolean) =>
    (job: JobRecord, now: number): Observation[] => {
      wasRunning = job.phase === 'Running';
      const obs = withAgentRecords ? [...fixed] : [];
      if (job.phase === 'Running' && batch.worker.length > 0) {
        const rules = evaluateRules(job, batch.worker, now);
        evaluated = rules.evaluated;
        obs.push(...rules.observations);
      } else {
        evaluated = 0;
      }
      return obs;
    };
  const first = await reconcile(deps, batch.ref, observe(true));
  if (first.status === 'missing') return { ref: batch.ref, status: 'missing', linesEvaluated: 0 };
  let total = evaluated;
  // The batch's agent records may have just made the job Running (all agents RUNNING): its worker lines
  // from after that moment are evaluated in a second pass. At most two reconciles per job and batch.
  if (!wasRunning && first.job?.phase === 'Running' && batch.worker.length > 0) {
    await reconcile(deps, batch.ref, observe(false));
    total += evaluated;
  }
  await deps.idempotency.putIdempotencyKey(
    markKey,
    { ref: batch.ref, bodyHash: 'logs' },
    BATCH_MARK_TTL_SECONDS,
  );
  return { ref: batch.ref, status: 'reconciled', linesEvaluated: total };
}

/**
 * Runs the job's rules over the batch's worker lines of the current generation: lines of pods that hold
 * a slot, written at or after `runningSince`. Global rank = slot.groupRank × nprocPerNode + local rank
 * (unknown when nprocPerNode is resolved on the node: `auto`/`gpu`/`cpu`).
 */
function evaluateRules(
  job: JobRecord,
  worker: WorkerLine[],
  now: number,
): { observations: Observation[]; evaluated: number } {
  const compiled = compiledRulesFor(job);
  if (!compiled) return { observations: [], evaluated: 0 };
  const since = job.runningSince ?? 0;
  const nproc = typeof job.spec.nprocPerNode === 'number' ? job.spec.nprocPerNode : undefined;
  const lines: LogLine[] = [];
  for (const w of worker) {
    if (w.timestamp < since) continue;
    const slot = job.pods.find((s) => s.name === w.pod);
    if (!slot) continue;
    const rank =
      w.localRank !== undefined && slot.groupRank !== null && nproc !== undefined
        ? slot.groupRank * nproc + w.localRank
        : undefined;
    lines.push({
      stream: w.localRank === undefined ? w.pod : `${w.pod}/${w.localRank}`,
      ...(rank !== undefined ? { rank } : {}),
      timestamp: w.timestamp,
      text: w.text,
    });
  }
  if (lines.length === 0) return { observations: [], evaluated: 0 };
  const result = evaluateLines(compiled, ruleStateFor(compiled, job, now), lines, now);
  const observations: Observation[] = [ruleObservation(result.state, result.findings)];
  const progressRule = job.spec.trainkeeper.progressRule;
  if (progressRule) {
    let best: { step: number; at: number } | undefined;
    for (const v of result.values) {
      if (v.rule !== progressRule || !Number.isFinite(v.value)) continue;
      if (!best || v.value > best.step) best = { step: v.value, at: v.at };
    }
    if (best) observations.push({ type: 'Progress', step: best.step, at: best.at });
  }
  return { observations, evaluated: lines.length };
}

/**
 * Maps a line to its job: the pod's `trainkeeper.dev/job` label, else the job an agent record names, else
 * a lookup of the pod name among active jobs' slots (loaded once per batch, only when needed).
 */
class JobResolver {
  private podIndex: Map<string, JobRef> | undefined;

  constructor(private readonly deps: Deps) {}

  async resolve(line: SourcedLine, record: AgentRecord | undefined): Promise<JobRef | undefined> {
    const label = line.source.labels[POD_LABELS.job];
    if (label) return { namespace: line.source.namespace, name: label };
    if (record?.job) return { namespace: record.namespace ?? line.source.namespace, name: record.job };
    const index = await this.index();
    return index.get(`${line.source.namespace}/${line.source.pod}`);
  }

  private async index(): Promise<Map<string, JobRef>> {
    if (this.podIndex) return this.podIndex;
    const index = new Map<string, JobRef>();
    const refs = await this.deps.store.listActiveJobs();
    const jobs = await Promise.all(refs.map((ref) => this.deps.store.getJob(ref)));
    for (const job of jobs) {
      if (!job) continue;
      for (const slot of job.pods)
        index.set(`${job.namespace}/${slot.name}`, { namespace: job.namespace, name: job.name });
    }
    this.podIndex = index;
    return index;
  }
}

/** The Lambda entry point: deps from the environment, built once per instance (functions/shell/deps.ts). */
/** The Lambda entry point, typed as a CloudWatch Logs subscription calls it; zod still checks the envelope. */
export const handler: Handler<AwsCloudWatchLogsEvent, LogsOutcome> = lambdaHandler(makeHandler);
