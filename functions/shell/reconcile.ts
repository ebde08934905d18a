/**
 * The step every trigger ends with: load the job → `decide` → write once with a version check → emit (events,
 * counters, gauges) → act on the cluster.
 *
 * Handlers only gather observations and call `reconcile`; they never branch on the state themselves
 * (level-triggered, CONVENTIONS §4). Invariants:
 * - Side effects (cluster calls, events, metrics, deletion) happen only after the write that produced them
 *   succeeded, or when `decide` reported no change (the stored state already implies them; every action is
 *   idempotent, so re-executing them is safe).
 * - A lost write (`ConcurrencyError`) re-reads the job and re-decides with the same observations, a bounded
 *   number of times with jittered backoff; exhausted, the `ConcurrencyError` propagates (retryable).
 * - Agent call results are fed back to `decide` as `AgentPolled` observations in the same trigger, for at
 *   most `MAX_ROUNDS` rounds.
 * - Near the invocation's time limit (`deps.deadline` below `config.actMarginMs`) no agent call is started:
 *   the answers so far and `AgentCallsCutShort` are written in one more round (so the job is due at once),
 *   and the next trigger makes the rest, which `decide` derives again from the record. A restart is never
 *   lost to the time limit, only continued:
 *
 * ```
 *   trigger 1: decide(g+1) ─ put ─ /stop ×k … (time) ─ decide(k READY, cut short) ─ put (nextCheckAt = now)
 *   trigger 2:   decide ─ /stop the n−k still on g ─ decide ─ /start all at g+1 ─ decide ─ Running
 * ```
 *
 * Concurrency window (two triggers on one job):
 *
 * ```
 *   A: get v7 ─ decide ─ put v8 ✓ ─ act(restart g3)
 *   B:   get v7 ─ decide ─ put v8 ✗ ConcurrencyError
 *   B:                              get v8 ─ decide(same observations, generation already 3) ─ no change
 * ```
 * B's fault was for generation 2; A already restarted, so `decide` dedupes it: one restart, none lost.
 */

import pRetry from 'p-retry';
import { mapBounded } from '../../adapters/kube/concurrency.ts';
import type { Action } from '../../core/actions.ts';
import { decide } from '../../core/decide.ts';
import { ConcurrencyError, isRetryable, TrainKeeperError, TransientError } from '../../core/errors.ts';
import { type JobEvent, type JobRecord, jobKey } from '../../core/job.ts';
import { Metric, metricWritesForActions } from '../../core/metrics.ts';
import type { Observation } from '../../core/observations.ts';
import type {
  AgentCallOptions,
  AgentCallResult,
  Clock,
  Cluster,
  CounterIncrement,
  CounterTotal,
  Deadline,
  EventPublisher,
  IdempotencyStore,
  IdGenerator,
  JobRef,
  JobStore,
  MetricStore,
  MetricsSink,
  Timeline,
} from '../../core/ports.ts';
import { Reason } from '../../core/reasons.ts';
import type { Config } from './config.ts';
import { describeError, type Logger } from './logger.ts';

/** Everything a handler needs from the outside, built once per Lambda instance (functions/shell/deps.ts). */
export interface Deps {
  /** The job records. */
  store: JobStore;
  timeline: Timeline;
  metricStore: MetricStore;
  idempotency: IdempotencyStore;
  cluster: Cluster;
  events: EventPublisher;
  metrics: MetricsSink;
  clock: Clock;
  /** Time left to the invocation (Lambda's context); absent = no limit. */
  deadline?: Deadline;
  ids: IdGenerator;
  config: Config;
  log: Logger;
}

/**
 * Observations for one reconcile: a fixed list, or a function of the freshly read job. The function form
 * is for observations derived from stored state (the rule engine's state): after a lost write they are
 * recomputed from the winner's record instead of overwriting it.
 */
export type ObservationsInput = Observation[] | ((job: JobRecord, now: number) => Observation[]);

/** What one reconcile did, for the handler's response and its tests. */
export interface ReconcileOutcome {
  ref: JobRef;
  /** `missing`: no such job; `unchanged`: nothing to write; `written`: at least one write; `deleted`. */
  status: 'missing' | 'unchanged' | 'written' | 'deleted';
  /** The job as last written/read (absent when missing or deleted). */
  job?: JobRecord;
  /** Writes lost to a concurrent writer and retried. */
  conflicts: number;
  /** decide → act rounds run (agent results feed the next round). */
  rounds: number;
  /** Actions executed. */
  actions: number;
  /** Terminal (non-retryable) action failures, recorded and skipped. */
  errors: { action: Action['type']; error: string }[];
  /** Agent calls not made because the invocation's time ran out (made by the next trigger). */
  callsCutShort?: number;
}

/** decide → act rounds per trigger (agent answers feed the next round). */
export const MAX_ROUNDS = 6;
/**
 * Write attempts per round before the ConcurrencyError propagates. Log batches of one job's pods arrive
 * concurrently (one subscription batch per pod stream), so several writers contend for the job item; with
 * jittered backoff (p-retry: 10 ms · 2^n · [1, 2), capped at 400 ms), ten attempts ride out a handful of
 * concurrent writers.
 */
export const MAX_WRITE_ATTEMPTS = 10;

/**
 * Reconciles one job with the given observations and executes what `decide` asks for.
 * Throws only retryable errors (TransientError, exhausted ConcurrencyError) and unexpected bugs;
 * terminal action failures are logged and returned in `errors`.
 */
export async function reconcile(
  deps: Deps,
  ref: JobRef,
  observations: ObservationsInput,
): Promise<ReconcileOutcome> {
  const outcome: ReconcileOutcome = {
    ref,
    status: 'unchanged',
    conflicts: 0,
    rounds: 0,
    actions: 0,
    errors: [],
  };
  let input: ObservationsInput = observations;
  // Set when a round's agent calls were cut short: one more round records it (past MAX_ROUNDS too).
  let recordCut = false;
  let cutRecorded = false;
  for (let round = 0; round < MAX_ROUNDS || recordCut; round++) {
    const decided = await decideAndPersist(deps, ref, input, outcome);
    recordCut = false;
    if (!decided) {
      if (round === 0) outcome.status = 'missing';
      delete outcome.job;
      return outcome;
    }
    outcome.rounds++;
    outcome.job = decided.job;
    if (decided.changed) {
      outcome.status = 'written';
      // Per-decision sinks (CloudWatch EMF for alarms in aws mode): only for a written decision, so a
      // replayed one is not counted twice. A failing sink is logged, never fails the trigger.
      const at = deps.clock.now();
      await attempt(deps, 'metrics.recordDecision', `${ref.namespace}/${ref.name}`, () =>
        deps.metrics.recordDecision(decided.actions, at),
      );
    }
    const followUps = await act(deps, decided.job, decided.actions, outcome);
    if (outcome.status === 'deleted') {
      delete outcome.job;
      return outcome;
    }
    if (outcome.callsCutShort !== undefined && !cutRecorded) {
      // Out of time: write the answers so far with the cut, so the job is due at once (decide makes no
      // agent call in that round either: none is started now).
      cutRecorded = recordCut = true;
      deps.log.warn('reconcile: the invocation is running out of time; the next trigger makes the rest', {
        job: `${ref.namespace}/${ref.name}`,
        callsCutShort: outcome.callsCutShort,
      });
      input = withCut(followUps);
      continue;
    }
    // Stop when nothing new was learned: no agent answers, or answers that changed nothing.
    if (followUps.length === 0 || (round > 0 && !decided.changed)) break;
    input = followUps;
  }
  return outcome;
}

/** load → decide → conditional write, retried on conflicts. Undefined when the job does not exist. */
async function decideAndPersist(
  deps: Deps,
  ref: JobRef,
  input: ObservationsInput,
  outcome: ReconcileOutcome,
): Promise<{ job: JobRecord; actions: Action[]; changed: boolean } | undefined> {
  return pRetry(
    async () => {
      const stored = await deps.store.getJob(ref);
      if (!stored) return undefined;
      const now = deps.clock.now();
      const observed = typeof input === 'function' ? input(stored, now) : input;
      const result = decide(stored, observed, now);
      if (result.changed) await deps.store.putJob(result.job);
      return result;
    },
    {
      retries: MAX_WRITE_ATTEMPTS - 1,
      minTimeout: 10,
      factor: 2,
      maxTimeout: 400,
      randomize: true,
      // Only a lost write is retried here; anything else propagates at once.
      shouldRetry: ({ error }) => error instanceof ConcurrencyError,
      onFailedAttempt: async ({ error, attemptNumber }) => {
        if (!(error instanceof ConcurrencyError)) return;
        outcome.conflicts++;
        await countSafely(deps, [{ name: Metric.reconcileConflicts, labels: {}, by: 1 }]);
        deps.log.info('reconcile: write lost to a concurrent writer; re-reading', {
          job: `${ref.namespace}/${ref.name}`,
          attempt: attemptNumber,
        });
      },
    },
  );
}

/** The job's pods as the cluster lists them, with the nodes they run on: one `PodsObserved`. */
export async function observePods(deps: Pick<Deps, 'cluster' | 'clock'>, ref: JobRef): Promise<Observation> {
  const pods = await deps.cluster.listJobPods(ref);
  const nodeNames = [...new Set(pods.map((p) => p.nodeName).filter((n): n is string => n !== undefined))];
  const nodes = nodeNames.length > 0 ? await deps.cluster.getNodes(nodeNames) : [];
  return { type: 'PodsObserved', pods, nodes, at: deps.clock.now() };
}

/**
 * Buffered emissions of one round: those `decide` asked for are flushed after the write and before any
 * cluster action; those the actions add (an `ActionFailed` event) after the actions, or before DeleteJob.
 */
interface Emissions {
  events: JobEvent[];
  increments: CounterIncrement[];
  gauges: CounterTotal[];
}

/**
 * Executes actions in order. Returns the agent answers as `AgentPolled` observations for the next round.
 * Emissions (events, counters, gauges) are collected from the whole list and flushed BEFORE any cluster
 * action runs: a retry would not produce them again, because the state that caused them is already written
 * (a failing ShutdownAgents must not swallow the JobSucceeded event and counter that follow it in the
 * list), and readers of the record should find its timeline with it. Action failures are flushed last.
 */
async function act(
  deps: Deps,
  job: JobRecord,
  actions: Action[],
  outcome: ReconcileOutcome,
): Promise<Observation[]> {
  const ref: JobRef = { namespace: job.namespace, name: job.name };
  const emissions: Emissions = { events: [], increments: [], gauges: [] };
  const followUps: Observation[] = [];
  // Level actions' agent calls (stop, start, status) stop starting near the time limit; what they leave
  // is derived again by the next decide. Edge actions (shutdown, elastic event, in-process restart) run out.
  const inTime: AgentCallOptions = { shouldStart: () => hasTimeForAgentCalls(deps) };
  const made = (asked: number, results: AgentCallResult[]): AgentCallResult[] => {
    if (results.length < asked) outcome.callsCutShort = (outcome.callsCutShort ?? 0) + asked - results.length;
    return results;
  };
  const agentAnswers = async (results: AgentCallResult[]) => {
    const at = deps.clock.now();
    const refused: string[] = [];
    for (const r of results) {
      if (r.ok) followUps.push({ type: 'AgentPolled', pod: r.pod, status: r.status, at });
      else if (r.unreachable) followUps.push({ type: 'AgentPolled', pod: r.pod, status: null, at });
      else {
        refused.push(r.pod);
        deps.log.warn('reconcile: agent refused a call', { job: `${ref.namespace}/${ref.name}`, ...r });
      }
    }
    // A refusal (e.g. /start while the agent still runs an older generation) says nothing about the agent's
    // state: ask for it, so the next round decides on what the agent is doing rather than waiting for the
    // sweep's liveness poll.
    if (refused.length > 0) {
      for (const r of made(refused.length, await deps.cluster.agentStatus(job.namespace, refused, inTime))) {
        if (r.ok) followUps.push({ type: 'AgentPolled', pod: r.pod, status: r.status, at: deps.clock.now() });
      }
    }
    // An unreachable agent often means its pod is gone (killed, evicted, node lost): look at the pods now,
    // so the next round replaces the pod instead of waiting for the sweep.
    if (results.some((r) => !r.ok && r.unreachable)) followUps.push(await observePods(deps, ref));
  };
  for (const action of actions) {
    if (action.type === 'RecordEvent') emissions.events.push(action.event);
  }
  // Counters as they are; latencies as histogram increments + the HyperPod latest gauge (bounded labels).
  const writes = metricWritesForActions(actions);
  emissions.increments.push(...writes.increments);
  emissions.gauges.push(...writes.gauges);
  // Emitted first: the record is already written, so the timeline and counters should not lag it by the
  // duration of the cluster actions (a /stop waits for workers to exit).
  await flush(deps, ref, emissions);
  let retryable: unknown;
  try {
    for (const action of actions) {
      outcome.actions++;
      try {
        switch (action.type) {
          case 'EnsureService':
            await deps.cluster.ensureService(job.spec);
            break;
          case 'CreatePods':
            await deps.cluster.createPods(job.spec, action.pods);
            break;
          case 'DeletePods':
            await deps.cluster.deletePods(job.namespace, action.pods, {
              ...(action.gracePeriodSeconds !== undefined
                ? { gracePeriodSeconds: action.gracePeriodSeconds }
                : {}),
              ...(action.force !== undefined ? { force: action.force } : {}),
            });
            break;
          case 'StopAgents':
            // Guarded by generation: a stop decided on a stale view never stops a run already started
            // at this generation by a later reconcile whose actions finished first.
            await agentAnswers(
              made(
                action.pods.length,
                await deps.cluster.stopAgents(
                  job.namespace,
                  action.pods,
                  { below_generation: action.generation },
                  inTime,
                ),
              ),
            );
            break;
          case 'StartAgents':
            await agentAnswers(
              made(
                action.starts.length,
                await deps.cluster.startAgents(job.namespace, action.starts, inTime),
              ),
            );
            break;
          case 'RestartInProcess':
            await agentAnswers(await deps.cluster.restartInProcess(job.namespace, action.starts));
            break;
          case 'ShutdownAgents':
            await agentAnswers(await deps.cluster.shutdownAgents(job.namespace, action.pods));
            break;
          case 'PollAgents':
            await agentAnswers(
              made(action.pods.length, await deps.cluster.agentStatus(job.namespace, action.pods, inTime)),
            );
            break;
          case 'SignalElasticEvent':
            await agentAnswers(
              await deps.cluster.signalElasticEvent(job.namespace, action.pods, {
                nnodes: action.targetReplicas,
                faultCount: action.generation,
                reason: action.reason,
              }),
            );
            break;
          case 'RecordEvent':
          case 'IncrementCounter':
          case 'ObserveLatency':
            break; // collected above
          case 'DeleteJob':
            await flush(deps, ref, emissions);
            await deps.store.deleteJob(ref);
            outcome.status = 'deleted';
            break;
          default: {
            // Exhaustive: a new action type fails to compile here until it is executed.
            const unhandled: never = action;
            throw new Error(`reconcile: unknown action ${JSON.stringify(unhandled)}`);
          }
        }
      } catch (err) {
        if (!isTerminalFailure(err)) {
          // Keep going: the record is written, so a retry of this trigger would not emit the later actions
          // again (a failed /shutdown must not leave the pods undeleted). The trigger still fails at the end.
          retryable ??= err;
          deps.log.warn('reconcile: action failed; the trigger will be retried', {
            job: `${ref.namespace}/${ref.name}`,
            action: action.type,
            error: describeError(err),
          });
          continue;
        }
        outcome.errors.push({ action: action.type, error: err.message });
        emissions.events.push({
          at: deps.clock.now(),
          type: 'Warning',
          reason: Reason.ActionFailed,
          message: `${action.type} failed: ${err.message}`.slice(0, 1000),
          generation: job.generation,
        });
        deps.log.error('reconcile: action failed permanently; skipped', {
          job: `${ref.namespace}/${ref.name}`,
          action: action.type,
          error: describeError(err),
        });
      }
    }
  } finally {
    await flush(deps, ref, emissions);
  }
  if (retryable !== undefined) throw retryable;
  return followUps;
}

/**
 * The answers so far plus the cut, dated with the `now` of the decide that records it: decide clears
 * `cutShortAt` in the first decide after that instant, i.e. in the next trigger, never in this one.
 */
const withCut =
  (followUps: Observation[]): ObservationsInput =>
  (_job, now) => [...followUps, { type: 'AgentCallsCutShort', at: now }];

/** Whether the invocation has more than `config.actMarginMs` left to start an agent call in. */
const hasTimeForAgentCalls = (deps: Pick<Deps, 'deadline' | 'config'>): boolean =>
  (deps.deadline?.remainingMs() ?? Number.POSITIVE_INFINITY) >= deps.config.actMarginMs;

/**
 * Emits one round's buffered events and metrics. Failures are logged, never thrown: retrying the trigger
 * would not emit them again (the state change that caused them is already stored).
 */
async function flush(deps: Deps, ref: JobRef, emissions: Emissions): Promise<void> {
  const events = emissions.events.splice(0);
  const increments = emissions.increments.splice(0);
  const gauges = emissions.gauges.splice(0);
  const job = `${ref.namespace}/${ref.name}`;
  if (events.length > 0) {
    await attempt(deps, 'timeline.appendEvents', job, () => deps.timeline.appendEvents(ref, events));
    const lifecycle = events.filter((e) => e.lifecycle !== undefined);
    if (lifecycle.length > 0) {
      await attempt(deps, 'events.publish', job, () => deps.events.publish(ref, lifecycle));
    }
    await Promise.all(
      events.map((e) =>
        attempt(deps, 'cluster.recordKubeEvent', job, () => deps.cluster.recordKubeEvent(ref, e)),
      ),
    );
  }
  if (increments.length > 0 || gauges.length > 0) {
    await countSafely(deps, increments);
    if (gauges.length > 0) {
      const at = deps.clock.now();
      await attempt(deps, 'metricStore.setGauges', job, () => deps.metricStore.setGauges(gauges, at));
    }
    await pushMetricsNowAndThen(deps);
  }
}

async function attempt(deps: Deps, what: string, job: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    deps.log.error(`reconcile: ${what} failed; not retried`, { job, error: describeError(err) });
  }
}

/** Adds to the durable counters; a failure is logged (metrics never fail a trigger). */
export async function countSafely(
  deps: Pick<Deps, 'metricStore' | 'log'>,
  increments: CounterIncrement[],
): Promise<void> {
  if (increments.length === 0) return;
  try {
    await deps.metricStore.incrementCounters(increments);
  } catch (err) {
    deps.log.error('metrics: counter increment failed', { error: describeError(err) });
  }
}

/**
 * How often a Lambda instance pushes the totals after its own decisions. A push reads every counter and
 * gauge (8 partitions each); with 1,000 busy jobs, pushing after every decision would read them hundreds of
 * times a second. Pushes send totals, so skipping one loses nothing: the next push (this instance's, or the
 * sweep's, which pushes every run) carries it.
 */
export const METRICS_PUSH_MIN_INTERVAL_MS = 10_000;
/** When each sink was last pushed to from a decision (per Lambda instance). */
const lastDecisionPush = new WeakMap<object, number>();

/** `pushMetrics` unless this instance pushed to the same sink less than `METRICS_PUSH_MIN_INTERVAL_MS` ago. */
export async function pushMetricsNowAndThen(deps: Pick<Deps, 'metricStore' | 'metrics' | 'clock' | 'log'>) {
  const now = deps.clock.now();
  const last = lastDecisionPush.get(deps.metrics);
  if (last !== undefined && now - last < METRICS_PUSH_MIN_INTERVAL_MS) return;
  lastDecisionPush.set(deps.metrics, now);
  await pushMetrics(deps);
}

/**
 * Pushes the durable counter totals and gauges (the stored latest-value gauges plus `extraGauges`) to the
 * metrics sink. Never throws: the next push sends the totals again.
 */
export async function pushMetrics(
  deps: Pick<Deps, 'metricStore' | 'metrics' | 'clock' | 'log'>,
  extraGauges: CounterTotal[] = [],
): Promise<void> {
  try {
    const counters = await deps.metricStore.readCounters();
    const stored = await deps.metricStore.readGauges();
    await deps.metrics.push({ counters, gauges: [...stored, ...extraGauges], at: deps.clock.now() });
  } catch (err) {
    deps.log.warn('metrics: push failed; the next push sends the totals again', {
      error: describeError(err),
    });
  }
}

/**
 * Whether a failure is terminal: a non-retryable taxonomy error, recorded and skipped. Anything else fails
 * the trigger so the platform retries it: a retryable taxonomy error (TransientError, an exhausted
 * ConcurrencyError) or anything outside the taxonomy (a bug, an untranslated vendor error: retrying is the
 * safe side).
 */
export const isTerminalFailure = (err: unknown): err is TrainKeeperError =>
  err instanceof TrainKeeperError && !isRetryable(err);

/** One job's run inside a trigger that touches several jobs: its result, or what it failed with. */
export type JobRun<R> = { ref: JobRef; ok: true; value: R } | { ref: JobRef; ok: false; error: unknown };

/**
 * Runs `run` for each job (the sweep's, a log batch's, a node event's jobs), at most `concurrency` at a time
 * (default: one after another). Jobs are independent: a failure is logged as `<trigger>: job failed` and
 * recorded, and the other jobs still run. Results in input order. The trigger then does whatever must happen
 * in any case (the sweep's metric push) and calls `throwIfAnyRetryable`.
 */
export async function forEachJob<R>(
  deps: Pick<Deps, 'log'>,
  trigger: string,
  refs: readonly JobRef[],
  run: (ref: JobRef, index: number) => Promise<R>,
  concurrency = 1,
): Promise<JobRun<R>[]> {
  const settled = await mapBounded(refs, concurrency, async (ref, index) => {
    try {
      return await run(ref, index);
    } catch (err) {
      deps.log.error(`${trigger}: job failed`, { job: jobKey(ref), error: describeError(err) });
      throw err;
    }
  });
  return settled.map((s, i): JobRun<R> => {
    const ref = refs[i] as JobRef;
    return s.status === 'fulfilled' ? { ref, ok: true, value: s.value } : { ref, ok: false, error: s.reason };
  });
}

/**
 * Fails the trigger with a TransientError (cause: the one failure, or an AggregateError of them) when any
 * job failed other than terminally (`isTerminalFailure`), so the platform retries the whole trigger. Safe because
 * reconcile is level-triggered and idempotent: the jobs that succeeded converge to no change on the retry.
 */
export function throwIfAnyRetryable(trigger: string, runs: readonly JobRun<unknown>[]): void {
  const retryable = runs.flatMap((r) => (!r.ok && !isTerminalFailure(r.error) ? [r.error] : []));
  if (retryable.length === 0) return;
  throw new TransientError(
    `${trigger}: ${retryable.length} of ${runs.length} job(s) failed with retryable errors`,
    { cause: retryable.length === 1 ? retryable[0] : new AggregateError(retryable) },
  );
}

/**
 * Executes actions produced outside `reconcile` for a record that was just written (the API's
 * `newJobRecord` + `createJob`), then keeps reconciling with the agents' answers, as `reconcile` does.
 */
export async function executeActions(
  deps: Deps,
  job: JobRecord,
  actions: Action[],
): Promise<ReconcileOutcome> {
  const ref: JobRef = { namespace: job.namespace, name: job.name };
  const outcome: ReconcileOutcome = {
    ref,
    status: 'written',
    job,
    conflicts: 0,
    rounds: 1,
    actions: 0,
    errors: [],
  };
  const followUps = await act(deps, job, actions, outcome);
  if (outcome.status === 'deleted') {
    delete outcome.job;
    return outcome;
  }
  const cut = outcome.callsCutShort !== undefined;
  if (followUps.length === 0 && !cut) return outcome;
  const next = await reconcile(deps, ref, cut ? withCut(followUps) : followUps);
  return {
    ...next,
    status: next.status === 'unchanged' ? 'written' : next.status,
    conflicts: next.conflicts,
    rounds: outcome.rounds + next.rounds,
    actions: outcome.actions + next.actions,
    errors: [...outcome.errors, ...next.errors],
    ...(cut || next.callsCutShort !== undefined
      ? { callsCutShort: (outcome.callsCutShort ?? 0) + (next.callsCutShort ?? 0) }
      : {}),
  };
}
