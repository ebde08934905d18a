/**
 * Elastic training (HyperPod operator ≥ 1.2, `spec.elasticPolicy`): the world size moves between
 * `minReplicas` and `maxReplicas` over the allowed sizes, following the schedulable capacity.
 *
 * Sizes and layout:
 * - Allowed sizes: `replicaDiscreteValues` within [min, max], else min + N·step (step default 1) up to max;
 *   every size is also capped by the pods the replica specs can hold (Σ `maxReplicas ?? replicas`). min
 *   defaults to Σ `replicas` (the fixed part), max to that cap.
 * - A size is laid out over the replica specs in order, each filled up to `maxReplicas ?? replicas`
 *   (HyperPod's two-spec pattern: the fixed `base` spec fills first, the `elastic` spec with `replicas: 0`
 *   takes the rest). Rank slots use indices below a spec's cap; spares sit at cap + i, so they keep their
 *   names whatever the size.
 * - Capacity: schedulable healthy nodes observed (`NodesObserved`: HyperPod health label Schedulable or
 *   absent, NodeReady, not cordoned). A size fits when size + spares ≤ capacity (one training pod per node).
 *   Unknown capacity (never observed, or no node listed) fits every size.
 *
 * Transitions (all level-triggered, waits returned as `nextCheckAt`):
 *
 *   first placement / resume (no agent started, no fault being remediated)
 *       → resize at once to the largest allowed size that fits
 *   fault, job not Running, current size does not fit (no spare, no room for a replacement)
 *       ── faultyScaleDownTimeoutInSeconds ──► restart all ranks at the largest allowed size that fits
 *       (a fitting size never below minReplicas; below it nothing shrinks and the ladder waits as usual;
 *        capacity returning inside the wait cancels it: the replacement pod runs and recovery proceeds)
 *   Running, a larger allowed size fits (flapping: the clock restarts whenever it stops fitting)
 *       ── scalingTimeoutInSeconds (and restartPolicy.scaleUpSnoozeTimeInSeconds after a restart) ──►
 *       CreatingPods: joining slots get pods ──all READY──► Draining: elastic event to the rank agents
 *       ──every rank agent left RUNNING, or gracefulShutdownTimeoutInSeconds──► restart every rank at the
 *       new size (generation + 1, ranks renumbered, new rendezvous and rank→IP table) ──all RUNNING──► done
 *
 * Counting: a scaling restart is not a fault. It bumps `generation` (agents see a new `faultCount`, so a
 * stale record of the old size is ignored as for any restart) but counts in none of `restartCount`,
 * `processRestartCount`, the sliding window, `fullJobRestartCount`, backoff or the no-progress guard; it
 * has its own count (`elastic.scalingCount`) and metric. A shrink that follows a fault is part of that
 * fault's remediation (the remediation closes when the smaller job runs); the fault itself was counted
 * by the ladder as usual. While ranks drain on an elastic event their exits are expected: FAULTED and
 * COMPLETED reports of the draining generation are not faults and do not finish the job.
 *
 * Kueue's Workload-per-size admission can be added as another capacity source: `capacity` is the only
 * input the size decisions read.
 */
import type { Action } from '../actions.ts';
import type { ElasticScaling, ElasticStatus, JobRecord, PodSlot } from '../job.ts';
import { isStarted, isTerminal } from '../job.ts';
import { Metric } from '../metrics.ts';
import type { ObservedNode } from '../observations.ts';
import { Reason } from '../reasons.ts';
import type { JobSpec } from '../spec/types.ts';
import { writableSlot } from './draft.ts';
import type { Fault } from './fault.ts';
import { podName } from './naming.ts';
import { counterAction, eventAction, latencyAction, rankSlots, setPhase } from './record.ts';
import { isReadyToStart } from './slots.ts';

/** Scaling events kept on the record (the timeline keeps them all). */
export const MAX_SCALING_EVENTS = 20;

/** Pods one replica spec can hold as ranks: `maxReplicas`, else its fixed `replicas`. */
export const specCap = (spec: JobSpec['replicaSpecs'][number]): number =>
  Math.max(spec.replicas, spec.maxReplicas ?? spec.replicas);

/**
 * The allowed world sizes (rank pods) of an elastic job, ascending; undefined for a job without
 * `elasticPolicy`. Never empty for an elastic job: when the policy leaves no size, the fixed size stays.
 */
export const allowedSizes = (spec: JobSpec): number[] | undefined => {
  const policy = spec.elasticPolicy;
  if (!policy) return undefined;
  const cap = spec.replicaSpecs.reduce((n, r) => n + specCap(r), 0);
  const fixed = spec.replicaSpecs.reduce((n, r) => n + r.replicas, 0);
  const min = Math.max(1, policy.minReplicas ?? fixed);
  const max = Math.min(cap, policy.maxReplicas ?? cap);
  let sizes: number[];
  if (policy.replicaDiscreteValues && policy.replicaDiscreteValues.length > 0) {
    sizes = [...new Set(policy.replicaDiscreteValues)].filter((n) => n >= min && n <= max);
  } else {
    const step = Math.max(1, policy.replicaIncrementStep ?? 1);
    sizes = [];
    for (let n = min; n <= max; n += step) sizes.push(n);
  }
  sizes.sort((a, b) => a - b);
  return sizes.length > 0 ? sizes : [Math.max(1, Math.min(fixed, cap))];
};

/** Rank pods per replica spec for a world size (specs filled in order up to their cap). */
export const replicaCounts = (spec: JobSpec, size: number): number[] => {
  let left = size;
  return spec.replicaSpecs.map((r) => {
    const n = Math.min(specCap(r), Math.max(0, left));
    left -= n;
    return n;
  });
};

/** Spare pods of the job (each takes a node too). */
const totalSpares = (spec: JobSpec): number => spec.replicaSpecs.reduce((n, r) => n + r.spares, 0);

/** Whether a node can take a training pod: HyperPod health Schedulable (or unlabelled), Ready, not cordoned. */
export const isNodeSchedulable = (node: ObservedNode): boolean =>
  node.ready && (node.health === undefined || node.health === 'Schedulable') && node.unschedulable !== true;

/** The largest allowed size that fits the observed capacity, or undefined when none does. */
export const fittingSize = (job: JobRecord): number | undefined => {
  const e = job.elastic;
  if (!e) return undefined;
  if (e.capacity === undefined) return e.allowedSizes.at(-1);
  const room = e.capacity - totalSpares(job.spec);
  return [...e.allowedSizes].reverse().find((n) => n <= room);
};

/** The elastic view of a new record: every allowed size, starting at the largest (capacity comes later). */
export const newElasticStatus = (spec: JobSpec): ElasticStatus | undefined => {
  const sizes = allowedSizes(spec);
  if (!sizes) return undefined;
  const max = sizes.at(-1)!;
  return { allowedSizes: sizes, currentReplicas: max, desiredReplicas: max, scalingCount: 0, events: [] };
};

/** The size a clean layout (creation, resume, full job restart) uses: the current one, else the spec's. */
export const layoutSize = (job: Pick<JobRecord, 'elastic'>): number | undefined =>
  job.elastic?.currentReplicas;

/** Folds a `NodesObserved` list: the capacity is its schedulable node count (no node = unknown). */
export const foldCapacity = (job: JobRecord, nodes: ObservedNode[], at: number): void => {
  const e = job.elastic;
  if (!e || (e.capacityAt !== undefined && at < e.capacityAt)) return;
  e.capacityAt = at;
  if (nodes.length === 0) delete e.capacity;
  else e.capacity = nodes.filter(isNodeSchedulable).length;
};

/**
 * Faults decide should act on: while ranks drain on an elastic event, their agents' FAULTED reports of
 * the draining generation are the expected exits (a rank leaving a collective early makes the others
 * fail), not faults. Pod-level faults (node, pod, unreachable agent) always count.
 */
export const faultsToAct = (job: JobRecord, faults: Fault[]): Fault[] => {
  if (job.elastic?.scaling?.stage !== 'Draining') return faults;
  return faults.filter((f) => f.level !== 'process' || f.manual);
};

const openRemediation = (job: JobRecord) =>
  job.remediations.find((r) => r.generation === job.generation && r.recoveredAt === undefined);

/** Renumbers the rank slots 0..n−1 in layout order (replica spec order, then index). */
const renumberRanks = (job: JobRecord): void => {
  const order = new Map(job.spec.replicaSpecs.map((r, i) => [r.name, i]));
  const ranked = job.pods
    .filter((s) => s.groupRank !== null)
    .sort((a, b) => (order.get(a.replica) ?? 0) - (order.get(b.replica) ?? 0) || a.index - b.index);
  ranked.forEach((s, i) => {
    if (s.groupRank !== i) writableSlot(job, s).groupRank = i;
  });
};

/**
 * Changes the rank layout to `size`: removes rank slots (those whose pod is not running first, then the
 * highest index of the last spec) or adds slots at the lowest free rank indices. Added slots hold a rank
 * (`joining` false) or wait as joining slots (no rank yet). Returns the pods to delete.
 */
const relayout = (job: JobRecord, size: number, join: boolean): string[] => {
  const counts = replicaCounts(job.spec, size);
  const deleted: string[] = [];
  job.spec.replicaSpecs.forEach((r, i) => {
    const want = counts[i]!;
    const mine = job.pods.filter((s) => s.replica === r.name && !s.spare && s.index < specCap(r));
    const held = mine.filter((s) => s.groupRank !== null || s.joining);
    if (held.length > want) {
      const drop = [...held]
        .sort(
          (a, b) => Number(a.podPhase === 'Running') - Number(b.podPhase === 'Running') || b.index - a.index,
        )
        .slice(0, held.length - want);
      const retired = { ...job.elastic!.retiredPods };
      for (const s of drop) {
        if (s.podPhase !== 'Deleting') deleted.push(s.name);
        const key = `${s.replica}/${s.index}`;
        retired[key] = Math.max(retired[key] ?? -1, s.podGeneration);
      }
      const dropped = new Set(drop);
      job.pods = job.pods.filter((p) => !dropped.has(p));
      job.elastic!.retiredPods = retired;
    } else if (held.length < want) {
      const used = new Set(mine.map((s) => s.index));
      let index = 0;
      for (let k = held.length; k < want; k++) {
        while (used.has(index)) index++;
        used.add(index);
        // A pod name is never reused: the pod this index held last may still be terminating.
        const podGeneration = Math.max(
          job.generation,
          (job.elastic!.retiredPods?.[`${r.name}/${index}`] ?? -1) + 1,
        );
        const slot: PodSlot = {
          replica: r.name,
          index,
          name: podName(job.name, r.name, index, podGeneration),
          podGeneration,
          groupRank: join ? null : -1,
          spare: false,
          podPhase: 'Pending',
        };
        if (join) slot.joining = true;
        job.pods.push(slot);
      }
    }
  });
  if (!join) renumberRanks(job);
  return deleted;
};

/** Accumulates the time spent below the largest allowed size up to `now`, and restarts the clock. */
const accountBelowMax = (job: JobRecord, now: number, actions: Action[]): void => {
  const e = job.elastic!;
  const max = e.allowedSizes.at(-1)!;
  if (e.belowMaxSince !== undefined) {
    const ms = Math.max(0, now - e.belowMaxSince);
    if (ms > 0) {
      e.belowMaxMs = (e.belowMaxMs ?? 0) + ms;
      actions.push(counterAction(Metric.elasticSecondsBelowMax, {}, ms / 1000));
    }
    delete e.belowMaxSince;
  }
  if (e.currentReplicas < max) e.belowMaxSince = now;
};

/** Records the size now in force (`currentReplicas`) from the rank slots. */
const syncCurrent = (job: JobRecord, now: number, actions: Action[]): void => {
  const e = job.elastic!;
  const current = rankSlots(job).length;
  if (current !== e.currentReplicas) {
    e.currentReplicas = current;
    accountBelowMax(job, now, actions);
  }
};

/** Starts a scaling restart: every rank restarts at the new layout, at generation + 1 when any was started. */
const restartAtNewSize = (job: JobRecord, now: number): void => {
  if (isStarted(job)) {
    job.generation += 1;
    delete job.runningSince;
  }
  setPhase(job, 'Restarting', now);
};

const finishScaling = (job: JobRecord, now: number, actions: Action[], outcome: 'Completed' | 'Aborted') => {
  const e = job.elastic!;
  const s = e.scaling;
  if (!s) return;
  delete e.scaling;
  e.desiredReplicas = e.currentReplicas;
  const ms = Math.max(0, now - s.startedAt);
  const record = { ...s, endedAt: now, outcome };
  e.events = [...e.events, record].slice(-MAX_SCALING_EVENTS);
  const reason =
    outcome === 'Completed'
      ? s.direction === 'up'
        ? Reason.ScaledUp
        : Reason.ScaledDown
      : Reason.ScalingAborted;
  const message =
    outcome === 'Completed'
      ? `Scaled ${s.direction} from ${s.from} to ${s.to} replicas (${s.reason}) in ${ms} milliseconds.`
      : `Scaling ${s.direction} from ${s.from} to ${s.to} replicas (${s.reason}) aborted after ${ms} milliseconds`;
  actions.push(
    eventAction(job, now, reason, message, {
      ...(outcome === 'Aborted' ? { type: 'Warning' as const } : {}),
      details: { direction: s.direction, from: s.from, to: s.to, reason: s.reason, milliseconds: ms },
    }),
    counterAction(Metric.elasticScalingEvents, { direction: s.direction, outcome }),
  );
  // No condition of its own: a job's status is its last True condition (HyperPod's CLI), which must stay
  // Running after a scaling; the scaling lives in `elastic.events`, the timeline and the metrics.
  if (outcome === 'Completed')
    actions.push(latencyAction(Metric.elasticScalingSeconds, { direction: s.direction }, ms));
};

const beginScaling = (
  job: JobRecord,
  now: number,
  actions: Action[],
  scaling: Omit<ElasticScaling, 'startedAt' | 'generation'>,
): void => {
  const e = job.elastic!;
  e.scaling = { ...scaling, startedAt: now, generation: job.generation };
  e.desiredReplicas = scaling.to;
  e.scalingCount += 1;
  delete e.growFitsSince;
  delete e.shrinkWaitSince;
  actions.push(
    eventAction(
      job,
      now,
      Reason.Scaling,
      `Scaling ${scaling.direction} from ${scaling.from} to ${scaling.to} replicas (${scaling.reason})`,
      {
        details: { direction: scaling.direction, from: scaling.from, to: scaling.to, reason: scaling.reason },
      },
    ),
  );
};

/** Joining slots that never got a rank are dropped (their pods deleted); promoted ones keep their rank. */
const dropJoining = (job: JobRecord, actions: Action[]): void => {
  const gone = job.pods.filter((s) => s.joining && s.groupRank === null);
  if (gone.length > 0) {
    const dropped = new Set(gone);
    job.pods = job.pods.filter((s) => !dropped.has(s));
  }
  for (const s of job.pods) if (s.joining) delete writableSlot(job, s).joining;
  if (gone.length === 0) return;
  const names = gone.filter((s) => s.podPhase !== 'Deleting').map((s) => s.name);
  if (names.length > 0) actions.push({ type: 'DeletePods', pods: names });
};

/**
 * The elastic step of decide, after the ladder and before the lifecycle: sizes the job, runs a scaling
 * through its stages, and keeps `currentReplicas`/`desiredReplicas` true. A no-op for other jobs and for
 * terminal or suspended ones.
 */
export const deriveElastic = (job: JobRecord, now: number, actions: Action[]): void => {
  const e = job.elastic;
  if (!e || isTerminal(job.phase) || job.phase === 'Suspended') return;
  const current = rankSlots(job).length;
  const fit = fittingSize(job);
  const scaling = e.scaling;

  // A ladder restart (a fault) overtook the scaling: give it up; sizes are looked at again from scratch.
  if (scaling && scaling.generation !== job.generation) {
    dropJoining(job, actions);
    finishScaling(job, now, actions, 'Aborted');
    syncCurrent(job, now, actions);
    return;
  }

  if (scaling?.stage === 'CreatingPods') {
    const joining = job.pods.filter((s) => s.joining);
    // The lifecycle polls idle agents only outside Running: ask the joining ones whether they are READY.
    const unknown = joining.filter(
      (s) => s.podPhase === 'Running' && s.ip !== undefined && s.agent === undefined,
    );
    if (unknown.length > 0) actions.push({ type: 'PollAgents', pods: unknown.map((s) => s.name) });
    if (fit === undefined || fit < scaling.to) {
      dropJoining(job, actions);
      finishScaling(job, now, actions, 'Aborted');
    } else if (joining.length > 0 && joining.every(isReadyToStart)) {
      scaling.stage = 'Draining';
      scaling.drainSince = now;
      const pods = rankSlots(job).map((s) => s.name);
      actions.push({
        type: 'SignalElasticEvent',
        pods,
        generation: job.generation,
        targetReplicas: scaling.to,
        reason: scaling.reason,
      });
    }
    return;
  }

  if (scaling?.stage === 'Draining') {
    const graceMs = (job.spec.elasticPolicy?.gracefulShutdownTimeoutInSeconds ?? 0) * 1000;
    const drained = rankSlots(job).every(
      (s) => !(s.agent?.state === 'RUNNING' && s.agent.generation === job.generation),
    );
    if (drained || now >= (scaling.drainSince ?? now) + graceMs) {
      for (const s of job.pods) {
        if (s.joining) {
          const w = writableSlot(job, s);
          delete w.joining;
          w.groupRank = -1;
        }
      }
      renumberRanks(job);
      restartAtNewSize(job, now);
      scaling.stage = 'Restarting';
      scaling.generation = job.generation;
      syncCurrent(job, now, actions);
    }
    return;
  }

  if (scaling?.stage === 'Restarting') {
    settleElastic(job, now, actions);
    return;
  }

  // No scaling in flight.
  syncCurrent(job, now, actions);
  const recovering = openRemediation(job) !== undefined;
  if (!isStarted(job) && !recovering && fit !== undefined && fit !== current) {
    // First placement (or a resume): nothing runs yet, so the largest fitting size applies at once.
    const deleted = relayout(job, fit, false);
    if (deleted.length > 0) actions.push({ type: 'DeletePods', pods: deleted });
    e.desiredReplicas = fit;
    syncCurrent(job, now, actions);
    actions.push(
      eventAction(
        job,
        now,
        Reason.Scaling,
        `Placed at ${fit} replicas (capacity ${e.capacity ?? 'unknown'})`,
        {
          details: { from: current, to: fit, reason: 'InitialPlacement' },
        },
      ),
    );
    return;
  }

  // Scale down: a fault left no room for the current size.
  if (job.phase !== 'Running' && fit !== undefined && fit < current) {
    const waitMs = (job.spec.elasticPolicy?.faultyScaleDownTimeoutInSeconds ?? 0) * 1000;
    e.shrinkWaitSince ??= now;
    e.desiredReplicas = fit;
    if (now >= e.shrinkWaitSince + waitMs) {
      const reason = openRemediation(job)?.reason ?? 'InsufficientCapacity';
      beginScaling(job, now, actions, {
        direction: 'down',
        from: current,
        to: fit,
        reason,
        stage: 'Restarting',
      });
      const deleted = relayout(job, fit, false);
      if (deleted.length > 0)
        actions.push({ type: 'DeletePods', pods: deleted, force: true, gracePeriodSeconds: 0 });
      restartAtNewSize(job, now);
      e.scaling!.generation = job.generation;
      syncCurrent(job, now, actions);
    }
    return;
  }
  delete e.shrinkWaitSince;

  // Scale up: a larger allowed size has kept fitting for scalingTimeoutInSeconds.
  if (job.phase === 'Running' && fit !== undefined && fit > current) {
    e.growFitsSince ??= now;
    e.desiredReplicas = fit;
    if (now >= growDueAt(job)!) {
      beginScaling(job, now, actions, {
        direction: 'up',
        from: current,
        to: fit,
        reason: 'CapacityAvailable',
        stage: 'CreatingPods',
      });
      relayout(job, fit, true);
    }
    return;
  }
  delete e.growFitsSince;
  e.desiredReplicas = e.currentReplicas;
};

/**
 * After the lifecycle: a scaling restart is complete once every rank runs at the new size (the lifecycle
 * moved the job to Running in this same decide).
 */
export const settleElastic = (job: JobRecord, now: number, actions: Action[]): void => {
  const s = job.elastic?.scaling;
  if (s?.stage === 'Restarting' && s.generation === job.generation && job.phase === 'Running')
    finishScaling(job, now, actions, 'Completed');
};

/** When a pending scale-up may start: the scaling timeout after it first fitted, and past the snooze. */
const growDueAt = (job: JobRecord): number | undefined => {
  const e = job.elastic;
  if (e?.growFitsSince === undefined) return undefined;
  const scalingMs = (job.spec.elasticPolicy?.scalingTimeoutInSeconds ?? 0) * 1000;
  const snoozeMs = (job.spec.runPolicy.restartPolicy?.scaleUpSnoozeTimeInSeconds ?? 0) * 1000;
  return Math.max(e.growFitsSince + scalingMs, (job.runningSince ?? 0) + snoozeMs);
};

/** The elastic instants the sweep must look at the job again: scale-down, scale-up, drain timeout. */
export const elasticNextCheckAt = (job: JobRecord): number[] => {
  const e = job.elastic;
  if (!e || isTerminal(job.phase) || job.phase === 'Suspended') return [];
  const out: number[] = [];
  const p = job.spec.elasticPolicy;
  if (e.shrinkWaitSince !== undefined)
    out.push(e.shrinkWaitSince + (p?.faultyScaleDownTimeoutInSeconds ?? 0) * 1000);
  const grow = growDueAt(job);
  if (grow !== undefined) out.push(grow);
  if (e.scaling?.stage === 'Draining' && e.scaling.drainSince !== undefined)
    out.push(e.scaling.drainSince + (p?.gracefulShutdownTimeoutInSeconds ?? 0) * 1000);
  return out;
};

/** The world size a status line shows: current ranks, and the target while scaling (`2→3`). */
export const worldSizeText = (job: Pick<JobRecord, 'elastic' | 'pods'>): string => {
  const ranks = job.pods.filter((s) => s.groupRank !== null).length;
  const e = job.elastic;
  if (!e) return String(ranks);
  return e.desiredReplicas !== e.currentReplicas
    ? `${e.currentReplicas}→${e.desiredReplicas}`
    : `${e.currentReplicas}`;
};

/** A slot that waits to join the job at the next scaling restart (no rank yet). */
export const isJoining = (slot: PodSlot): boolean => slot.joining === true;
