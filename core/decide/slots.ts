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

/**
 * The pods whose agents are asked for `/status` when a fault is claimed: every rank slot's pod that is
 * Running. A peer's crash report may arrive before the report of the rank that failed first; asking all
 * ranks lets decide compare the agents' FAULTED transition times (`withoutCollateral`, decide/fault.ts).
 */
export const rankPodsToAsk = (job: Pick<JobRecord, 'pods'>): string[] =>
  job.pods.filter((s) => s.groupRank !== null && s.podPhase === 'Running').map((s) => s.name);
