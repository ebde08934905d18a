/**
 * Keeps a job record under the store's size guard by construction: `compactRecord` trims the record's
 * history, never its spec or its live state, until what the store keeps outside its per-slot and per-stream
 * items (`unshardedBytes`) fits `MAX_RECORD_BYTES`. `decide` applies it to
 * every record it changes, so no record decide produces is refused by the store for its size, and a cancel
 * (or any terminal transition) never fails for size.
 *
 * Why this is needed: `MAX_NEW_RECORD_BYTES` (a new record, a rules update) leaves growth headroom, but the
 * headroom is no upper bound: up to `MAX_REMEDIATIONS` remediations each list every pod, rank and node of a
 * job-level restart, and the rule engine's state, node fault counts, elastic scalings and applied command
 * ids all grow. A big job with many restarts outgrows the headroom.
 *
 * The order (each step only while the record is still over the limit; the timeline keeps the full history):
 *   1. a finished job's rule-engine state (it evaluates no more rules);
 *   2. each remediation's `pods`/`ranks`/`nodes` lists, and `latestFaultyPodInstanceList`'s lists, cut to
 *      their first `LISTED_PER_REMEDIATION` entries; a cut remediation keeps the full counts in `counts`;
 *   3. the oldest remediations, one by one (the open remediation of the current generation stays: its
 *      recovery is still to be stamped);
 *   4. the oldest elastic scaling events;
 *   5. node fault counts of the least faulty nodes (fewest faults first, then by name): repeat offenders,
 *      the ones restarts avoid, stay longest;
 *   6. applied command ids beyond the newest `APPLIED_COMMANDS_MIN` (a redelivery older than those would
 *      be applied again: replays come within minutes, and a compacted job has had many commands since);
 *   7. a running job's rule-engine state (the rule engine starts afresh, as after a restart).
 * What stays is the spec, the pod slots, the conditions (one per type) and scalars: the spec and the first
 * slots fit `MAX_NEW_RECORD_BYTES` at submission, so that part fits the guard with the headroom to spare.
 *
 * Invariants: pure and deterministic; a record that fits is returned as the same object; otherwise a
 * compacted copy (the input is not mutated) that fits unless its spec, slots and conditions alone do not.
 */
import type { JobRecord, Remediation } from '../job.ts';
import { isTerminal } from '../job.ts';

/** The store refuses records whose JSON is over this (DynamoDB's item limit is 400 KB). */
export const MAX_RECORD_BYTES = 350 * 1024;
/**
 * Room a record keeps for what it gains after it is first written: conditions (one per type), per-slot
 * agent state, and what `compactRecord` trims when it must. A new record (submit, name reuse, rules update)
 * must fit `MAX_NEW_RECORD_BYTES`.
 */
export const RECORD_GROWTH_HEADROOM_BYTES = 96 * 1024;
/** The largest first record of a job: the guard minus the growth headroom. */
export const MAX_NEW_RECORD_BYTES = MAX_RECORD_BYTES - RECORD_GROWTH_HEADROOM_BYTES;

/** Pods, ranks and nodes a remediation keeps listed once compacted (the counts stay exact). */
export const LISTED_PER_REMEDIATION = 16;
/** Applied command ids kept when even they must go (the newest). */
export const APPLIED_COMMANDS_MIN = 8;

const encoder = new TextEncoder();

/** UTF-8 bytes of a value's JSON: what the store writes and measures. */
export const recordBytes = (value: unknown): number => encoder.encode(JSON.stringify(value) ?? '').length;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The rule engine's state without its per-stream entries (`rules.<name>.streams`), when it has that shape;
 * otherwise the state as it is.
 */
const withoutStreams = (state: unknown): unknown => {
  if (!isObject(state) || !isObject(state.rules)) return state;
  const rules: Json = {};
  for (const [name, slot] of Object.entries(state.rules)) {
    if (!isObject(slot) || !isObject(slot.streams)) return state;
    rules[name] = { ...slot, streams: {} };
  }
  return { ...state, rules };
};

/**
 * The bytes of what the store keeps outside its small per-slot and per-stream items: the record without its
 * pod slots and without the rule engine's per-stream entries. The store (adapters/dynamo/layout.ts) spreads
 * exactly those two over items of about 1 KB each, so they never near the item limit whatever the job's
 * size; everything else lives in a few items, none bigger than this sum.
 */
export const unshardedBytes = (job: JobRecord): number =>
  recordBytes({ ...job, pods: [], ruleState: withoutStreams(job.ruleState) });

const cutLists = (r: Remediation): Remediation => {
  const over =
    r.pods.length > LISTED_PER_REMEDIATION ||
    r.ranks.length > LISTED_PER_REMEDIATION ||
    r.nodes.length > LISTED_PER_REMEDIATION;
  if (!over) return r;
  return {
    ...r,
    counts: r.counts ?? { pods: r.pods.length, ranks: r.ranks.length, nodes: r.nodes.length },
    pods: r.pods.slice(0, LISTED_PER_REMEDIATION),
    ranks: r.ranks.slice(0, LISTED_PER_REMEDIATION),
    nodes: r.nodes.slice(0, LISTED_PER_REMEDIATION),
  };
};

/**
 * `job` when its `unshardedBytes` fit `limitBytes`; else a copy trimmed in the documented order (module comment)
 * until it fits, or as far as it goes.
 */
export const compactRecord = (job: JobRecord, limitBytes: number = MAX_RECORD_BYTES): JobRecord => {
  let size = unshardedBytes(job);
  if (size <= limitBytes) return job;
  const out: JobRecord = { ...job };
  const fits = (): boolean => {
    size = unshardedBytes(out);
    return size <= limitBytes;
  };

  // 1. A finished job evaluates no rules.
  if (isTerminal(out.phase) && out.ruleState !== undefined) {
    out.ruleState = undefined;
    if (fits()) return out;
  }

  // 2. Long pod/rank/node lists become their first entries plus counts.
  out.remediations = out.remediations.map(cutLists);
  if (out.latestFaultyPodInstanceList) {
    const l = out.latestFaultyPodInstanceList;
    out.latestFaultyPodInstanceList = {
      ...l,
      faultyInstanceIdList: l.faultyInstanceIdList.slice(0, LISTED_PER_REMEDIATION),
      faultyPodList: l.faultyPodList.slice(0, LISTED_PER_REMEDIATION),
      faultyRankList: l.faultyRankList.slice(0, LISTED_PER_REMEDIATION),
    };
  }
  if (fits()) return out;

  // 3. The oldest remediations, keeping the open one of the current generation.
  const isOpen = (r: Remediation) => r.generation === out.generation && r.recoveredAt === undefined;
  const kept = [...out.remediations];
  let excess = size - limitBytes;
  while (excess > 0) {
    const i = kept.findIndex((r) => !isOpen(r));
    if (i < 0) break;
    // Removing an entry saves at least its JSON (and a comma unless it was the only one).
    excess -= recordBytes(kept[i]);
    kept.splice(i, 1);
  }
  out.remediations = kept;
  if (fits()) return out;

  // 4. The oldest elastic scaling events.
  if (out.elastic && out.elastic.events.length > 0) {
    const events = [...out.elastic.events];
    excess = size - limitBytes;
    while (excess > 0 && events.length > 0) excess -= recordBytes(events.shift());
    out.elastic = { ...out.elastic, events };
    if (fits()) return out;
  }

  // 5. Node fault counts, least faulty nodes first.
  const nodes = Object.entries(out.nodeFaults).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  excess = size - limitBytes;
  while (excess > 0 && nodes.length > 0) {
    const [node, count] = nodes.shift()!;
    excess -= recordBytes(node) + String(count).length + 1;
  }
  out.nodeFaults = Object.fromEntries(nodes.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  if (fits()) return out;

  // 6. Applied command ids beyond the newest few.
  if (out.appliedCommands && out.appliedCommands.length > APPLIED_COMMANDS_MIN) {
    out.appliedCommands = out.appliedCommands.slice(-APPLIED_COMMANDS_MIN);
    if (fits()) return out;
  }

  // 7. A running job's rule-engine state: the rule engine starts afresh.
  if (out.ruleState !== undefined) {
    out.ruleState = undefined;
    fits();
  }
  return out;
};
