/**
 * The blind-log guard: a job's log rules can only judge the lines that reach them. When the log path
 * itself drops the workers' lines (a subscription filter that passes agent records only, Fluent Bit not
 * shipping the training container) a hang rule sees silence and would restart a healthy job until its
 * budget is spent. The agents' own reports tell the two silences apart:
 *
 * ```
 *  runningSince ─ agent heartbeat ─ agent heartbeat ─ hang deadline ─► restart?     worker lines: none
 *                 (the agents are alive, and so is the path their records take: the workers' lines are lost)
 *                                                     └► held: condition LogsNotArriving, no restart
 *  first worker line of the run ──► condition cleared, verdicts count again
 * ```
 *
 * The log path is *blind* for a Running job with log rules when its agents run the current generation
 * (every rank's agent confirmed RUNNING: that is how the job became Running) and are still heard from (an
 * agent record or a `/status` answer within `AGENTS_HEARD_WITHIN_MS`; the sweep polls an agent silent for
 * `LIVENESS_MS`), and no worker line of this run has arrived (`workerLinesAt` before `runningSince`). Then hang verdicts (start cut-off and recurring
 * frequency rules) are held instead of becoming faults, and the `LogsNotArriving` condition and event say
 * what to fix; they are raised at once when a verdict is held, and after `LOGS_NOT_ARRIVING_AFTER_MS` of
 * blindness otherwise. A job whose workers really print nothing at all looks the same: it is held and
 * reported, never restarted on silence.
 */
import type { Action } from '../actions.ts';
import type { JobRecord } from '../job.ts';
import type { RuleFinding } from '../observations.ts';
import { Reason } from '../reasons.ts';
import { eventAction, setCondition } from './record.ts';

/** The condition type (and its True reason). */
export const LOGS_NOT_ARRIVING = Reason.LogsNotArriving;

/** Blindness this long into a run raises the condition even when no verdict was held yet. */
export const LOGS_NOT_ARRIVING_AFTER_MS = 30_000;

/**
 * How recently an agent must have been heard for its job to count as alive: a silent agent is polled once
 * it has been silent `LIVENESS_MS` (30 s), at the next sweep (every minute on AWS).
 */
export const AGENTS_HEARD_WITHIN_MS = 120_000;

/** Whether the job has any log rule (its own or a preset's). */
export const hasLogRules = (job: Pick<JobRecord, 'spec'>): boolean =>
  job.spec.runPolicy.logMonitoringConfiguration.length > 0 || job.spec.trainkeeper.presets.length > 0;

/**
 * See the module header: at `at`, the agents run this generation and are heard, no worker line of it.
 * One pass over the slots (the rank slots' order does not matter here).
 */
export const isLogPathBlind = (job: JobRecord, at: number): boolean => {
  if (job.phase !== 'Running' || job.runningSince === undefined || !hasLogRules(job)) return false;
  if (job.workerLinesAt !== undefined && job.workerLinesAt >= job.runningSince) return false;
  // The latest time a rank's agent was heard (record or `/status`).
  let heard: number | undefined;
  let ranks = 0;
  for (const s of job.pods) {
    if (s.groupRank === null) continue;
    ranks++;
    if (!(s.agent?.state === 'RUNNING' && s.agent.generation === job.generation)) return false;
    if (s.lastSeenAt !== undefined && (heard === undefined || s.lastSeenAt > heard)) heard = s.lastSeenAt;
  }
  return ranks > 0 && heard !== undefined && heard >= at - AGENTS_HEARD_WITHIN_MS;
};

/**
 * Records that worker lines of the job arrived (`at`: the latest line's time). Only the first line of a
 * run is written, so a stream of batches does not rewrite the record for this alone. Clears the
 * condition (with an event) when it was raised.
 */
export const foldWorkerLines = (job: JobRecord, at: number): void => {
  const since = job.runningSince ?? Number.NEGATIVE_INFINITY;
  if (job.workerLinesAt !== undefined && job.workerLinesAt >= since) return;
  job.workerLinesAt = at;
};

/**
 * Raises or clears `LogsNotArriving` on the draft (after folding). `held`: the hang verdicts this batch
 * held back. Emits a Warning event when the condition is raised and a Normal one when it clears.
 */
export const guardLogPath = (job: JobRecord, held: RuleFinding[], now: number, actions: Action[]): void => {
  const current = job.conditions.find((c) => c.type === LOGS_NOT_ARRIVING);
  const raised = current?.status === 'True';
  const blind = isLogPathBlind(job, now);
  if (!blind) {
    const linesArrived =
      job.workerLinesAt !== undefined &&
      job.runningSince !== undefined &&
      job.workerLinesAt >= job.runningSince;
    if (raised && linesArrived) {
      setCondition(
        job,
        LOGS_NOT_ARRIVING,
        'False',
        Reason.LogsArriving,
        'Worker lines arrive; log rules judge them again',
        now,
      );
      actions.push(eventAction(job, now, Reason.LogsArriving, 'Worker lines arrive again'));
    }
    return;
  }
  const since = job.runningSince as number;
  if (raised || (held.length === 0 && now < since + LOGS_NOT_ARRIVING_AFTER_MS)) return;
  const rules = [...new Set(held.map((f) => f.rule))];
  const message =
    `The job's agents report in, but no worker line has reached the logs function since this run began ` +
    `(${new Date(since).toISOString()})` +
    (rules.length > 0 ? `; hang verdicts of ${rules.join(', ')} are held (no restart)` : '') +
    '. Check that the subscription filter passes worker lines (stage logFilter: `labels` passes agent ' +
    'records only with the stock add-on, which has Labels Off; use `namespaces` or `all`) and that ' +
    "Fluent Bit ships the training container's output of this namespace's pods.";
  setCondition(job, LOGS_NOT_ARRIVING, 'True', Reason.LogsNotArriving, message, now);
  actions.push(eventAction(job, now, Reason.LogsNotArriving, message, { type: 'Warning' }));
};
