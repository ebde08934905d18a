/**
 * Faults: what the fold hands the ladder. A fault is one symptom that calls for a restart or a pod
 * replacement, with where it was seen (pod, node, rank) and the cheapest level that can fix it; the ladder
 * decides the level actually used. One builder, `newFault`, so every symptom is described the same way.
 *
 * Invariants: `manual` is false unless a user asked for the restart; a fault built for a slot names the
 * slot's pod, its node when known and its group rank when it holds one (never a spare's); optional fields
 * are absent rather than undefined.
 */
import type { PodSlot, RestartLevel } from '../job.ts';

/** One symptom that calls for a restart (or a pod replacement). */
export interface Fault {
  reason: string;
  /**
   * The cheapest level that can fix it (the ladder may escalate). Never `inprocess`: whether a process
   * fault is restarted in place depends on the job (opt-in, healthy pods), so the ladder alone picks it.
   */
  level: Exclude<RestartLevel, 'inprocess'>;
  /** Asked for by a user (Restart command): not counted against budgets, windows or backoff. */
  manual: boolean;
  /** The pod (slot name at detection) it concerns, if any. */
  pod?: string;
  node?: string;
  instanceId?: string;
  rank?: number;
  /** Best knowledge of when it happened. */
  faultAt: number;
  message: string;
  /** Delete the faulty pod with grace 0 (its node is gone or unhealthy). */
  force?: boolean;
}

/** What a fault is built from: the required facts, and any located fact the slot does not supply. */
export type FaultInput = Pick<Fault, 'reason' | 'level' | 'faultAt' | 'message'> &
  Partial<Omit<Fault, 'reason' | 'level' | 'faultAt' | 'message'>>;

/**
 * Builds a fault. With `slot`, the pod, node and group rank default to the slot's; a field given in
 * `input` wins. Undefined fields are left out.
 */
export const newFault = (input: FaultInput, slot?: PodSlot): Fault => {
  const fault: Fault = {
    reason: input.reason,
    level: input.level,
    manual: input.manual ?? false,
    faultAt: input.faultAt,
    message: input.message,
  };
  const pod = input.pod ?? slot?.name;
  const node = input.node ?? slot?.nodeName;
  const rank = input.rank ?? slot?.groupRank ?? undefined;
  if (pod !== undefined) fault.pod = pod;
  if (node !== undefined) fault.node = node;
  if (input.instanceId !== undefined) fault.instanceId = input.instanceId;
  if (rank !== undefined) fault.rank = rank;
  if (input.force !== undefined) fault.force = input.force;
  return fault;
};

/**
 * Drops the collateral of a crash from a batch of faults (HyperPod's view: the faulty pod is the one whose
 * worker failed; peers whose workers then fail, typically with "Connection reset by peer", are collateral).
 * Among `faulted`, the faults built from agents' FAULTED reports (dated by the agent's transition), only
 * the earliest is kept, with any of the same time; the later ones of other pods are left out, so they name
 * no pod, rank or node in the remediation and count against no node. Faults of every other kind (a rule
 * hit, a node or pod fault, a command) are kept as given. The result keeps the order of `faults`.
 *
 *   t ─ rank 2 exits 3 ─► pod-1's agent FAULTED (t+2 ms) ── blamed
 *        └─ rank 0: Connection reset ─► pod-0's agent FAULTED (t+9 ms) ── collateral, whichever report
 *                                                                          the logs function read first
 */
export const withoutCollateral = (faults: Fault[], faulted: readonly Fault[]): Fault[] => {
  if (faulted.length < 2) return faults;
  const first = Math.min(...faulted.map((f) => f.faultAt));
  const blamed = new Set(faulted.filter((f) => f.faultAt === first).map((f) => f.pod));
  const collateral = new Set(faulted.filter((f) => f.faultAt > first && !blamed.has(f.pod)));
  return faults.filter((f) => !collateral.has(f));
};
