/**
 * The `sweep` Lambda: the safety net, on an EventBridge schedule (every minute on AWS, every second in the
 * local control plane). For every active job (and every job whose `nextCheckAt` has come, such as a
 * finished job waiting for its TTL): time-based rule checks (`tickRules`, Running jobs only), the pods as
 * the cluster lists them and their nodes (`PodsObserved`), then `reconcile`. Whatever a lost event or a
 * crashed trigger left undone converges here.
 *
 * Jobs are independent: one failing job does not stop the others. After all jobs ran, the sweep pushes
 * the metric totals (with the per-phase job gauge) and throws if any job failed with a retryable error, so
 * the schedule's retry/alarm sees it.
 */
import type { Handler, ScheduledEvent } from 'aws-lambda';
import { isTerminal, JOB_PHASES, type JobRecord, jobKey } from '../core/job.ts';
import { Metric } from '../core/metrics.ts';
import type { Observation } from '../core/observations.ts';
import type { CounterTotal, JobRef } from '../core/ports.ts';
import { tickRules } from '../rules/engine.ts';
import { lambdaHandler } from './shell/deps.ts';
import { compiledRulesFor, ruleObservation, ruleStateFor } from './shell/job-rules.ts';
import {
  type Deps,
  forEachJob,
  observePods,
  pushMetrics,
  type ReconcileOutcome,
  reconcile,
  throwIfAnyRetryable,
} from './shell/reconcile.ts';

/** Jobs swept in parallel (each is a few DynamoDB and Kubernetes calls). */
export const SWEEP_CONCURRENCY = 8;

/** What one sweep did. */
export interface SweepOutcome {
  jobs: { ref: JobRef; status: ReconcileOutcome['status'] | 'failed'; phase?: string; error?: string }[];
}

/** Builds the handler over the given ports. The event (the schedule's) is ignored: sweeps are level-based. */
export function makeHandler(deps: Deps): (event?: unknown) => Promise<SweepOutcome> {
  return async () => {
    const now = deps.clock.now();
    const [active, due] = await Promise.all([deps.store.listActiveJobs(), deps.store.listDueJobs(now)]);
    const refs = new Map<string, JobRef>();
    for (const ref of [...active, ...due]) refs.set(jobKey(ref), ref);

    const capacity = refs.size > 0 ? await observeNodes(deps) : undefined;
    const runs = await forEachJob(
      deps,
      'sweep',
      [...refs.values()],
      (ref) => sweepJob(deps, ref, capacity),
      SWEEP_CONCURRENCY,
    );
    const outcome: SweepOutcome = {
      jobs: runs.map((run) =>
        run.ok
          ? {
              ref: run.ref,
              status: run.value.status,
              ...(run.value.job ? { phase: run.value.job.phase } : {}),
            }
          : {
              ref: run.ref,
              status: 'failed',
              error: run.error instanceof Error ? run.error.message : String(run.error),
            },
      ),
    };
    await pushMetrics(deps, phaseGauges(outcome));
    throwIfAnyRetryable('sweep', runs);
    return outcome;
  };
}

/**
 * One job: observe its pods and nodes, tick its rules, reconcile. `capacity` (the cluster's nodes, listed
 * once per sweep) sizes elastic jobs; other jobs ignore it.
 */
export async function sweepJob(deps: Deps, ref: JobRef, capacity?: Observation): Promise<ReconcileOutcome> {
  const observed = await observePods(deps, ref);
  return reconcile(deps, ref, (job, now) => [
    ...tickObservations(job, now),
    observed,
    ...(capacity && job.spec.elasticPolicy ? [capacity] : []),
  ]);
}

/**
 * The nodes that can host training pods (HyperPod's health-labelled nodes), as one `NodesObserved` for
 * every job of the sweep: the elastic capacity. A failed list is logged and leaves capacity as it was.
 */
async function observeNodes(deps: Deps): Promise<Observation | undefined> {
  try {
    const nodes = await deps.cluster.listNodes();
    return { type: 'NodesObserved', nodes, at: deps.clock.now() };
  } catch (err) {
    deps.log.warn('sweep: listing nodes failed; elastic capacity not refreshed', {
      error: err instanceof Error ? err.message : String(err),
    });
    return undefined;
  }
}

/** Time-based rule checks for a Running job (hang deadlines, start cut-offs). */
function tickObservations(job: JobRecord, now: number): Observation[] {
  if (job.phase !== 'Running') return [];
  const compiled = compiledRulesFor(job);
  if (!compiled) return [];
  const result = tickRules(compiled, ruleStateFor(compiled, job, now), now);
  return [ruleObservation(result.state, result.findings)];
}

/** `trainkeeper_jobs{phase}` over the jobs this sweep saw (non-terminal ones, plus due finished ones). */
function phaseGauges(outcome: SweepOutcome): CounterTotal[] {
  const counts = new Map<string, number>();
  for (const phase of JOB_PHASES) if (!isTerminal(phase)) counts.set(phase, 0);
  for (const j of outcome.jobs) if (j.phase) counts.set(j.phase, (counts.get(j.phase) ?? 0) + 1);
  return [...counts].map(([phase, value]) => ({ name: Metric.jobsByPhase, labels: { phase }, value }));
}

/**
 * The Lambda entry point (deps from the environment, built once per instance: functions/shell/deps.ts),
 * typed as the EventBridge schedule calls it (the event's content is not read).
 */
export const handler: Handler<ScheduledEvent, SweepOutcome> = lambdaHandler(makeHandler);
