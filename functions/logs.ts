/**
 * The `logs` Lambda. It is invoked one of two ways (`logDelivery` in the stage configuration):
 * - `direct`: the CloudWatch Logs subscription invokes it with one batch of one log stream's events
 *   (`awslogs.data`);
 * - `kinesis`: the subscription writes into a Kinesis data stream and the stream's event source mapping
 *   invokes it with many such payloads at once (`Records[].kinesis.data`), from many streams and pods.
 * Each line is attributed to (job, pod), agent status records become `AgentRecord` observations (decide
 * reads a heartbeat's training progress from them), and worker lines run through the job's log rules. Then
 * ONE reconcile per job touched (one per `AGENT_PODS_PER_RECONCILE` pods with agent records): the cost is
 * O(jobs), not O(lines), which is what the Kinesis delivery buys for a big job whose thousands of streams
 * would otherwise each read and write it.
 *
 * Steps: decode every payload → attribute → group by job → per job: skip if this batch was done →
 * reconcile(agent records + rule evaluation) → mark done.
 *
 * Duplicate delivery. CloudWatch → Lambda is at-least-once (async retries; a batch may even arrive twice
 * without an error), and so is a Kinesis event source (a failed batch is retried whole, or bisected). A
 * per-(batch, job) mark, peeked before and written after a successful reconcile (a direct batch is named by
 * its stream and first and last event, a Kinesis batch by its first and last record):
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
 *
 * Attribution. Every pod of the cluster can print anything, so a line is attributed only by where it came
 * from (`LineSource`: Fluent Bit's `kubernetes` metadata, or the stream name) and the job only by the store:
 * the job in that namespace one of whose slots the pod name belongs to (`JobResolver`). An agent record is
 * believed only from the agent's container (`agentContainerName`) of such a pod, and only when its own
 * `job`/`namespace`/`pod` fields agree with that; anything else is a `forged-agent-record` (counted, WARN
 * at most once a minute per source). Even then a record that would move the job (COMPLETED, FAULTED, a
 * crashed worker) is replaced by its agent's `/status` answer, asked through `pods/proxy` before the
 * reconcile, so decide acts on the agent's word (and on it in the same pass as the batch's rule findings);
 * decide itself asks (PollAgents) for any such record that reaches it (core/decide/fold.ts).
 */
import type { CloudWatchLogsEvent as AwsCloudWatchLogsEvent, Handler, KinesisStreamEvent } from 'aws-lambda';
import { agentContainerName } from '../adapters/kube/pod-builder.ts';
import type { AgentRecord } from '../core/agent-protocol.ts';
import { type SlotIndex, slotForPod, slotForPodName, slotIndex } from '../core/decide/naming.ts';
import { rankPodsToAsk } from '../core/decide/slots.ts';
import { type JobRecord, jobKey, type PodSlot } from '../core/job.ts';
import { Metric } from '../core/metrics.ts';
import type { Observation } from '../core/observations.ts';
import type { CounterIncrement, JobRef, JobStore } from '../core/ports.ts';
import { evaluateLines } from '../rules/engine.ts';
import type { RuleState } from '../rules/state.ts';
import type { LogLine } from '../rules/types.ts';
import { lambdaHandler } from './shell/deps.ts';
import { compiledRulesFor, rememberRuleState, ruleObservation, ruleStateFor } from './shell/job-rules.ts';
import {
  type CloudWatchLogsPayload,
  classifyLine,
  decodeSubscriptionData,
  deliveryOf,
  isMalformed,
  type LineSource,
  type MalformedKind,
  type StreamTail,
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
  /** The job's generation as the store had it when the batch was attributed. */
  generation: number;
  /** The job as the store had it when the batch was attributed (the reconcile's first read). */
  job: JobRecord;
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
      const delivery = deliveryOf(event);
      if (!delivery) {
        skip('payload-schema', 'the event has neither awslogs.data nor Kinesis records');
        outcome.status = 'malformed';
        return outcome;
      }
      // Each payload is attributed as soon as it is decoded and then dropped: a Kinesis batch's thousands of
      // decoded events never live at once (only their lines' texts outlive their payload).
      const resolver = new JobResolver(deps);
      // by the job's record: the resolver reads each job once per invocation, so one record per job
      const batches = new Map<JobRecord, JobBatch>();
      let decoded = 0;
      let controls = 0;
      let batchKey = delivery.kind === 'kinesis' ? delivery.batchKey : undefined;
      for (const data of delivery.payloads) {
        const payload = decodeSubscriptionData(data);
        if (isMalformed(payload)) {
          skip(payload.malformed, payload.detail);
          continue;
        }
        if (payload.messageType === 'CONTROL_MESSAGE') {
          controls++;
          continue;
        }
        decoded++;
        outcome.events += payload.logEvents.length;
        if (delivery.kind === 'direct') batchKey = directBatchKey(payload);
        // The events of one payload come from one log stream: usually one container, so the owner of the
        // previous line's pod is checked first (and its pod name string shared by the lines kept).
        let last: { source: LineSource; owner: PodOwner | undefined } | undefined;
        const tail: StreamTail = {};
        for (const logEvent of payload.logEvents) {
          const line = sourceLogEvent(logEvent, payload.logStream, tail);
          if (isMalformed(line)) {
            skip(line.malformed, line.detail);
            continue;
          }
          const classified = classifyLine(line.text);
          if (isMalformed(classified)) {
            skip(classified.malformed, classified.detail);
            continue;
          }
          let source = line.source;
          let owner: PodOwner | undefined;
          if (last && sameSource(last.source, source)) {
            source = last.source;
            owner = last.owner;
          } else {
            // most lines come from a pod already resolved: no await (a microtask per line) for those
            owner = resolver.known(source) ?? (await resolver.resolve(source));
            last = { source, owner };
          }
          if (classified.kind === 'agent') {
            const forged = forgery(classified.record, source, owner);
            if (forged) {
              outcome.skipped['forged-agent-record'] = (outcome.skipped['forged-agent-record'] ?? 0) + 1;
              warnForged(deps, source, forged);
              continue;
            }
          }
          if (!owner) {
            skip('unknown-job', `pod ${source.namespace}/${source.pod} belongs to no known job`);
            continue;
          }
          let batch = batches.get(owner.job);
          if (!batch) {
            batch = {
              ref: { namespace: owner.job.namespace, name: owner.job.name },
              agent: [],
              worker: [],
              generation: owner.job.generation,
              job: owner.job,
            };
            batches.set(owner.job, batch);
          }
          if (classified.kind === 'agent') {
            batch.agent.push({ pod: source.pod, record: classified.record, at: line.timestamp });
          } else {
            const worker: WorkerLine = { pod: source.pod, timestamp: line.timestamp, text: classified.text };
            if (classified.localRank !== undefined) worker.localRank = classified.localRank;
            batch.worker.push(worker);
          }
        }
      }
      if (decoded === 0) {
        outcome.status = controls > 0 ? 'control' : 'malformed';
        return outcome;
      }
      if (batchKey === undefined) return outcome;

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

/** A direct delivery's batch: its stream and first and last event (undefined for an empty payload). */
function directBatchKey(payload: CloudWatchLogsPayload | undefined): string | undefined {
  const first = payload?.logEvents[0];
  const last = payload?.logEvents.at(-1);
  if (!payload || !first || !last) return undefined;
  return `logs#${payload.logGroup}#${payload.logStream}#${first.id}#${last.id}`;
}

/**
 * At most this many pods' agent records go into one reconcile. A steady heartbeat moves only its pod's
 * `lastSeenAt`, so a reconcile's write touches about one slot part per pod with a record; a Kinesis batch
 * can carry thousands of a big job's heartbeats, and a write of more than 99 parts is a rebase of the whole
 * job (adapters/dynamo/store.ts). Chunks keep each write one transaction of ≤ 64 slot parts plus the head
 * and the rule state; each chunk is decided as if its records had come in a batch of their own.
 */
export const AGENT_PODS_PER_RECONCILE = 64;

/** The batch's agent records in chunks of at most `AGENT_PODS_PER_RECONCILE` pods, in arrival order. */
function agentChunks(agent: JobBatch['agent']): JobBatch['agent'][] {
  const chunks: JobBatch['agent'][] = [];
  let pods = new Set<string>();
  let chunk: JobBatch['agent'] = [];
  for (const a of agent) {
    if (!pods.has(a.pod) && pods.size === AGENT_PODS_PER_RECONCILE) {
      chunks.push(chunk);
      chunk = [];
      pods = new Set();
    }
    pods.add(a.pod);
    chunk.push(a);
  }
  chunks.push(chunk);
  return chunks;
}

/**
 * peek the mark → per chunk of agent records: reconcile (agent observations, and with the first chunk the
 * rules over the worker lines) → maybe a second pass over the worker lines → mark.
 */
async function processJob(
  deps: Deps,
  batch: JobBatch,
  markKey: string,
): Promise<LogsOutcome['jobs'][number]> {
  if (await deps.idempotency.getIdempotencyKey(markKey))
    return { ref: batch.ref, status: 'duplicate', linesEvaluated: 0 };
  let evaluated = 0;
  let wasRunning = false;
  let ruleState: RuleState | undefined;
  const observe =
    (fixed: Observation[], withWorkerLines: boolean) =>
    (job: JobRecord, now: number): Observation[] => {
      if (withWorkerLines) wasRunning = job.phase === 'Running';
      const obs = [...fixed];
      if (!withWorkerLines) return obs;
      ruleState = undefined;
      if (job.phase === 'Running' && batch.worker.length > 0) {
        const rules = evaluateRules(job, batch.worker, now);
        evaluated = rules.evaluated;
        ruleState = rules.state;
        obs.push(...rules.observations);
      } else {
        evaluated = 0;
      }
      return obs;
    };
  let total = 0;
  // The job as last read or written: the next reconcile's first read. Without agent answers (the common
  // batch) only the batch mark's peek came between attribution's read of the job and the first chunk, and
  // nothing between one chunk's write and the next chunk: a record that moved meanwhile loses its
  // conditional write and reconcile re-reads it. So a batch reads the job once, however many chunks.
  let latest: JobRecord | undefined = batch.job;
  for (const [i, agent] of agentChunks(batch.agent).entries()) {
    const { fixed, asked } = await agentObservations(deps, batch, agent);
    const result = await reconcile(
      latest && !asked ? withFirstRead(deps, latest) : deps,
      batch.ref,
      observe(fixed, i === 0),
    );
    if (result.status === 'missing') return { ref: batch.ref, status: 'missing', linesEvaluated: 0 };
    if (i === 0) {
      rememberRuleState(result.job, ruleState);
      total = evaluated;
    }
    latest = result.job;
  }
  // The batch's agent records may have just made the job Running (all agents RUNNING): its worker lines
  // from after that moment are evaluated in a second pass. At most one such pass per job and batch.
  if (!wasRunning && latest?.phase === 'Running' && batch.worker.length > 0) {
    const second = await reconcile(withFirstRead(deps, latest), batch.ref, observe([], true));
    rememberRuleState(second.job, ruleState);
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
 * The observations one chunk of agent records makes, and whether agents were asked for them.
 *
 * A record that would move the job is replaced by its agent's /status answer, asked here so that the
 * answer is folded in the same decide as the batch's rule findings (one batch, one restart, as before).
 * decide asks itself (PollAgents) for any such record that still reaches it.
 * A fault claim of the current generation also asks other ranks' agents (`rankPodsToAsk`: all of a
 * small job, a bounded set near the claimants in a big one): a peer's crash report (its workers lost the
 * connection to the rank that failed) may be read before that rank's own, and decide blames the earliest
 * FAULTED transition (core/decide/fault.ts `withoutCollateral`).
 * A claim about an older generation's run (the workers a restart stopped, a late report of the crash
 * that caused it) cannot move the job: it is asked about no agent. It goes to decide as it is (decide
 * drops what is stale), except a worker exit, which says nothing else and would make decide ask.
 */
async function agentObservations(
  deps: Deps,
  batch: JobBatch,
  agent: JobBatch['agent'],
): Promise<{ fixed: Observation[]; asked: boolean }> {
  const fixed: Observation[] = [];
  const claims = new Set<string>();
  const faultClaims: string[] = [];
  for (const a of agent) {
    const record = a.record;
    if (!claimsChange(record) || record.generation < batch.generation) {
      if (!(claimsChange(record) && record.kind === 'worker-exit'))
        fixed.push({ type: 'AgentRecord', pod: a.pod, record, at: a.at });
      continue;
    }
    claims.add(a.pod);
    if (claimsFault(record) && record.generation === batch.generation) faultClaims.push(a.pod);
  }
  if (faultClaims.length > 0) for (const pod of rankPodsToAsk(batch.job, faultClaims)) claims.add(pod);
  if (claims.size === 0) return { fixed, asked: false };
  const results = await deps.cluster.agentStatus(batch.ref.namespace, [...claims]);
  const at = deps.clock.now();
  for (const r of results) {
    if (r.ok) fixed.push({ type: 'AgentPolled', pod: r.pod, status: r.status, at });
    else if (r.unreachable) fixed.push({ type: 'AgentPolled', pod: r.pod, status: null, at });
  }
  return { fixed, asked: true };
}

/**
 * `deps` whose first `getJob` of `job` answers `job` itself; every other call goes to the store.
 */
function withFirstRead(deps: Deps, job: JobRecord): Deps {
  const store = deps.store;
  let served = false;
  const getJob: JobStore['getJob'] = (ref) => {
    if (served || jobKey(ref) !== jobKey(job)) return store.getJob(ref);
    served = true;
    return Promise.resolve(job);
  };
  return {
    ...deps,
    store: new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'getJob') return getJob;
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
  };
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
): { observations: Observation[]; evaluated: number; state?: RuleState } {
  const compiled = compiledRulesFor(job);
  if (!compiled) return { observations: [], evaluated: 0 };
  const since = job.runningSince ?? 0;
  const nproc = typeof job.spec.nprocPerNode === 'number' ? job.spec.nprocPerNode : undefined;
  const lines: LogLine[] = [];
  // One pod (a direct batch) is looked up by a scan; the many of a Kinesis batch through an index.
  let index: SlotIndex | undefined;
  const first = worker[0]?.pod;
  const many = worker.some((w) => w.pod !== first);
  for (const w of worker) {
    if (w.timestamp < since) continue;
    if (many) index ??= indexOf(job);
    const slot = index ? index.byName.get(w.pod) : slotForPod(job, w.pod);
    if (!slot) continue;
    const rank =
      w.localRank !== undefined && slot.groupRank !== null && nproc !== undefined
        ? slot.groupRank * nproc + w.localRank
        : undefined;
    const line: LogLine = { stream: streamOf(w), timestamp: w.timestamp, text: w.text };
    if (rank !== undefined) line.rank = rank;
    lines.push(line);
  }
  if (lines.length === 0) return { observations: [], evaluated: 0 };
  const progressRule = job.spec.trainkeeper.progressRule;
  // Values only for the progress rule: the others' would be thousands of objects per batch, unread.
  const result = evaluateLines(compiled, ruleStateFor(compiled, job, now), lines, now, {
    valuesOf: progressRule ?? null,
  });
  // First, so that a hang verdict of the same batch is judged with the log path known to work. (A loop, not
  // `Math.max(...)`: a Kinesis batch's hundreds of thousands of lines would overflow the call stack.)
  let latest = Number.NEGATIVE_INFINITY;
  for (const l of lines) if (l.timestamp > latest) latest = l.timestamp;
  const observations: Observation[] = [
    { type: 'WorkerLinesArrived', at: latest },
    ruleObservation(result.state, result.findings),
  ];
  if (progressRule) {
    let best: { step: number; at: number } | undefined;
    for (const v of result.values) {
      if (v.rule !== progressRule || !Number.isFinite(v.value)) continue;
      if (!best || v.value > best.step) best = { step: v.value, at: v.at };
    }
    if (best) observations.push({ type: 'Progress', step: best.step, at: best.at });
  }
  return { observations, evaluated: lines.length, state: result.state };
}

/**
 * A job record's slot index, built on its first use: attribution looks up thousands of a big job's pods in
 * the record it read, and the rules evaluate the same record's lines (records are never written in place).
 */
const indexes = new WeakMap<JobRecord, SlotIndex>();
const indexOf = (job: JobRecord): SlotIndex => {
  let index = indexes.get(job);
  if (!index) {
    index = slotIndex(job);
    indexes.set(job, index);
  }
  return index;
};

/** Rank stream names by pod and local rank, made once per pod and rank (the rules key their state by them). */
const rankStreams = new Map<string, string[]>();
/** Pods whose rank stream names stay cached per Lambda instance. */
const RANK_STREAM_CACHE_PODS = 32_768;

/** A worker line's stream: `<pod>/<local rank>`, or the pod for unprefixed output. */
function streamOf(w: WorkerLine): string {
  if (w.localRank === undefined) return w.pod;
  let names = rankStreams.get(w.pod);
  if (!names) {
    if (rankStreams.size >= RANK_STREAM_CACHE_PODS) rankStreams.clear();
    names = [];
    rankStreams.set(w.pod, names);
  }
  let name = names[w.localRank];
  if (name === undefined) {
    name = `${w.pod}/${w.localRank}`;
    if (w.localRank < 1024) names[w.localRank] = name;
  }
  return name;
}

/**
 * Whether a record claims what would move a job if believed: COMPLETED or FAULTED (a state change or a
 * heartbeat) or a worker that crashed. Such claims are confirmed with the agent's `/status`.
 */
const claimsChange = (record: AgentRecord): boolean => record.state === 'COMPLETED' || claimsFault(record);

/** Whether a record claims a fault: FAULTED, or a worker that crashed. */
const claimsFault = (record: AgentRecord): boolean =>
  record.state === 'FAULTED' ||
  (record.kind === 'worker-exit' && (record.exitCode !== 0 || record.signal !== null));

/** A job and the slot a pod name belongs to (whichever pod generation the name has). */
interface PodOwner {
  job: JobRecord;
  slot: PodSlot;
}

/** Whether two lines come from the same container (attribution reads nothing else of a source). */
const sameSource = (a: LineSource, b: LineSource): boolean =>
  a === b ||
  (a.pod === b.pod && a.namespace === b.namespace && a.container === b.container && a.node === b.node);

/** Why an agent record is not believed (undefined: it is). */
function forgery(record: AgentRecord, source: LineSource, owner: PodOwner | undefined): string | undefined {
  if (!owner) return 'its pod belongs to no job';
  const agent = agentContainerName(owner.job.spec, owner.slot.replica);
  if (source.container === undefined || source.container !== agent) {
    return `it comes from container ${source.container ?? '(unknown)'}, not the agent's (${agent ?? '?'})`;
  }
  if (record.job !== undefined && record.job !== owner.job.name) return `it names job ${record.job}`;
  if (record.namespace !== undefined && record.namespace !== source.namespace) {
    return `it names namespace ${record.namespace}`;
  }
  if (record.pod !== undefined && record.pod !== source.pod) return `it names pod ${record.pod}`;
  return undefined;
}

/** One WARN per source at most this often (a forger can print thousands of lines a second). */
export const FORGED_WARN_INTERVAL_MS = 60_000;
const forgedWarnedAt = new Map<string, { at: number; suppressed: number }>();

function warnForged(deps: Deps, source: LineSource, why: string): void {
  const key = `${source.namespace}/${source.pod}/${source.container ?? ''}`;
  const now = deps.clock.now();
  const last = forgedWarnedAt.get(key);
  if (last && now - last.at < FORGED_WARN_INTERVAL_MS) {
    last.suppressed++;
    return;
  }
  forgedWarnedAt.delete(key);
  forgedWarnedAt.set(key, { at: now, suppressed: 0 });
  while (forgedWarnedAt.size > 1000) {
    const oldest = forgedWarnedAt.keys().next().value;
    if (oldest === undefined) break;
    forgedWarnedAt.delete(oldest);
  }
  deps.log.warn('logs: dropped a forged agent record', {
    namespace: source.namespace,
    pod: source.pod,
    container: source.container,
    why,
    ...(last ? { suppressedSinceLastWarning: last.suppressed } : {}),
  });
}

/** A name made by core/decide/naming.ts `podName` that was shortened (its job name is not in it). */
const SHORTENED_POD_NAME = /-[0-9a-f]{8}-\d+-g\d+$/;
/** At most this many candidate job names are looked up per pod. */
const MAX_CANDIDATES = 6;

/**
 * The job names a pod name `<job>-<replica>-<index>-g<generation>` may belong to: every dash-separated
 * prefix of `<job>-<replica>`, longest first (replica names are usually one word).
 */
export function candidateJobNames(pod: string): string[] {
  const m = /^(.+)-\d+-g\d+$/.exec(pod);
  if (!m) return [];
  const parts = (m[1] as string).split('-');
  const out: string[] = [];
  for (let k = parts.length - 1; k >= 1 && out.length < MAX_CANDIDATES; k--)
    out.push(parts.slice(0, k).join('-'));
  return out;
}

/**
 * Finds the job a pod belongs to, from the store only: the job of that namespace one of whose slots the
 * pod's name belongs to. The candidates named by the pod name are read (a get each, cached for the batch);
 * a shortened name (no job name in it) is looked up among the namespace's active jobs.
 */
class JobResolver {
  private readonly jobs = new Map<string, Promise<JobRecord | undefined>>();
  private active: Promise<JobRef[]> | undefined;
  private readonly owners = new Map<string, Promise<PodOwner | undefined>>();
  /** Owners found so far, by `<namespace>/<pod>`. */
  private readonly settled = new Map<string, PodOwner>();

  constructor(private readonly deps: Deps) {}

  /** The owner of an already resolved pod (undefined: not resolved yet, or no job owns it). */
  known(source: LineSource): PodOwner | undefined {
    return this.settled.get(`${source.namespace}/${source.pod}`);
  }

  resolve(source: LineSource): Promise<PodOwner | undefined> {
    const key = `${source.namespace}/${source.pod}`;
    let owner = this.owners.get(key);
    if (!owner) {
      owner = this.lookup(source.namespace, source.pod).then((found) => {
        if (found) this.settled.set(key, found);
        return found;
      });
      this.owners.set(key, owner);
    }
    return owner;
  }

  private async lookup(namespace: string, pod: string): Promise<PodOwner | undefined> {
    for (const name of candidateJobNames(pod)) {
      const owner = this.ownerIn(await this.job({ namespace, name }), pod);
      if (owner) return owner;
    }
    if (!SHORTENED_POD_NAME.test(pod)) return undefined;
    this.active ??= this.deps.store.listActiveJobs();
    for (const ref of await this.active) {
      if (ref.namespace !== namespace) continue;
      const owner = this.ownerIn(await this.job(ref), pod);
      if (owner) return owner;
    }
    return undefined;
  }

  private ownerIn(job: JobRecord | undefined, pod: string): PodOwner | undefined {
    if (!job) return undefined;
    const slot = slotForPodName(job, pod, indexOf(job));
    return slot ? { job, slot } : undefined;
  }

  private job(ref: JobRef): Promise<JobRecord | undefined> {
    const key = jobKey(ref);
    let job = this.jobs.get(key);
    if (!job) {
      job = this.deps.store.getJob(ref);
      this.jobs.set(key, job);
    }
    return job;
  }
}

/**
 * The Lambda entry point (deps from the environment, built once per instance: functions/shell/deps.ts),
 * typed as a CloudWatch Logs subscription calls it; zod still checks the envelope.
 */
export const handler: Handler<AwsCloudWatchLogsEvent | KinesisStreamEvent, LogsOutcome> =
  lambdaHandler(makeHandler);
