/**
 * The restart ladder and the budgets around it (DESIGN.md "Restart ladder", hyperpod-spec §4.2).
 *
 * Rungs, cheapest first:
 *   1. process — `/stop` every rank agent, `/start` them again at generation + 1; pods stay.
 *   2. pod     — delete the faulty pod(s); promote a READY spare into the rank, or create a replacement
 *                pod avoiding the bad node; then a process-level restart of all ranks.
 *   3. job     — delete every pod and recreate all at generation + 1, avoiding repeat-offender nodes.
 *   4. fail    — a budget is spent, or restarts stopped making progress.
 *
 * What counts where (HyperPod documents neither, so this is our definition):
 * - The sliding window (`numRestartBeforeFullJobRestart` within `evalPeriodSeconds`) counts AUTOMATIC
 *   PROCESS-LEVEL restarts only (worker crash, agent fault, rule hit), since the last full restart. A
 *   restart at time t is in the window at `now` iff `now − evalPeriodSeconds·1000 < t ≤ now`. When a new
 *   process-level fault finds `numRestartBeforeFullJobRestart` restarts already in the window, it is
 *   escalated to a full job restart. Pod replacements do not count: they already changed the hardware,
 *   and recreating every pod would not fix a bad node better than replacing its pod did.
 * - `jobMaxRetryCount` caps `processRestartCount`: automatic process-level restarts AND pod replacements
 *   (every restart that keeps the surviving pods and restarts their processes). Full job restarts have
 *   their own budget, `maxFullJobRestarts` (absent = unlimited), counted in `fullJobRestartCount`.
 * - Manual restarts (the Restart command) are the user's explicit wish: they bypass every budget, count
 *   in neither the window nor the budgets nor backoff, but do count in the total `restartCount`.
 * - Every restart of any level bumps `generation` by exactly one.
 * - `restartStatus.restartCount` is the window count after the latest restart and `currentEvalPeriod` the
 *   time of the oldest restart still in the window (the window slides; it is never reset except by a
 *   full job restart, which clears the kept restart times).
 *
 * Backoff (`spec.trainkeeper.restartBackoff`, automatic restarts only): `restartStreak` counts restarts
 * in a row; a restart is "consecutive" with the previous one unless the job had been Running (all rank
 * agents RUNNING) without interruption for at least `maxSeconds` when the fault arrived, in which case
 * the streak starts again at 1. Restart number n of a streak waits 0 while n ≤ freeRestarts, else
 * min(maxSeconds, initialSeconds × multiplier^(n − freeRestarts − 1)). The wait holds pod creation and
 * `/start` (stops and deletions go out at once) until `backoffUntil`, which `nextCheckAt` carries.
 */
import type { Action } from '../actions.ts';
import type { JobRecord, PodSlot, Remediation, RestartLevel } from '../job.ts';
import { isTerminal } from '../job.ts';
import { Metric } from '../metrics.ts';
import { LifecycleEvent, Reason } from '../reasons.ts';
import type { CleanPodPolicy } from '../spec/types.ts';
import type { Fault } from './fold.ts';
import {
  clearCondition,
  counterAction,
  eventAction,
  latencyAction,
  MAX_REMEDIATIONS,
  nextPodGeneration,
  reasonFamily,
  setCondition,
  setPhase,
} from './record.ts';
import { freshSlots, isReadyToStart, renewSlot } from './slots.ts';

/** Restarts within the sliding window ending at `now` (see the module comment for the exact rule). */
export const restartsInWindow = (job: JobRecord, now: number): number[] => {
  const period = job.spec.runPolicy.restartPolicy?.evalPeriodSeconds;
  const times = job.restartTimes ?? [];
  if (period === undefined) return times.filter((t) => t <= now);
  return times.filter((t) => t > now - period * 1000 && t <= now);
};

/**
 * Backoff before restart number `streak` (1-based, consecutive): none for the first `freeRestarts`, then
 * initial × multiplier^k capped at max, k = streak − freeRestarts − 1. Milliseconds.
 */
export const backoffDelayMs = (job: JobRecord, streak: number): number => {
  const b = job.spec.trainkeeper.restartBackoff;
  if (!b || streak <= b.freeRestarts) return 0;
  const k = streak - b.freeRestarts - 1;
  return Math.min(b.maxSeconds, b.initialSeconds * b.multiplier ** k) * 1000;
};

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
  const live = job.pods.filter((s) => s.podPhase !== 'Deleting' && s.podPhase === 'Running');
  if (live.length > 0) actions.push({ type: 'ShutdownAgents', pods: live.map((s) => s.name) });
  const doomed = podsToClean(job.pods, policy);
  if (doomed.length > 0) {
    actions.push({ type: 'DeletePods', pods: doomed.map((s) => s.name) });
    for (const s of doomed) s.podPhase = 'Deleting';
  }
};

const endRun = (job: JobRecord, now: number): void => {
  job.completionTime = now;
  delete job.backoffUntil;
  delete job.runningSince;
  clearCondition(job, 'Running', 'Stopped', now);
  clearCondition(job, 'Restarting', 'Stopped', now);
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
  setPhase(job, 'Failed', now);
  endRun(job, now);
  setCondition(job, 'Failed', 'True', reason, message, now);
  stopEverything(job, job.spec.runPolicy.cleanPodPolicy, actions);
  actions.push(
    eventAction(job, now, reason, message, { type: 'Warning', lifecycle: LifecycleEvent.JobFailed }),
    counterAction(Metric.jobsFailed),
  );
};

/** → Succeeded: every rank's agent COMPLETED the current generation. */
export const succeedJob = (job: JobRecord, now: number, actions: Action[]): void => {
  setPhase(job, 'Succeeded', now);
  job.startTime ??= now;
  endRun(job, now);
  const message = 'All ranks completed';
  setCondition(job, 'Succeeded', 'True', Reason.Succeeded, message, now);
  stopEverything(job, job.spec.runPolicy.cleanPodPolicy, actions);
  actions.push(
    eventAction(job, now, Reason.Succeeded, message, { lifecycle: LifecycleEvent.JobSucceeded }),
    counterAction(Metric.jobsSuccessful),
  );
};

/**
 * → Cancelled. A cancel mid-restart leaves nothing running: with cleanPodPolicy All every slot's pod is
 * deleted whatever state its agent is in (replacement pods and promoted spares included).
 */
export const cancelJob = (job: JobRecord, by: string, now: number, actions: Action[]): void => {
  if (isTerminal(job.phase)) return;
  setPhase(job, 'Cancelled', now);
  endRun(job, now);
  const message = `Cancelled by ${by}`;
  setCondition(job, 'Cancelled', 'True', Reason.Cancelled, message, now);
  stopEverything(job, job.spec.runPolicy.cleanPodPolicy, actions);
  actions.push(
    eventAction(job, now, Reason.Cancelled, message, { lifecycle: LifecycleEvent.JobCancelled }),
    counterAction(Metric.jobsDeleted),
  );
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
  job.pods = freshSlots(job.spec, job.generation);
  setPhase(job, 'Pending', now);
  job.resumedAt = now;
  const message = `Resumed by ${by}`;
  setCondition(job, 'Suspended', 'False', Reason.Resumed, message, now);
  actions.push(eventAction(job, now, Reason.Resumed, message));
};

/** The generation's agents were started: faults of this generation are real faults. */
const isStarted = (job: JobRecord): boolean => job.startedGeneration === job.generation;

const LEVEL_ORDER: Record<Fault['level'], number> = { process: 0, pod: 1, job: 2 };

const openRemediation = (job: JobRecord): Remediation | undefined =>
  job.remediations.find((r) => r.generation === job.generation && r.recoveredAt === undefined);

/** Top `k` nodes by fault count (ties broken by name, for determinism). */
export const repeatOffenders = (job: JobRecord, k: number): string[] =>
  Object.entries(job.nodeFaults)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, Math.max(0, k))
    .map(([node]) => node);

const countNodeFaults = (job: JobRecord, faults: Fault[]): void => {
  const nodes = new Set(faults.map((f) => f.node).filter((n): n is string => n !== undefined));
  for (const node of nodes) job.nodeFaults[node] = (job.nodeFaults[node] ?? 0) + 1;
};

/**
 * Replaces the pods of faulty slots: a READY spare (same replica spec, healthy node) takes over a faulty
 * rank and the faulty slot becomes the spare with a new pod; otherwise the slot gets a new pod that
 * avoids the bad node. Spare slots that are faulty just get a new pod. Emits the deletions.
 */
const replaceFaultyPods = (
  job: JobRecord,
  faults: Fault[],
  badNodes: Set<string>,
  actions: Action[],
): void => {
  const byPod = new Map<string, Fault[]>();
  for (const f of faults) if (f.pod && f.level === 'pod') byPod.set(f.pod, [...(byPod.get(f.pod) ?? []), f]);
  const toDelete: string[] = [];
  let force = false;
  for (const [pod, podFaults] of byPod) {
    const i = job.pods.findIndex((s) => s.name === pod);
    const slot = job.pods[i];
    if (!slot) continue;
    const avoid = [...(slot.avoidNodes ?? []), ...badNodes, ...(slot.nodeName ? [slot.nodeName] : [])];
    toDelete.push(slot.name);
    if (podFaults.some((f) => f.force) || (slot.nodeName !== undefined && badNodes.has(slot.nodeName)))
      force = true;
    const spareIndex =
      slot.groupRank === null
        ? -1
        : job.pods.findIndex(
            (s) =>
              s.groupRank === null &&
              s.replica === slot.replica &&
              !byPod.has(s.name) &&
              isReadyToStart(s) &&
              !(s.nodeName && badNodes.has(s.nodeName)),
          );
    const spare = job.pods[spareIndex];
    if (spare) {
      // Promote: the spare keeps its pod and takes the rank; the faulty slot becomes the new spare.
      job.pods[spareIndex] = { ...spare, groupRank: slot.groupRank, spare: false };
      const demoted = renewSlot(
        job,
        { ...slot, groupRank: null, spare: true },
        nextPodGeneration(job, slot),
        avoid,
      );
      job.pods[i] = demoted;
    } else {
      job.pods[i] = renewSlot(job, slot, nextPodGeneration(job, slot), avoid);
    }
  }
  if (toDelete.length > 0)
    actions.push({
      type: 'DeletePods',
      pods: toDelete,
      ...(force ? { force: true, gracePeriodSeconds: 0 } : {}),
    });
};

/** Distinct symptoms reported as FaultDetected events (the primary first), at most this many per restart. */
const MAX_FAULT_EVENTS = 10;

const faultEvents = (job: JobRecord, faults: Fault[], primary: Fault, now: number): Action[] => {
  const seen = new Set<string>();
  const out: Action[] = [];
  for (const f of [primary, ...faults]) {
    const key = `${f.reason}\n${f.message}`;
    if (seen.has(key) || out.length >= MAX_FAULT_EVENTS) continue;
    seen.add(key);
    out.push(
      eventAction(job, now, f.reason, f.message, {
        type: 'Warning',
        lifecycle: LifecycleEvent.FaultDetected,
        details: {
          level: f.level,
          ...(f.pod ? { pod: f.pod } : {}),
          ...(f.node ? { node: f.node } : {}),
          ...(f.rank !== undefined ? { rank: f.rank } : {}),
        },
      }),
    );
  }
  return out;
};

const primaryFault = (faults: Fault[], level: Fault['level']): Fault =>
  faults.find((f) => f.level === level) ?? faults[0]!;

const faultyList = (faults: Fault[], type: 'PLR' | 'JLR') => ({
  restartType: type,
  faultyInstanceIdList: [...new Set(faults.map((f) => f.instanceId).filter((x): x is string => !!x))].sort(),
  faultyPodList: [...new Set(faults.map((f) => f.pod).filter((x): x is string => !!x))].sort(),
  faultyRankList: [...new Set(faults.map((f) => f.rank).filter((x): x is number => x !== undefined))].sort(
    (a, b) => a - b,
  ),
});

/**
 * Applies one batch of faults. Rules, in order:
 * - A faulty spare (no rank) only gets a new pod: nothing to restart.
 * - Before the current generation's agents were started (a restart is under way, or the job is starting),
 *   rank pod faults replace those pods inside the pending start (no new generation, no budget); process
 *   faults there have nothing to restart; a manual job restart still applies.
 * - Otherwise the level is the highest asked for; automatic faults pass the no-progress guard, the window
 *   escalation and the budgets (each may fail the job instead), then generation += 1 and the rung runs.
 */
export const remediate = (job: JobRecord, faults: Fault[], now: number, actions: Action[]): void => {
  if (faults.length === 0 || isTerminal(job.phase) || job.phase === 'Suspended') return;
  const badNodes = new Set(faults.filter((f) => f.reason === Reason.NodeFault && f.node).map((f) => f.node!));
  const rankPods = new Set(job.pods.filter((s) => s.groupRank !== null).map((s) => s.name));

  const spareFaults = faults.filter((f) => f.level === 'pod' && f.pod && !rankPods.has(f.pod));
  if (spareFaults.length > 0) {
    countNodeFaults(job, spareFaults);
    replaceFaultyPods(job, spareFaults, badNodes, actions);
  }
  const rankFaults = faults.filter((f) => !spareFaults.includes(f));
  if (rankFaults.length === 0) return;

  const wantsJob = rankFaults.some((f) => f.level === 'job');
  if (!isStarted(job) && !wantsJob) {
    const podFaults = rankFaults.filter((f) => f.level === 'pod');
    if (podFaults.length === 0) return;
    countNodeFaults(job, podFaults);
    const open = openRemediation(job);
    if (open) {
      open.level = open.level === 'job' ? 'job' : 'pod';
      open.pods = [...new Set([...open.pods, ...podFaults.map((f) => f.pod!)])].sort();
      open.nodes = [
        ...new Set([...open.nodes, ...podFaults.flatMap((f) => (f.node ? [f.node] : []))]),
      ].sort();
      open.ranks = [
        ...new Set([...open.ranks, ...podFaults.flatMap((f) => (f.rank !== undefined ? [f.rank] : []))]),
      ].sort((a, b) => a - b);
    }
    for (const f of podFaults) {
      actions.push(
        eventAction(job, now, f.reason, f.message, {
          type: 'Warning',
          lifecycle: LifecycleEvent.FaultDetected,
        }),
      );
    }
    replaceFaultyPods(job, podFaults, badNodes, actions);
    return;
  }

  let level: RestartLevel = rankFaults.reduce<Fault['level']>(
    (acc, f) => (LEVEL_ORDER[f.level] > LEVEL_ORDER[acc] ? f.level : acc),
    'process',
  );
  const manual = rankFaults.every((f) => f.manual);
  const primary = primaryFault(rankFaults, level);
  const policy = job.spec.runPolicy;
  const restartPolicy = policy.restartPolicy;

  if (!manual) {
    const maxNoProgress = job.spec.trainkeeper.maxRestartsWithoutProgress;
    if (maxNoProgress !== undefined && job.progress.restartsWithoutProgress >= maxNoProgress) {
      failJob(
        job,
        Reason.NoProgress,
        `No training progress across ${job.progress.restartsWithoutProgress} restarts (last fault: ${primary.reason})`,
        now,
        actions,
      );
      return;
    }
    if (level === 'process' && restartPolicy?.numRestartBeforeFullJobRestart !== undefined) {
      if (restartsInWindow(job, now).length >= restartPolicy.numRestartBeforeFullJobRestart) level = 'job';
    }
    if (level === 'job') {
      const max = restartPolicy?.maxFullJobRestarts;
      if (max !== undefined && job.restartStatus.fullJobRestartCount >= max) {
        failJob(
          job,
          Reason.MaxFullJobRestartsExceeded,
          `Full job restarts exhausted (${job.restartStatus.fullJobRestartCount} of ${max}); last fault: ${primary.reason}`,
          now,
          actions,
        );
        return;
      }
    } else if (policy.jobMaxRetryCount !== undefined && job.processRestartCount >= policy.jobMaxRetryCount) {
      failJob(
        job,
        Reason.MaxRetriesExceeded,
        `Restarts exhausted (${job.processRestartCount} of ${policy.jobMaxRetryCount}); last fault: ${primary.reason}`,
        now,
        actions,
      );
      return;
    }
  }

  // The restart itself.
  const previousPhase = job.phase;
  const runningSince = job.runningSince;
  job.generation += 1;
  job.restartCount += 1;
  countNodeFaults(job, rankFaults);
  setPhase(job, 'Restarting', now);
  delete job.runningSince;
  clearCondition(job, 'Running', Reason.Restarting, now);
  setCondition(job, 'Restarting', 'True', primary.reason, primary.message, now);

  if (!manual) {
    job.progress.restartsWithoutProgress += 1;
    const b = job.spec.trainkeeper.restartBackoff;
    // "Consecutive": the streak resets when the job had been Running for at least the backoff cap.
    const ranLongEnough =
      b !== undefined &&
      previousPhase === 'Running' &&
      runningSince !== undefined &&
      now - runningSince >= b.maxSeconds * 1000;
    job.restartStreak = (ranLongEnough ? 0 : (job.restartStreak ?? 0)) + 1;
    const delay = backoffDelayMs(job, job.restartStreak);
    if (delay > 0) job.backoffUntil = now + delay;
    else delete job.backoffUntil;
  }

  const faultyPods = rankFaults.filter((f) => f.level === 'pod');
  const work: Action[] = [];
  if (level === 'job') {
    if (!manual) job.restartStatus.fullJobRestartCount += 1;
    job.restartTimes = [];
    job.restartStatus.restartCount = 0;
    job.restartStatus.currentEvalPeriod = now;
    const avoid = repeatOffenders(job, restartPolicy?.maxNumRepeatOffendersToAvoid ?? 0);
    const live = job.pods.filter((s) => s.podPhase !== 'Deleting');
    const force = live.some((s) => s.nodeName !== undefined && badNodes.has(s.nodeName));
    if (live.length > 0) {
      work.push({
        type: 'DeletePods',
        pods: live.map((s) => s.name),
        ...(force ? { force: true, gracePeriodSeconds: 0 } : {}),
      });
    }
    const fresh = freshSlots(job.spec, job.generation, [...new Set([...avoid, ...badNodes])].sort());
    // Keep pod names unique even if a slot had already used this pod generation.
    job.pods = fresh.map((s) => {
      const old = job.pods.find((o) => o.replica === s.replica && o.index === s.index);
      return old && old.podGeneration >= s.podGeneration
        ? renewSlot(job, s, old.podGeneration + 1, s.avoidNodes ?? [])
        : s;
    });
  } else {
    if (!manual) {
      job.processRestartCount += 1;
      if (level === 'process') job.restartTimes = [...restartsInWindow(job, now), now];
    }
    const inWindow = restartsInWindow(job, now);
    job.restartStatus.restartCount = inWindow.length;
    job.restartStatus.currentEvalPeriod = inWindow[0] ?? job.restartStatus.currentEvalPeriod;
    if (faultyPods.length > 0) replaceFaultyPods(job, faultyPods, badNodes, work);
  }
  job.latestFaultyPodInstanceList = faultyList(rankFaults, level === 'job' ? 'JLR' : 'PLR');

  const remediation: Remediation = {
    generation: job.generation,
    reason: primary.reason,
    level,
    faultAt: Math.min(...rankFaults.map((f) => f.faultAt)),
    detectedAt: now,
    pods: job.latestFaultyPodInstanceList.faultyPodList,
    ranks: job.latestFaultyPodInstanceList.faultyRankList,
    nodes: [...new Set(rankFaults.flatMap((f) => (f.node ? [f.node] : [])))].sort(),
    message: primary.message,
  };
  job.remediations = [...job.remediations, remediation].slice(-MAX_REMEDIATIONS);

  const family = reasonFamily(primary.reason);
  // The story first (events, counters), then the work (deletions); agent calls follow from the lifecycle.
  actions.push(
    ...faultEvents(job, rankFaults, primary, now),
    eventAction(
      job,
      now,
      Reason.Restarting,
      `Restarting at ${level} level (generation ${job.generation})${manual ? ' on request' : ''}`,
      {
        lifecycle: LifecycleEvent.RestartStarted,
        details: { level, reason: primary.reason, generation: job.generation },
      },
    ),
    counterAction(Metric.jobsRestarted),
    counterAction(Metric.restarts, { level, reason: family }),
    // One action per observation: the metrics adapters record both the HyperPod gauge and the histogram
    // from it (adapters/prometheus/histogram.ts), so a second action would count the restart twice.
    latencyAction(Metric.faultDetectionLatency, { reason: family }, now - remediation.faultAt),
    ...work,
  );
};
