/**
 * How one job record is laid out over DynamoDB items (docs/store.md, docs/scale.md), as pure functions: a small
 * head item plus parts, so that a write costs what changed, not the whole job, and no item nears the 400 KB
 * limit whatever the job's size.
 *
 * ```
 *   JOB                 head: phase, generation, budgets, window, conditions, progress, … (+ version, layout)
 *   P#SPEC              the spec (changes only with PUT …/rules)
 *   P#HIST              remediations, node fault counts, elastic status, applied commands, restart times
 *   P#RULES             rule-engine state without its per-stream entries (the job-wide timers, the clock)
 *   P#S#<base>#<n>      pod slots [n·k, (n+1)·k) in record order (k fixed per base, ~1 KB a part)
 *   P#R#<base>#<n>      the rule engine's per-stream entries of the streams hashing to n (mod m)
 * ```
 *
 * A heartbeat changes the head and one slot part; a worker line the head, `RULES` and one stream part. `base`
 * names a generation of the slot and stream parts: a change too big for one transaction (a full restart of
 * thousands of pods) writes a complete new base and then switches the head to it (store.ts).
 *
 * Every part is stored as JSON text with `v`, the record version that last wrote it; parts are written in
 * the same transaction as the head that names their version, so a reader that sees a part newer than the
 * head it read knows a writer committed in between and reads again.
 */
import type { JobRecord, PodSlot } from '../../core/job.ts';

/** Which parts a record is split into: chosen when a base is written, fixed until the next base. */
export interface Layout {
  /** Names the generation of slot and stream parts (unique per rebase, so concurrent rebases never mix). */
  base: string;
  /** Slots per slot part. */
  k: number;
  /** Stream parts (the rule engine's per-stream entries are hashed over them). */
  m: number;
  /** Pod slots in the record (the slot parts are ⌈slots / k⌉). */
  slots: number;
}

export const HEAD_SK = 'JOB';
/** Every part's sort key starts with this (after `JOB`, before `P#~`: one Query reads head and parts). */
export const PART_PREFIX = 'P#';
export const PARTS_END = 'P#~';
export const SPEC_SK = 'P#SPEC';
export const HIST_SK = 'P#HIST';
export const RULES_SK = 'P#RULES';
export const slotSk = (base: string, n: number): string => `P#S#${base}#${String(n).padStart(6, '0')}`;

/** Slot part sort keys of recent bases, built once: a big job has thousands, and every write walks them. */
const slotSkCache = new Map<string, string[]>();
const SLOT_SK_CACHE_BASES = 64;

/** The sort keys of slot parts 0 … count−1 of `base` (the same string objects on every call). */
export const slotSks = (base: string, count: number): readonly string[] => {
  let sks = slotSkCache.get(base);
  if (!sks) {
    sks = [];
    slotSkCache.set(base, sks);
    if (slotSkCache.size > SLOT_SK_CACHE_BASES) slotSkCache.delete(slotSkCache.keys().next().value as string);
  }
  for (let n = sks.length; n < count; n++) sks.push(slotSk(base, n));
  return sks;
};
export const streamSk = (base: string, n: number): string => `P#R#${base}#${String(n).padStart(6, '0')}`;
/** The base a slot or stream part belongs to (undefined for the fixed parts). */
export const baseOfSk = (sk: string): string | undefined => {
  const m = /^P#[SR]#([^#]+)#\d+$/.exec(sk);
  return m ? m[1] : undefined;
};

/** Record fields kept in `P#HIST`: history and lists that grow with the job's life or size. */
export const HIST_FIELDS = [
  'remediations',
  'nodeFaults',
  'appliedCommands',
  'latestFaultyPodInstanceList',
  'restartTimes',
  'elastic',
] as const;

/** Target JSON size of a slot part: under 1 KB so a slot change costs one write unit. */
const SLOT_PART_TARGET_BYTES = 900;
/** Most slots in one part, whatever their size. */
const MAX_K = 64;

/** A fresh layout for a record: `k` from its slots' average size, one stream part per slot part. */
export const chooseLayout = (job: JobRecord, base: string): Layout => {
  const n = job.pods.length;
  let bytes = 0;
  for (const s of job.pods) bytes += JSON.stringify(s).length + 1;
  const avg = n > 0 ? bytes / n : 300;
  const k = Math.max(1, Math.min(MAX_K, Math.floor(SLOT_PART_TARGET_BYTES / avg)));
  const parts = Math.max(1, Math.ceil(n / k));
  return { base, k, m: parts, slots: n };
};

/** FNV-1a of a stream name: which stream part keeps its entries. */
export const streamPart = (stream: string, m: number): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < stream.length; i++) {
    h ^= stream.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % m;
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether the rule state has the engine's shape (`rules: {name: {streams: {…}}}`, rules/state.ts) so its
 * per-stream entries can be split off; anything else is kept whole in `P#RULES`.
 */
const hasStreams = (state: unknown): state is { rules: Record<string, Json & { streams: Json }> } =>
  isObject(state) &&
  isObject(state.rules) &&
  Object.values(state.rules).every((r) => isObject(r) && isObject(r.streams));

/** A record as head fields plus part texts by sort key. */
export interface SplitRecord {
  head: Json;
  /** Sort key → JSON text, for every part the layout gives the record. */
  parts: Map<string, string>;
}

/**
 * Splits a record over `layout` (whose `slots` must equal `job.pods.length`). `unchanged` may say that a
 * slot part is what the store already holds (its snapshot: the same frozen slot objects it read); such a
 * part is left out of `parts`, which then holds every other part (a big job's write visits thousands of
 * slot parts and serialises the few that changed).
 */
export const splitRecord = (
  job: JobRecord,
  layout: Layout,
  unchanged?: (sk: string, slots: readonly PodSlot[], from: number) => boolean,
): SplitRecord => {
  const head: Json = {};
  const hist: Json = {};
  const histFields = new Set<string>(HIST_FIELDS);
  for (const [key, value] of Object.entries(job)) {
    if (key === 'pods' || key === 'spec' || key === 'ruleState' || value === undefined) continue;
    if (histFields.has(key)) hist[key] = value;
    else head[key] = value;
  }
  const parts = new Map<string, string>();
  parts.set(SPEC_SK, JSON.stringify({ spec: job.spec }));
  parts.set(HIST_SK, JSON.stringify(hist));
  const slotParts = Math.ceil(job.pods.length / layout.k);
  const sks = slotSks(layout.base, slotParts);
  for (let n = 0; n < slotParts; n++) {
    const sk = sks[n] as string;
    const from = n * layout.k;
    if (unchanged?.(sk, job.pods, from)) continue;
    parts.set(sk, JSON.stringify(job.pods.slice(from, from + layout.k)));
  }
  const state = job.ruleState;
  if (hasStreams(state)) {
    // only the stream parts that hold entries (a healthy job's rules keep none: rules/engine.ts)
    const buckets = new Map<number, Record<string, Json>>();
    const rules: Json = {};
    for (const [rule, slot] of Object.entries(state.rules)) {
      rules[rule] = { ...slot, streams: {} };
      for (const [stream, entry] of Object.entries(slot.streams)) {
        const n = streamPart(stream, layout.m);
        let bucket = buckets.get(n);
        if (!bucket) {
          bucket = {};
          buckets.set(n, bucket);
        }
        bucket[rule] ??= {};
        bucket[rule][stream] = entry;
      }
    }
    parts.set(RULES_SK, JSON.stringify({ ruleState: { ...state, rules }, split: true }));
    for (const n of [...buckets.keys()].sort((a, b) => a - b))
      parts.set(streamSk(layout.base, n), JSON.stringify(buckets.get(n)));
  } else {
    parts.set(RULES_SK, JSON.stringify({ ruleState: state }));
  }
  return { head, parts };
};

/** Parsed part values by sort key (what `assembleRecord` reads). */
export type PartValues = ReadonlyMap<string, unknown>;

/**
 * The record from its head fields and parts. Missing slot parts are an error of the caller (it checks that
 * the layout's parts are all present before assembling); missing stream parts are empty buckets.
 */
export const assembleRecord = (head: Json, layout: Layout, parts: PartValues): JobRecord => {
  const record: Json = { ...head };
  const spec = parts.get(SPEC_SK) as Json | undefined;
  record.spec = spec?.spec;
  Object.assign(record, (parts.get(HIST_SK) as Json | undefined) ?? {});
  const pods: PodSlot[] = [];
  const slotParts = Math.ceil(layout.slots / layout.k);
  const sks = slotSks(layout.base, slotParts);
  for (let n = 0; n < slotParts; n++) {
    const slots = parts.get(sks[n] as string) as PodSlot[];
    for (const s of slots) pods.push(s);
  }
  record.pods = pods;
  const rules = parts.get(RULES_SK) as { ruleState?: unknown; split?: boolean } | undefined;
  if (rules?.split && hasStreams(rules.ruleState)) {
    const merged: Json = {};
    for (const [rule, slot] of Object.entries(rules.ruleState.rules)) merged[rule] = { ...slot, streams: {} };
    for (let n = 0; n < layout.m; n++) {
      const bucket = parts.get(streamSk(layout.base, n)) as Record<string, Json> | undefined;
      if (!bucket) continue;
      for (const [rule, streams] of Object.entries(bucket)) {
        const target = merged[rule] as { streams: Json } | undefined;
        if (target) Object.assign(target.streams, streams);
      }
    }
    record.ruleState = { ...rules.ruleState, rules: merged };
  } else if (rules && 'ruleState' in rules) {
    record.ruleState = rules.ruleState;
  }
  return record as unknown as JobRecord;
};

/** The sort keys of every part a layout's record has (stream parts only where present). */
export const requiredSks = (layout: Layout): string[] => [
  SPEC_SK,
  HIST_SK,
  RULES_SK,
  ...slotSks(layout.base, Math.ceil(layout.slots / layout.k)),
];
