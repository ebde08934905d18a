/**
 * Small, mutating helpers over a draft job record (decide works on a private clone) and builders for the
 * bookkeeping actions every transition emits. Kept apart so the ladder and lifecycle read as policy.
 */
import type { Action } from '../actions.ts';
import type { JobEvent, JobPhase, JobRecord, PodSlot } from '../job.ts';
import type { LifecycleEvent } from '../reasons.ts';

/** Remediations kept on the record (the timeline keeps the full history). */
export const MAX_REMEDIATIONS = 50;

/**
 * Sets a condition: updates type's entry in place, or appends it. `lastTransitionTime` moves only when the
 * status flips, as Kubernetes does; an appended condition goes last so "last True" reads as the phase.
 */
export const setCondition = (
  job: JobRecord,
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
  now: number,
): void => {
  const existing = job.conditions.find((c) => c.type === type);
  if (!existing) {
    job.conditions.push({ type, status, reason, message, lastTransitionTime: now });
    return;
  }
  if (existing.status !== status) existing.lastTransitionTime = now;
  existing.status = status;
  existing.reason = reason;
  existing.message = message;
};

/** Marks a condition False if present (absent stays absent: nothing to report). */
export const clearCondition = (job: JobRecord, type: string, reason: string, now: number): void => {
  const existing = job.conditions.find((c) => c.type === type);
  if (existing && existing.status !== 'False')
    setCondition(job, type, 'False', reason, existing.message, now);
};

/** Moves to a phase, stamping `phaseSince` only on a real change. */
export const setPhase = (job: JobRecord, phase: JobPhase, now: number): void => {
  if (job.phase !== phase) {
    job.phase = phase;
    job.phaseSince = now;
  }
};

/** A timeline event action. `lifecycle` events are also published to EventBridge. */
export const eventAction = (
  job: JobRecord,
  now: number,
  reason: string,
  message: string,
  options: {
    type?: 'Normal' | 'Warning';
    lifecycle?: LifecycleEvent;
    details?: Record<string, unknown>;
  } = {},
): Action => {
  const event: JobEvent = {
    at: now,
    type: options.type ?? 'Normal',
    reason,
    message,
    generation: job.generation,
  };
  if (options.lifecycle) event.lifecycle = options.lifecycle;
  if (options.details) event.details = options.details;
  return { type: 'RecordEvent', event };
};

/** A counter increment action (labels must stay bounded: no pod names, ranks or rule names). */
export const counterAction = (name: string, labels: Record<string, string> = {}, by = 1): Action => ({
  type: 'IncrementCounter',
  name,
  labels,
  by,
});

/** A latency observation in seconds (never negative: clocks of different sources may disagree). */
export const latencyAction = (name: string, labels: Record<string, string>, ms: number): Action => ({
  type: 'ObserveLatency',
  name,
  labels,
  seconds: Math.max(0, ms) / 1000,
});

/** Slots holding a group rank, in rank order (one pass when the slots are in rank order already, as usual). */
export const rankSlots = (job: Pick<JobRecord, 'pods'>): PodSlot[] => {
  const ranks = job.pods.filter((s) => s.groupRank !== null);
  for (let i = 1; i < ranks.length; i++) {
    if ((ranks[i - 1]!.groupRank ?? 0) > (ranks[i]!.groupRank ?? 0))
      return ranks.sort((a, b) => (a.groupRank ?? 0) - (b.groupRank ?? 0));
  }
  return ranks;
};

/**
 * Whether the job has rank slots and every one satisfies `test` (`rankSlots(job)` non-empty and every
 * slot passing), without building the list.
 */
export const everyRank = (job: Pick<JobRecord, 'pods'>, test: (slot: PodSlot) => boolean): boolean => {
  let any = false;
  for (const s of job.pods) {
    if (s.groupRank === null) continue;
    if (!test(s)) return false;
    any = true;
  }
  return any;
};

/** Idle spare slots (no rank). */
export const spareSlots = (job: JobRecord): PodSlot[] => job.pods.filter((s) => s.groupRank === null);

/**
 * The pod generation for a new pod in a slot: the job generation, but always above the slot's previous
 * pod's, so a slot replaced twice within one generation still gets a fresh name.
 */
export const nextPodGeneration = (job: JobRecord, slot: PodSlot): number =>
  Math.max(job.generation, slot.podGeneration + 1);

/**
 * The reason family used as a metric label: `LogHang_Foo` → `LogHang`; other reasons are already families.
 * Keeps the `reason` label's cardinality bounded by the code, not by users' rule names.
 */
export const reasonFamily = (reason: string): string => {
  const i = reason.indexOf('_');
  return i > 0 ? reason.slice(0, i) : reason;
};
