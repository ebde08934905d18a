/**
 * The restart ladder and the budgets around it (DESIGN.md "Restart ladder", hyperpod-spec §4.2).
 *
 * Rungs, cheapest first:
 *   0. inprocess — opt-in (`spec.trainkeeper.inProcessRestart`): `/inprocess-restart` every rank agent at
 *                generation + 1; only dead workers are replaced, live ones re-enter in place
 *                (core/decide/inprocess.ts says when it applies). A failed one escalates to process.
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
 * - An in-process restart counts exactly as an automatic process-level restart: in the window, in
 *   `jobMaxRetryCount` (`processRestartCount`), in backoff and in `restartStatus.restartCount`. It is a
 *   cheaper recovery, never a larger budget.
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
 *
 * Shape (JobSet's failure policy): `remediate` reduces a batch of faults to a few facts (`Batch`), walks
 * the ordered `RULES` (first match wins) to pick a rung, and runs that rung's applier from `APPLY`.
 * Faulty spares are handled before the rules: they only get a new pod. Exactly one rung runs per batch,
 * so a batch carrying several symptoms of one fault is one restart.
 */
import type { Action } from '../actions.ts';
import type { JobRecord, PodSlot, Remediation, RestartLevel } from '../job.ts';
import { isStarted, isTerminal } from '../job.ts';
import { Metric } from '../metrics.ts';
import { LifecycleEvent, Reason } from '../reasons.ts';
import { replaceSlot, slotPosition } from './draft.ts';
import type { Fault } from './fault.ts';
import { canRestartInProcess } from './inprocess.ts';
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
import { failJob } from './terminal.ts';

/** Restarts within the sliding window ending at `now` (see the module comment for the exact rule). */
const restartsInWindow = (job: JobRecord, now: number): number[] => {
  const period = job.spec.runPolicy.restartPolicy?.evalPeriodSeconds;
  const times = job.restartTimes ?? [];
  if (period === undefined) return times.filter((t) => t <= now);
  return times.filter((t) => t > now - period * 1000 && t <= now);
};

/**
 * Backoff before restart number `streak` (1-based, consecutive): none for the first `freeRestarts`, then
 * initial × multiplier^k capped at max, k = streak − freeRestarts − 1. Milliseconds.
 */
const backoffDelayMs = (job: JobRecord, streak: number): number => {
  const b = job.spec.trainkeeper.restartBackoff;
  if (!b || streak <= b.freeRestarts) return 0;
  const k = streak - b.freeRestarts - 1;
  return Math.min(b.maxSeconds, b.initialSeconds * b.multiplier ** k) * 1000;
};

const LEVEL_ORDER: Record<Fault['level'], number> = { process: 0, pod: 1, job: 2 };

const openRemediation = (job: JobRecord): Remediation | undefined =>
  job.remediations.find((r) => r.generation === job.generation && r.recoveredAt === undefined);

/** Top `k` nodes by fault count (ties broken by name, for determinism). */
const repeatOffenders = (job: JobRecord, k: number): string[] =>
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
    const i = slotPosition(job, pod);
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
      replaceSlot(job, spareIndex, { ...spare, groupRank: slot.groupRank, spare: false });
      const demoted = renewSlot(
        job,
        { ...slot, groupRank: null, spare: true },
        nextPodGeneration(job, slot),
        avoid,
      );
      replaceSlot(job, i, demoted);
    } else {
      replaceSlot(job, i, renewSlot(job, slot, nextPodGeneration(job, slot), avoid));
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

/** What the rules look at: one batch of rank faults reduced to a few facts. */
interface Batch {
  /** The faults of rank pods (spares are handled before the rules). */
  faults: Fault[];
  /** The highest level any fault asks for. */
  requested: Fault['level'];
  /**
   * `requested`, after the sliding window escalated an automatic process restart to a job restart; the
   * in-process rung runs with `inprocess` here.
   */
  level: RestartLevel;
  /** Every fault is a user's Restart command: budgets, window and backoff do not apply. */
  manual: boolean;
  /** The fault that names the restart (the first of the requested level). */
  primary: Fault;
  /** Nodes reported unhealthy in this batch: replacements avoid them, their pods are deleted with grace 0. */
  badNodes: Set<string>;
}

/** What a batch of rank faults does to the job, cheapest first; failing rungs name their reason. */
type Rung =
  | 'ignore'
  | 'replaceBeforeStart'
  | 'failNoProgress'
  | 'failFullJobRestartsSpent'
  | 'failRetriesSpent'
  | 'inprocess'
  | 'process'
  | 'pod'
  | 'job';

interface Rule {
  /** Why the rule exists, in a sentence (for readers). */
  name: string;
  when: (job: JobRecord, b: Batch) => boolean;
  rung: Rung;
}

const hasPodFault = (b: Batch): boolean => b.faults.some((f) => f.level === 'pod');

/**
 * The ladder's rules, in order; the first that matches picks the rung. The last rule always matches.
 * Before the generation's agents were started nothing runs yet, so only pod replacements (inside the
 * pending start, no new generation, no budget) and a job restart apply. Automatic restarts then pass the
 * no-progress guard and the budget of their level; manual ones skip straight to their rung.
 */
const RULES: readonly Rule[] = [
  {
    name: 'a process fault before the agents were started has nothing to restart',
    when: (job, b) => !isStarted(job) && b.requested !== 'job' && !hasPodFault(b),
    rung: 'ignore',
  },
  {
    name: 'a pod fault before the agents were started replaces the pod inside the pending start',
    when: (job, b) => !isStarted(job) && b.requested !== 'job',
    rung: 'replaceBeforeStart',
  },
  {
    name: 'restarts that stopped making training progress fail the job',
    when: (job, b) => {
      const max = job.spec.trainkeeper.maxRestartsWithoutProgress;
      return !b.manual && max !== undefined && job.progress.restartsWithoutProgress >= max;
    },
    rung: 'failNoProgress',
  },
  {
    name: 'a full job restart past maxFullJobRestarts fails the job',
    when: (job, b) => {
      const max = job.spec.runPolicy.restartPolicy?.maxFullJobRestarts;
      return (
        !b.manual && b.level === 'job' && max !== undefined && job.restartStatus.fullJobRestartCount >= max
      );
    },
    rung: 'failFullJobRestartsSpent',
  },
  {
    name: 'a process restart or pod replacement past jobMaxRetryCount fails the job',
    when: (job, b) => {
      const max = job.spec.runPolicy.jobMaxRetryCount;
      return !b.manual && b.level !== 'job' && max !== undefined && job.processRestartCount >= max;
    },
    rung: 'failRetriesSpent',
  },
  {
    name: 'a job-level fault (or an escalated one) restarts the whole job',
    when: (_, b) => b.level === 'job',
    rung: 'job',
  },
  {
    name: 'a pod-level fault replaces the pod, then restarts every rank',
    when: (_, b) => b.level === 'pod',
    rung: 'pod',
  },
  {
    name: 'a process fault of an opted-in job whose rank pods are healthy restarts the workers in place',
    when: (job, b) => b.level === 'process' && canRestartInProcess(job, b.faults, b.manual),
    rung: 'inprocess',
  },
  { name: 'anything else restarts the worker processes', when: () => true, rung: 'process' },
];

type Applier = (job: JobRecord, b: Batch, now: number, actions: Action[]) => void;

/** Before the start: the faulty rank pods are replaced and the open remediation (if any) takes them in. */
const replaceBeforeStart: Applier = (job, b, now, actions) => {
  const podFaults = b.faults.filter((f) => f.level === 'pod');
  countNodeFaults(job, podFaults);
  const open = openRemediation(job);
  if (open) {
    open.level = open.level === 'job' ? 'job' : 'pod';
    open.pods = [...new Set([...open.pods, ...podFaults.map((f) => f.pod!)])].sort();
    open.nodes = [...new Set([...open.nodes, ...podFaults.flatMap((f) => (f.node ? [f.node] : []))])].sort();
    open.ranks = [
      ...new Set([...open.ranks, ...podFaults.flatMap((f) => (f.rank !== undefined ? [f.rank] : []))]),
    ].sort((x, y) => x - y);
  }
  for (const f of podFaults) {
    actions.push(
      eventAction(job, now, f.reason, f.message, {
        type: 'Warning',
        lifecycle: LifecycleEvent.FaultDetected,
      }),
    );
  }
  replaceFaultyPods(job, podFaults, b.badNodes, actions);
};

/** Job rung: forget the window, delete every live pod and recreate all, avoiding repeat offenders. */
const recreateAllPods = (job: JobRecord, b: Batch, now: number, work: Action[]): void => {
  if (!b.manual) job.restartStatus.fullJobRestartCount += 1;
  job.restartTimes = [];
  job.restartStatus.restartCount = 0;
  job.restartStatus.currentEvalPeriod = now;
  const avoid = repeatOffenders(job, job.spec.runPolicy.restartPolicy?.maxNumRepeatOffendersToAvoid ?? 0);
  const live = job.pods.filter((s) => s.podPhase !== 'Deleting');
  const force = live.some((s) => s.nodeName !== undefined && b.badNodes.has(s.nodeName));
  if (live.length > 0) {
    work.push({
      type: 'DeletePods',
      pods: live.map((s) => s.name),
      ...(force ? { force: true, gracePeriodSeconds: 0 } : {}),
    });
  }
  const fresh = freshSlots(
    job.spec,
    job.generation,
    [...new Set([...avoid, ...b.badNodes])].sort(),
    job.elastic?.currentReplicas,
  );
  // Keep pod names unique even if a slot had already used this pod generation.
  const previous = new Map<string, PodSlot>();
  for (const o of job.pods) {
    const key = `${o.replica}/${o.index}`;
    if (!previous.has(key)) previous.set(key, o);
  }
  job.pods = fresh.map((s) => {
    const old = previous.get(`${s.replica}/${s.index}`);
    return old && old.podGeneration >= s.podGeneration
      ? renewSlot(job, s, old.podGeneration + 1, s.avoidNodes ?? [])
      : s;
  });
};

/**
 * In-process, process and pod rungs: count the restart, slide the window (an in-process restart counts as a
 * process-level one), replace the faulty pods (pod rung).
 */
const keepPods = (job: JobRecord, b: Batch, now: number, work: Action[]): void => {
  if (!b.manual) {
    job.processRestartCount += 1;
    if (b.level === 'process' || b.level === 'inprocess')
      job.restartTimes = [...restartsInWindow(job, now), now];
  }
  const inWindow = restartsInWindow(job, now);
  job.restartStatus.restartCount = inWindow.length;
  job.restartStatus.currentEvalPeriod = inWindow[0] ?? job.restartStatus.currentEvalPeriod;
  const faultyPods = b.faults.filter((f) => f.level === 'pod');
  if (faultyPods.length > 0) replaceFaultyPods(job, faultyPods, b.badNodes, work);
};

/**
 * A restart at `b.level`: generation + 1, phase Restarting, backoff for automatic ones, the rung's own
 * work (`rungWork`), a new remediation, then the story (events, counters, latency) and the work.
 */
const restart =
  (rungWork: (job: JobRecord, b: Batch, now: number, work: Action[]) => void): Applier =>
  (job, b, now, actions) => {
    const { faults, level, manual, primary } = b;
    const previousPhase = job.phase;
    const runningSince = job.runningSince;
    job.generation += 1;
    job.restartCount += 1;
    countNodeFaults(job, faults);
    setPhase(job, 'Restarting', now);
    delete job.runningSince;
    clearCondition(job, 'Running', Reason.Restarting, now);
    setCondition(job, 'Restarting', 'True', primary.reason, primary.message, now);

    if (!manual) {
      job.progress.restartsWithoutProgress += 1;
      const backoff = job.spec.trainkeeper.restartBackoff;
      // "Consecutive": the streak resets when the job had been Running for at least the backoff cap.
      const ranLongEnough =
        backoff !== undefined &&
        previousPhase === 'Running' &&
        runningSince !== undefined &&
        now - runningSince >= backoff.maxSeconds * 1000;
      job.restartStreak = (ranLongEnough ? 0 : (job.restartStreak ?? 0)) + 1;
      const delay = backoffDelayMs(job, job.restartStreak);
      if (delay > 0) job.backoffUntil = now + delay;
      else delete job.backoffUntil;
    }

    const work: Action[] = [];
    rungWork(job, b, now, work);
    job.latestFaultyPodInstanceList = faultyList(faults, level === 'job' ? 'JLR' : 'PLR');

    const remediation: Remediation = {
      generation: job.generation,
      reason: primary.reason,
      level,
      faultAt: Math.min(...faults.map((f) => f.faultAt)),
      detectedAt: now,
      pods: job.latestFaultyPodInstanceList.faultyPodList,
      ranks: job.latestFaultyPodInstanceList.faultyRankList,
      nodes: [...new Set(faults.flatMap((f) => (f.node ? [f.node] : [])))].sort(),
      message: primary.message,
    };
    job.remediations = [...job.remediations, remediation].slice(-MAX_REMEDIATIONS);

    const family = reasonFamily(primary.reason);
    // The story first (events, counters), then the work (deletions); agent calls follow from the lifecycle.
    actions.push(
      ...faultEvents(job, faults, primary, now),
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

/** The rung → applier table: every rung has exactly one way to be applied. */
const APPLY: Record<Rung, Applier> = {
  ignore: () => {},
  replaceBeforeStart,
  failNoProgress: (job, b, now, actions) =>
    failJob(
      job,
      Reason.NoProgress,
      `No training progress across ${job.progress.restartsWithoutProgress} restarts (last fault: ${b.primary.reason})`,
      now,
      actions,
    ),
  failFullJobRestartsSpent: (job, b, now, actions) =>
    failJob(
      job,
      Reason.MaxFullJobRestartsExceeded,
      `Full job restarts exhausted (${job.restartStatus.fullJobRestartCount} of ${job.spec.runPolicy.restartPolicy?.maxFullJobRestarts}); last fault: ${b.primary.reason}`,
      now,
      actions,
    ),
  failRetriesSpent: (job, b, now, actions) =>
    failJob(
      job,
      Reason.MaxRetriesExceeded,
      `Restarts exhausted (${job.processRestartCount} of ${job.spec.runPolicy.jobMaxRetryCount}); last fault: ${b.primary.reason}`,
      now,
      actions,
    ),
  // The agents are told by the lifecycle (RestartInProcess instead of StopAgents/StartAgents).
  inprocess: (job, b, now, actions) => restart(keepPods)(job, { ...b, level: 'inprocess' }, now, actions),
  process: restart(keepPods),
  pod: restart(keepPods),
  job: restart(recreateAllPods),
};

/** The highest level asked for, then the window's escalation (automatic process restarts only). */
const batchOf = (job: JobRecord, faults: Fault[], badNodes: Set<string>, now: number): Batch => {
  const requested = faults.reduce<Fault['level']>(
    (acc, f) => (LEVEL_ORDER[f.level] > LEVEL_ORDER[acc] ? f.level : acc),
    'process',
  );
  const manual = faults.every((f) => f.manual);
  const limit = job.spec.runPolicy.restartPolicy?.numRestartBeforeFullJobRestart;
  const escalate =
    !manual && requested === 'process' && limit !== undefined && restartsInWindow(job, now).length >= limit;
  return {
    faults,
    requested,
    level: escalate ? 'job' : requested,
    manual,
    primary: primaryFault(faults, requested),
    badNodes,
  };
};

/** The rung the first matching rule picks (the last rule always matches). */
const rungFor = (job: JobRecord, b: Batch): Rung => RULES.find((r) => r.when(job, b))!.rung;

/**
 * Applies one batch of faults: faulty spares get a new pod; the rank faults go through `RULES` and the
 * chosen rung's applier. Nothing happens to a terminal or suspended job.
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
  const ofSpares = new Set(spareFaults);
  const rankFaults = faults.filter((f) => !ofSpares.has(f));
  if (rankFaults.length === 0) return;

  const batch = batchOf(job, rankFaults, badNodes, now);
  APPLY[rungFor(job, batch)](job, batch, now, actions);
};
