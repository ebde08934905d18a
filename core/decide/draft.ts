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
 *   O(1), not a scan of every slot per observation. A released draft leaves its index to the record it
 *   became (`indexes`, by `pods` array): the next decide on that record starts from it instead of
 *   building one again (16,384 slots take milliseconds to index, the logs Lambda decides several times
 *   per invocation). Such an inherited index is shared (copied before its first write) and checked: its
 *   first miss rebuilds it, in case the record's holder moved slots since.
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
  /** `positions` is an earlier decide's (`indexes`): copied before this draft writes it. */
  shared?: boolean;
  /** `positions` was not built from this draft's slots: rebuilt at its first miss. */
  unchecked?: boolean;
}

const drafts = new WeakMap<object, DraftState>();

/** The index a released draft left for the `pods` array it ended with (never written again). */
const indexes = new WeakMap<PodSlot[], Map<string, number>>();

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
  const state: DraftState = { owned: new WeakSet(), scans: 0 };
  const inherited = indexes.get(job.pods);
  if (inherited?.size === draft.pods.length) {
    state.indexed = draft.pods;
    state.length = draft.pods.length;
    state.positions = inherited;
    state.shared = true;
    state.unchecked = true;
  }
  drafts.set(draft, state);
  return draft;
};

/**
 * Ends copy on write for `draft`: from now on it is a plain record its holder may write in place. Its
 * index, if it has a current one, is left for the next decide on the record.
 */
export const releaseDraft = (draft: JobRecord): void => {
  const state = drafts.get(draft);
  drafts.delete(draft);
  if (state?.positions && state.indexed === draft.pods && state.length === draft.pods.length)
    indexes.set(draft.pods, state.positions);
};

const positionsOf = (job: Slots, state: DraftState): Map<string, number> => {
  if (state.positions && state.indexed === job.pods && state.length === job.pods.length)
    return state.positions;
  const positions = new Map<string, number>();
  const pods = job.pods;
  for (let i = 0; i < pods.length; i++) positions.set((pods[i] as PodSlot).name, i);
  state.indexed = pods;
  state.length = pods.length;
  state.positions = positions;
  state.shared = false;
  state.unchecked = false;
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
  if (i !== undefined && job.pods[i]?.name === name) return i;
  if (!state.unchecked) return -1;
  // An inherited index that misses may be out of date: the answer comes from a fresh one.
  state.positions = undefined;
  return slotPosition(job, name);
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
    if (state.shared) {
      state.positions = new Map(state.positions);
      state.shared = false;
    }
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
