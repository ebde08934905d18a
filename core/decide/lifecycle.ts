/**
 * The level-triggered half of decide: given the folded record and `now`, which transitions are due and
 * which actions bring the cluster to the record's state. The same record and `now` always give the same
 * actions, whatever trigger woke the job; running it twice in a row changes nothing the second time.
 *
 *   Pending/Restarting ──all rank agents READY──► StartAgents(gen g) ──all RUNNING(g)──► Running
 *        ▲    │ stale agents (RUNNING/FAULTED of g−1) get StopAgents; unseen pods get CreatePods
 *        │    └─ held while `backoffUntil` is in the future (stops still go out)
 *   Running ──fault──► Restarting (ladder)      Running ──all COMPLETED(g)──► Succeeded
 *   In-process restart (decide/inprocess.ts): no StopAgents; RestartInProcess(every rank, g) once every
 *   rank pod runs ──all RUNNING(g)──► Running; re-sent to ranks still on g−1 after INPROCESS_RESEND_MS
 */
import type { Action, PodPlan } from '../actions.ts';
import type { StartBody } from '../agent-protocol.ts';
import type { JobRecord, PodSlot } from '../job.ts';
import { isStarted, isTerminal } from '../job.ts';
import { Metric } from '../metrics.ts';
import { LifecycleEvent, Reason } from '../reasons.ts';
import { elasticNextCheckAt } from './elastic.ts';
import { inProcessTargets, openInProcessRestart } from './inprocess.ts';
import { masterPortFor } from './naming.ts';
import {
  clearCondition,
  eventAction,
  everyRank,
  latencyAction,
  rankSlots,
  setCondition,
  setPhase,
} from './record.ts';
import { isPodSeen, isReadyToStart } from './slots.ts';
import { failJob, succeedJob } from './terminal.ts';

/**
 * A Running job whose rank agent has been silent this long gets its `/status` polled. The job's
 * `nextCheckAt` carries each rank's liveness deadline (`lastSeenAt + LIVENESS_MS`) rounded up to a multiple
 * of `LIVENESS_GRANULARITY_MS`, so a silent agent is looked at up to that much later.
 */
export const LIVENESS_MS = 30_000;

/**
 * The step liveness deadlines in `nextCheckAt` are rounded up to: heartbeats move a job's `nextCheckAt`
 * (and with it its entry in the store's due-jobs index) at most once per 5 s, not on every heartbeat of a
 * big job. The cost: a silent agent is polled at most 5 s later than `LIVENESS_MS` alone would say.
 */
export const LIVENESS_GRANULARITY_MS = 5_000;

/** A liveness deadline rounded up to the next multiple of `LIVENESS_GRANULARITY_MS`. */
const livenessCheckAt = (lastSeenAt: number): number =>
  Math.ceil((lastSeenAt + LIVENESS_MS) / LIVENESS_GRANULARITY_MS) * LIVENESS_GRANULARITY_MS;

/** When the finished record is deleted (`ttlSecondsAfterFinished` > 0 only), else undefined. */
export const ttlDeleteAt = (job: JobRecord): number | undefined => {
  const ttl = job.spec.runPolicy.ttlSecondsAfterFinished;
  // 0 (the CRD default) and -1 keep the record: in a serverless control plane the record is the only
  // status there is; deleting it the moment the job ends would erase the result before anyone read it.
  if (!isTerminal(job.phase) || ttl <= 0 || job.completionTime === undefined) return undefined;
  return job.completionTime + ttl * 1000;
};

/** The deadlines that apply now, each as [instant, reason, message]. */
export const deadlines = (job: JobRecord): [number, string, string][] => {
  const out: [number, string, string][] = [];
  const rp = job.spec.runPolicy;
  if (rp.startupDeadlineSeconds !== undefined && job.startTime === undefined && job.phase !== 'Running') {
    out.push([
      (job.resumedAt ?? job.createdAt) + rp.startupDeadlineSeconds * 1000,
      'StartupDeadlineExceeded',
      `Job did not start within startupDeadlineSeconds=${rp.startupDeadlineSeconds}`,
    ]);
  }
  if (rp.faultDeadlineSeconds !== undefined && job.phase === 'Restarting') {
    out.push([
      (job.phaseSince ?? job.updatedAt) + rp.faultDeadlineSeconds * 1000,
      'FaultDeadlineExceeded',
      `Job did not recover within faultDeadlineSeconds=${rp.faultDeadlineSeconds}`,
    ]);
  }
  if (rp.activeDeadlineSeconds !== undefined && job.startTime !== undefined) {
    out.push([
      job.startTime + rp.activeDeadlineSeconds * 1000,
      'ActiveDeadlineExceeded',
      `Job was active longer than activeDeadlineSeconds=${rp.activeDeadlineSeconds}`,
    ]);
  }
  return out;
};

const isRunBound = (slot: PodSlot): boolean =>
  slot.agent !== undefined && ['RUNNING', 'FAULTED', 'COMPLETED'].includes(slot.agent.state);

const planFor = (slot: PodSlot): PodPlan => ({
  name: slot.name,
  replica: slot.replica,
  index: slot.index,
  generation: slot.podGeneration,
  spare: slot.groupRank === null && slot.joining !== true,
  avoidNodes: slot.avoidNodes ?? [],
});

/**
 * Largest job (rank pods) whose `/start` bodies carry the rank → IP table (`rankIps`, optional in HyperPod's
 * API; the agent writes it to its `--rank-ip-file`). Every body carries the whole table, so a restart sends
 * N² entries: 4,096 ranks are ~530 MB of bodies, 16,384 ~8.6 GB, more than a Lambda can send in its time
 * (bench/restart.bench.ts). Bigger jobs get the rendezvous (`master_addr`/`master_port`) only, which is what
 * PyTorch's rendezvous needs; a training script that reads the rank-IP file must run at or under this size.
 */
export const RANK_IPS_MAX_RANKS = 1024;

const startBodies = (
  job: JobRecord,
  slots: PodSlot[],
  nnodes: number,
): { pod: string; body: StartBody }[] => {
  const ranks = rankSlots(job);
  const rules = job.spec.runPolicy.logMonitoringConfiguration.map(({ source: _source, ...wire }) => ({
    ...wire,
  }));
  // One rank → IP table for every body (the same for all ranks): N bodies, not N² entries in memory; on the
  // wire each body carries it, so it is sent only up to RANK_IPS_MAX_RANKS ranks.
  const rankIps =
    ranks.length <= RANK_IPS_MAX_RANKS
      ? ranks.map((r) => ({ rank: r.groupRank ?? 0, ip: r.ip ?? '' }))
      : undefined;
  return slots.map((slot) => {
    const body: StartBody = {
      rank: slot.groupRank ?? 0,
      nnodes,
      faultCount: job.generation,
      master_addr: job.masterAddr ?? '',
      master_port: job.masterPort ?? 0,
      spare: false,
    };
    if (rankIps) body.rankIps = rankIps;
    if (rules.length > 0) body.log_monitoring_configuration = rules;
    return { pod: slot.name, body };
  });
};

/**
 * Sends `/inprocess-restart` (decide/inprocess.ts `inProcessTargets`): the first time to every rank, with
 * the new generation's rendezvous (rank 0's IP, a fresh port); later, a re-send to the ranks left behind.
 */
const restartInPlace = (job: JobRecord, now: number, actions: Action[]): void => {
  const open = openInProcessRestart(job);
  if (!open) return;
  const ranks = rankSlots(job);
  const sent = isStarted(job);
  const targets = inProcessTargets(job, open, sent, now);
  if (targets.length === 0) return;
  if (!sent) {
    job.masterAddr = ranks[0]!.ip!;
    job.masterPort = masterPortFor(job.uid, job.generation);
    job.startedGeneration = job.generation;
  }
  actions.push({
    type: 'RestartInProcess',
    starts: startBodies(job, targets, ranks.length),
    generation: job.generation,
  });
};

/** Pending/Restarting → Running: closes the open remediation with HyperPod's "remediated in" message. */
const enterRunning = (job: JobRecord, now: number, actions: Action[]): void => {
  setPhase(job, 'Running', now);
  job.runningSince = now;
  job.startTime ??= now;
  clearCondition(job, 'Restarting', Reason.Running, now);
  const open = job.remediations.find((r) => r.generation === job.generation && r.recoveredAt === undefined);
  if (open) {
    open.recoveredAt = now;
    const ms = now - open.detectedAt;
    const message = `The fault of reason ${open.reason} was remediated in ${ms} milliseconds.`;
    setCondition(job, 'Running', 'True', Reason.Running, message, now);
    actions.push(
      eventAction(job, now, Reason.Running, message, {
        lifecycle: LifecycleEvent.RestartCompleted,
        details: { level: open.level, reason: open.reason, milliseconds: ms },
      }),
      // One action: the adapters derive the gauge and the histogram from it (see ladder.ts).
      latencyAction(Metric.restartLatency, { level: open.level }, ms),
    );
  } else {
    const message = `All ${rankSlots(job).length} ranks running (generation ${job.generation})`;
    setCondition(job, 'Running', 'True', Reason.Running, message, now);
    actions.push(eventAction(job, now, Reason.Running, message));
  }
};

/**
 * Derives the due transitions and the level actions. `strays` are listed pods that hold no slot.
 */
export const deriveActions = (job: JobRecord, now: number, strays: string[], actions: Action[]): void => {
  if (isTerminal(job.phase)) {
    const at = ttlDeleteAt(job);
    if (at !== undefined && now >= at) actions.push({ type: 'DeleteJob' });
    return;
  }
  if (job.phase === 'Suspended') return;

  const due = deadlines(job).find(([at]) => now >= at);
  if (due) {
    failJob(job, due[1], due[2], now, actions);
    return;
  }

  if (job.backoffUntil !== undefined && now >= job.backoffUntil) delete job.backoffUntil;
  // The trigger that recorded the cut ran at `cutShortAt`; any later one re-derives and makes the calls.
  if (job.cutShortAt !== undefined && now > job.cutShortAt) delete job.cutShortAt;
  const inBackoff = job.backoffUntil !== undefined;
  const gen = job.generation;

  if (isStarted(job) && everyRank(job, (s) => s.agent?.state === 'COMPLETED' && s.agent.generation === gen)) {
    succeedJob(job, now, actions);
    return;
  }

  const unseen = job.pods.filter((s) => s.podPhase === 'Pending' && !isPodSeen(s));
  if (!inBackoff && unseen.length > 0) actions.push({ type: 'CreatePods', pods: unseen.map(planFor) });

  if (job.phase === 'Running') {
    // Every steady batch of a big job comes here: one pass over the slots, no list of every rank.
    const silent: PodSlot[] = [];
    for (const s of job.pods) {
      if (s.groupRank === null || s.podPhase !== 'Running') continue;
      if ((s.lastSeenAt ?? job.runningSince ?? now) + LIVENESS_MS <= now) silent.push(s);
    }
    if (silent.length > 0)
      actions.push({ type: 'PollAgents', pods: rankSlots({ pods: silent }).map((s) => s.name) });
  } else {
    const ranks = rankSlots(job);
    if (ranks.length > 0 && ranks.every((s) => s.podPhase === 'Running')) {
      const c = job.conditions.find((x) => x.type === 'PodsRunning');
      if (c?.status !== 'True') {
        setCondition(
          job,
          'PodsRunning',
          'True',
          Reason.PodsRunning,
          `All ${ranks.length} rank pods are running`,
          now,
        );
      }
    }
    if (isStarted(job) && ranks.every((s) => s.agent?.state === 'RUNNING' && s.agent.generation === gen)) {
      enterRunning(job, now, actions);
    } else {
      // Restarting in place, the old run's live workers are the point: nothing is stopped.
      const inPlace = openInProcessRestart(job) !== undefined;
      const stale = inPlace
        ? []
        : ranks.filter(
            (s) =>
              s.podPhase === 'Running' && isRunBound(s) && (s.agent!.generation !== gen || !isStarted(job)),
          );
      if (stale.length > 0)
        actions.push({ type: 'StopAgents', pods: stale.map((s) => s.name), generation: gen });
      const waiting = job.pods.filter(
        (s) =>
          s.podPhase === 'Running' &&
          s.ip !== undefined &&
          (s.agent === undefined || s.agent.state === 'INIT' || s.agent.state === 'STOPPING'),
      );
      if (waiting.length > 0) actions.push({ type: 'PollAgents', pods: waiting.map((s) => s.name) });
      if (!inBackoff) {
        if (inPlace) restartInPlace(job, now, actions);
        if (!isStarted(job)) {
          if (!inPlace && ranks.length > 0 && ranks.every(isReadyToStart)) {
            const rank0 = ranks[0]!;
            job.masterAddr = rank0.ip!;
            job.masterPort = masterPortFor(job.uid, gen);
            job.startedGeneration = gen;
            actions.push({
              type: 'StartAgents',
              starts: startBodies(job, ranks, ranks.length),
              generation: gen,
            });
          }
        } else {
          const ready = ranks.filter(isReadyToStart);
          if (ready.length > 0) {
            actions.push({
              type: 'StartAgents',
              starts: startBodies(job, ready, ranks.length),
              generation: gen,
            });
          }
        }
      }
    }
  }
  if (strays.length > 0) actions.push({ type: 'DeletePods', pods: [...new Set(strays)].sort() });
};

/**
 * The earliest instant the job needs looking at: deadlines, backoff expiry, liveness (a rank agent's
 * silence reaching LIVENESS_MS, rounded up to LIVENESS_GRANULARITY_MS), TTL deletion. A function of the
 * record only (never of `now`), so an unchanged job keeps the same value. Terminal jobs have none except
 * a pending TTL delete. One pass over the slots, whatever their number.
 */
export const computeNextCheckAt = (job: JobRecord): number | undefined => {
  if (isTerminal(job.phase)) return ttlDeleteAt(job);
  if (job.phase === 'Suspended') return undefined;
  const candidates = deadlines(job).map(([at]) => at);
  if (job.backoffUntil !== undefined) candidates.push(job.backoffUntil);
  if (job.cutShortAt !== undefined) candidates.push(job.cutShortAt);
  candidates.push(...elasticNextCheckAt(job));
  const base = job.phase === 'Running' ? job.runningSince : (job.phaseSince ?? job.createdAt);
  // The earliest rank deadline comes from the least recently seen rank (rounding keeps the order).
  let oldest: number | undefined;
  for (const s of job.pods) {
    if (s.groupRank === null || s.podPhase === 'Deleting') continue;
    const last = s.lastSeenAt ?? base;
    if (last !== undefined && (oldest === undefined || last < oldest)) oldest = last;
  }
  if (oldest !== undefined) candidates.push(livenessCheckAt(oldest));
  let earliest: number | undefined;
  for (const at of candidates) if (earliest === undefined || at < earliest) earliest = at;
  return earliest;
};
