/**
 * Slot layout: which pod positions a job has and which group rank each holds. Ranks are numbered over the
 * replica specs in order (spec 0's indices first); indices at or above `replicas` are spares.
 */
import type { JobRecord, PodSlot } from '../job.ts';
import type { JobSpec } from '../spec/types.ts';
import { replicaCounts, specCap } from './elastic.ts';
import { podName } from './naming.ts';

/**
 * Every slot of a spec at one generation, in the canonical rank layout (no promotions). Used at creation,
 * on a full job restart and on resume, which all start from a clean layout. `size` (elastic jobs) is the
 * world size laid out over the replica specs (`replicaCounts`); spares then sit at indices from each
 * spec's cap, so their names do not depend on the size. Without it every spec has its `replicas`.
 */
export const freshSlots = (
  spec: JobSpec,
  generation: number,
  avoidNodes: string[] = [],
  size?: number,
): PodSlot[] => {
  const slots: PodSlot[] = [];
  let rank = 0;
  const counts = size === undefined ? undefined : replicaCounts(spec, size);
  spec.replicaSpecs.forEach((replica, i) => {
    const ranks = counts?.[i] ?? replica.replicas;
    const firstSpare = counts ? specCap(replica) : replica.replicas;
    const indices = [
      ...Array.from({ length: ranks }, (_, k) => k),
      ...Array.from({ length: replica.spares }, (_, k) => firstSpare + k),
    ];
    for (const index of indices) {
      const spare = index >= ranks;
      const slot: PodSlot = {
        replica: replica.name,
        index,
        name: podName(spec.name, replica.name, index, generation),
        podGeneration: generation,
        groupRank: spare ? null : rank++,
        spare,
        podPhase: 'Pending',
      };
      if (avoidNodes.length > 0) slot.avoidNodes = [...avoidNodes];
      slots.push(slot);
    }
  });
  return slots;
};

/**
 * Gives a slot a brand-new pod (name from `podGeneration`): everything observed about the old pod is
 * dropped, so late news about the old pod no longer matches the slot.
 */
export const renewSlot = (
  job: JobRecord,
  slot: PodSlot,
  podGeneration: number,
  avoidNodes: string[],
): PodSlot => {
  const renewed: PodSlot = {
    replica: slot.replica,
    index: slot.index,
    name: podName(job.name, slot.replica, slot.index, podGeneration),
    podGeneration,
    groupRank: slot.groupRank,
    spare: slot.spare,
    podPhase: 'Pending',
  };
  const avoid = [...new Set(avoidNodes)].sort();
  if (avoid.length > 0) renewed.avoidNodes = avoid;
  return renewed;
};

/** True once the cluster or the agent has shown that this slot's pod exists. */
export const isPodSeen = (slot: PodSlot): boolean =>
  slot.podObservedAt !== undefined || slot.agent !== undefined || slot.lastSeenAt !== undefined;

/** A rank slot that can be started: pod Running with an IP and its agent idle. */
export const isReadyToStart = (slot: PodSlot): boolean =>
  slot.podPhase === 'Running' && slot.ip !== undefined && slot.agent?.state === 'READY';

/** At most this many rank agents are asked for `/status` on one fault claim (`rankPodsToAsk`). */
export const AGENTS_ASKED_PER_CLAIM = 64;

/**
 * The pods whose agents are asked for `/status` when a fault is claimed by `claimants` (pods whose
 * agent record claims a crash), so that decide can compare the agents' FAULTED transition times and blame
 * the earliest (`withoutCollateral`, decide/fault.ts): a peer's crash report may arrive before the report
 * of the rank that failed first.
 *
 * Every Running rank pod when there are at most `limit`. A bigger job cannot ask every rank on every
 * claim (16,384 `pods/proxy` calls per claim, and a crash makes thousands of claims), so at most `limit`
 * pods, chosen where the rank that failed first is to be found:
 * 1. the claimants that hold a rank;
 * 2. suspects the record already shows (at most half of `limit`): a rank whose agent is FAULTED at the
 *    current generation or was unreachable on its last poll;
 * 3. the claimants' neighbours in group-rank order, nearest first, alternating below and above and
 *    wrapping round (r−1, r+1, r−2, r+2, …; several claimants take turns): collective communication
 *    (NCCL rings) talks to neighbours, so a rank that loses its peer mostly lost a near neighbour, and
 *    its report is among the first of the collateral ones.
 * A rank that failed first far from every claimant and unknown to the record is missed by a big job's
 * claim; its own claim, arriving later, finds the job already restarting (one restart either way, only
 * the blame differs).
 *
 * Invariants: every pod returned holds a rank and is Running; at most max(`limit`, claimants holding a
 * rank) pods; deterministic, in the order above. Throws a RangeError for a `limit` that is not a positive
 * integer.
 */
export const rankPodsToAsk = (
  job: Pick<JobRecord, 'pods' | 'generation'>,
  claimants: readonly string[],
  limit: number = AGENTS_ASKED_PER_CLAIM,
): string[] => {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`rankPodsToAsk: limit must be a positive integer, got ${limit}`);
  const ranks = job.pods.filter((s) => s.groupRank !== null && s.podPhase === 'Running');
  if (ranks.length <= limit) return ranks.map((s) => s.name);
  const picked = new Set<string>();
  const byName = new Map(ranks.map((s) => [s.name, s]));
  const claimed = claimants.flatMap((name) => {
    const slot = byName.get(name);
    return slot ? [slot] : [];
  });
  for (const slot of claimed) picked.add(slot.name);
  const suspectsUpTo = picked.size + Math.floor(limit / 2);
  for (const s of ranks) {
    if (picked.size >= Math.min(limit, suspectsUpTo)) break;
    const faulted = s.agent?.state === 'FAULTED' && s.agent.generation === job.generation;
    if (faulted || s.unreachable !== undefined) picked.add(s.name);
  }
  if (claimed.length === 0) return [...picked];
  const byRank = [...ranks].sort((a, b) => (a.groupRank as number) - (b.groupRank as number));
  const position = new Map(byRank.map((s, i) => [s.name, i]));
  const n = byRank.length;
  for (let d = 1; d <= n / 2 && picked.size < limit; d++) {
    for (const slot of claimed) {
      const at = position.get(slot.name) as number;
      for (const i of [at - d, at + d]) {
        if (picked.size >= limit) break;
        picked.add((byRank[(i + n) % n] as PodSlot).name);
      }
    }
  }
  return [...picked];
};
