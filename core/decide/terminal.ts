/**
 * The transitions that end or pause a run: fail, succeed, cancel (terminal), suspend and resume.
 *
 *   any non-terminal ──failJob──► Failed          Pending/Restarting/Running ──succeedJob──► Succeeded
 *   any non-terminal ──cancelJob─► Cancelled      any non-terminal, not Suspended ──suspendJob──► Suspended
 *   Suspended ──resumeJob──► Pending (generation + 1, a fresh pod for every slot)
 *
 * Invariants:
 * - Terminal phases are absorbing: fail, succeed and cancel of a terminal job, suspend of a terminal or suspended
 *   job, and resume of a job that is not suspended change nothing and emit nothing (replays are no-ops).
 * - Ending a run (fail, succeed, cancel) stamps `completionTime`, drops `backoffUntil`, `runningSince` and
 *   the rule engine's state,
 *   marks the Running and Restarting conditions False, shuts down the running agents and deletes pods per
 *   `cleanPodPolicy`; suspending deletes every pod whatever the policy. A deleted slot is marked `Deleting`
 *   so no later fold takes news of it as a fault.
 * - Each transition sets its own condition True and emits one timeline event (lifecycle events for the
 *   terminal ones) and its counter; a suspend or resume emits only the event.
 */
import type { Action } from '../actions.ts';
import type { JobRecord, PodSlot } from '../job.ts';
import { isTerminal } from '../job.ts';
import { Metric } from '../metrics.ts';
import { LifecycleEvent, Reason } from '../reasons.ts';
import type { CleanPodPolicy } from '../spec/types.ts';
import { writableSlot } from './draft.ts';
import { clearCondition, counterAction, eventAction, setCondition, setPhase } from './record.ts';
import { freshSlots } from './slots.ts';

/**
 * Which pods to delete when the job ends, per `cleanPodPolicy`: All → every slot's pod; OnlyComplete →
 * pods whose agent reported COMPLETED; None → none.
 */
export const podsToClean = (slots: PodSlot[], policy: CleanPodPolicy): PodSlot[] => {
  const live = slots.filter((s) => s.podPhase !== 'Deleting');
  if (policy === 'All') return live;
  if (policy === 'OnlyComplete') return live.filter((s) => s.agent?.state === 'COMPLETED');
  return [];
};

/** Shuts agents down and deletes pods per policy; marks deleted slots `Deleting`. */
const stopEverything = (job: JobRecord, policy: CleanPodPolicy, actions: Action[]): void => {
  const live = job.pods.filter((s) => s.podPhase === 'Running');
  if (live.length > 0) actions.push({ type: 'ShutdownAgents', pods: live.map((s) => s.name) });
  const doomed = podsToClean(job.pods, policy);
  if (doomed.length > 0) {
    actions.push({ type: 'DeletePods', pods: doomed.map((s) => s.name) });
    for (const s of doomed) writableSlot(job, s).podPhase = 'Deleting';
  }
};

const endRun = (job: JobRecord, now: number): void => {
  job.completionTime = now;
  delete job.backoffUntil;
  delete job.runningSince;
  // A finished job evaluates no rules: its rule state only takes room the final write may need.
  job.ruleState = undefined;
  clearCondition(job, 'Running', 'Stopped', now);
  clearCondition(job, 'Restarting', 'Stopped', now);
};

/**
 * The common end of Succeeded, Failed and Cancelled: the phase and its condition, the run ended, agents shut
 * down and pods cleaned per cleanPodPolicy, the lifecycle event and the phase's counter.
 */
const finish = (
  job: JobRecord,
  phase: 'Succeeded' | 'Failed' | 'Cancelled',
  reason: string,
  message: string,
  event: Parameters<typeof eventAction>[4],
  metric: Parameters<typeof counterAction>[0],
  now: number,
  actions: Action[],
): void => {
  setPhase(job, phase, now);
  endRun(job, now);
  setCondition(job, phase, 'True', reason, message, now);
  stopEverything(job, job.spec.runPolicy.cleanPodPolicy, actions);
  actions.push(eventAction(job, now, reason, message, event), counterAction(metric));
};

/** → Failed: agents shut down, pods cleaned per policy, JobFailed event, jobsFailed counter. */
export const failJob = (
  job: JobRecord,
  reason: string,
  message: string,
  now: number,
  actions: Action[],
): void => {
  if (isTerminal(job.phase)) return;
  const event = { type: 'Warning', lifecycle: LifecycleEvent.JobFailed } as const;
  finish(job, 'Failed', reason, message, event, Metric.jobsFailed, now, actions);
};

/** → Succeeded: every rank's agent COMPLETED the current generation. */
export const succeedJob = (job: JobRecord, now: number, actions: Action[]): void => {
  if (isTerminal(job.phase)) return;
  job.startTime ??= now;
  const event = { lifecycle: LifecycleEvent.JobSucceeded };
  finish(
    job,
    'Succeeded',
    Reason.Succeeded,
    'All ranks completed',
    event,
    Metric.jobsSuccessful,
    now,
    actions,
  );
};

/**
 * → Cancelled. A cancel mid-restart leaves nothing running: with cleanPodPolicy All every slot's pod is
 * deleted whatever state its agent is in (replacement pods and promoted spares included).
 */
export const cancelJob = (job: JobRecord, by: string, now: number, actions: Action[]): void => {
  if (isTerminal(job.phase)) return;
  const event = { lifecycle: LifecycleEvent.JobCancelled };
  finish(job, 'Cancelled', Reason.Cancelled, `Cancelled by ${by}`, event, Metric.jobsDeleted, now, actions);
};

/** → Suspended: agents shut down and every pod deleted (resources go back to the queue). */
export const suspendJob = (job: JobRecord, by: string, now: number, actions: Action[]): void => {
  if (isTerminal(job.phase) || job.phase === 'Suspended') return;
  setPhase(job, 'Suspended', now);
  delete job.backoffUntil;
  delete job.runningSince;
  clearCondition(job, 'Running', Reason.Suspended, now);
  clearCondition(job, 'Restarting', Reason.Suspended, now);
  const message = `Suspended by ${by}`;
  setCondition(job, 'Suspended', 'True', Reason.Suspended, message, now);
  stopEverything(job, 'All', actions);
  actions.push(eventAction(job, now, Reason.Suspended, message));
};

/** Suspended → Pending at a new generation with a fresh pod for every slot. */
export const resumeJob = (job: JobRecord, by: string, now: number, actions: Action[]): void => {
  if (job.phase !== 'Suspended') return;
  job.generation += 1;
  // An elastic job resumes at its largest size; its first placement then fits it to the capacity.
  job.pods = freshSlots(job.spec, job.generation, [], job.elastic?.allowedSizes.at(-1));
  setPhase(job, 'Pending', now);
  job.resumedAt = now;
  const message = `Resumed by ${by}`;
  setCondition(job, 'Suspended', 'False', Reason.Resumed, message, now);
  actions.push(eventAction(job, now, Reason.Resumed, message));
};
