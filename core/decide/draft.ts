/**
 * The private draft `decide` folds into, made so one observation costs O(changed slots), not O(pods):
 *
 * - copy on write for pod slots: the draft gets its own `pods` array holding the input's slot objects;
 *   a slot is copied (shallowly: its nested objects are only ever replaced, never edited) the first time
 *   decide writes to it (`writableSlot`). The rule engine's state (`ruleState`, megabytes of per-stream
 *   entries in a big job) is shared too: decide only ever replaces it whole (a `RuleFindings` or
 *   `RuleStateAdvanced` observation, a restart, a terminal phase), never edits it. Everything else of the
 *   record (spec, conditions, counters, remediations…) is deep-copied as before: it is small next to the
 *   slots and edited in place in many places. An unchanged slot or rule state stays the input's object,
 *   so comparing draft and input (`sameJson`) skips it at once.
 * - a pod name → position index of the draft's slots (`slotPosition`), so finding the slot of a pod is
 *   O(1), not a scan of every slot per observation.
 *
 * Invariants: the input record is never written to (every in-place slot write in core/decide goes
 * through `writableSlot`; a record that is not a live draft is written in place, as callers that own
 * their record expect); the index is right whenever it answers: it is rebuilt when `pods` is replaced
 * or changes length, and `replaceSlot` keeps it right for a slot renewed in place. The record decide
 * returns may share unchanged slot objects and the rule state with its input: treat both as immutable.
 */
import type { JobRecord, PodSlot } from '../job.ts';

interface DraftState {
  /** Slots this draft copied (its own to write). */
  owned: WeakSet<PodSlot>;
  /** Lookups answered by a scan so far: the index is built only once they pass `SCANS_BEFORE_INDEX`. */
  scans: number;
  /** The `pods` array the index describes, its length then, and name → position. */
  indexed?: PodSlot[];
  length?: number;
  positions?: Map<string, number>;
}

const drafts = new WeakMap<object, DraftState>();

/** What the slot helpers need of a record. */
type Slots = Pick<JobRecord, 'pods'>;

/**
 * A private draft of `job` for one decide: its own `pods` array over the input's slots, and a deep copy of
 * everything else (same key order). Pair with `releaseDraft` before the draft leaves decide.
 */
export const draftOf = (job: JobRecord): JobRecord => {
  const draft = structuredClone({ ...job, pods: [] as PodSlot[], ruleState: undefined as unknown });
  draft.pods = job.pods.slice();
  draft.ruleState = job.ruleState;
  drafts.set(draft, { owned: new WeakSet(), scans: 0 });
  return draft;
};

/** Ends copy on write for `draft`: from now on it is a plain record its holder may write in place. */
export const releaseDraft = (draft: JobRecord): void => {
  drafts.delete(draft);
};

const positionsOf = (job: Slots, state: DraftState): Map<string, number> => {
  if (state.positions && state.indexed === job.pods && state.length === job.pods.length)
    return state.positions;
  const positions = new Map<string, number>();
  for (const [i, s] of job.pods.entries()) positions.set(s.name, i);
  state.indexed = job.pods;
  state.length = job.pods.length;
  state.positions = positions;
  return positions;
};

/**
 * Lookups of a draft answered by scanning before the index is built. Building the index costs a few
 * scans, so a batch of one or two observations (a heartbeat) scans, and a batch of many (a pod list, a log
 * batch with every rank's heartbeat) pays for one index, then O(1) per lookup.
 */
export const SCANS_BEFORE_INDEX = 4;

/**
 * The position of the slot holding pod `name` in `job.pods`, or −1: a scan, or in a live draft past
 * `SCANS_BEFORE_INDEX` lookups an O(1) index lookup.
 */
export const slotPosition = (job: Slots, name: string): number => {
  const state = drafts.get(job);
  if (!state || (state.positions === undefined && state.scans++ < SCANS_BEFORE_INDEX))
    return job.pods.findIndex((s) => s.name === name);
  const i = positionsOf(job, state).get(name);
  return i !== undefined && job.pods[i]?.name === name ? i : -1;
};

/**
 * Puts `slot` at position `i` of `job.pods` (a renewed or promoted slot, whose pod name may differ from
 * the one it replaces), keeping the draft's index right.
 */
export const replaceSlot = (job: Slots, i: number, slot: PodSlot): void => {
  const old = job.pods[i];
  if (!old) throw new Error(`replaceSlot: no slot at position ${i} of ${job.pods.length}`);
  job.pods[i] = slot;
  const state = drafts.get(job);
  if (state?.positions && state.indexed === job.pods && state.length === job.pods.length) {
    if (state.positions.get(old.name) === i) state.positions.delete(old.name);
    state.positions.set(slot.name, i);
  }
  state?.owned.add(slot);
};

/**
 * `slot` (which `job.pods` holds) ready to be written: in a live draft, the draft's own copy, put in
 * place of the input's slot on first write; otherwise `slot` itself. Write through the returned slot,
 * never through a reference taken before the call.
 */
export const writableSlot = (job: Slots, slot: PodSlot): PodSlot => {
  const state = drafts.get(job);
  if (!state || state.owned.has(slot)) return slot;
  // With the index built, a lookup; before, a scan of the array for the object (no slot is read).
  let i = state.positions === undefined ? -1 : slotPosition(job, slot.name);
  if (job.pods[i] !== slot) i = job.pods.indexOf(slot);
  if (i < 0) throw new Error(`writableSlot: pod ${slot.name} holds no slot of the record`);
  const copy = { ...slot };
  job.pods[i] = copy;
  state.owned.add(copy);
  return copy;
};
