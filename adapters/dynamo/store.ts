/**
 * `DynamoJobStore`: the four store ports (`JobStore`, `Timeline`, `MetricStore`, `IdempotencyStore`) on one
 * DynamoDB table (key design in table.ts and docs/store.md). One class because they share the table, the
 * client and the error translation; consumers see only the ports they use (functions/shell/reconcile.ts `Deps`).
 *
 * Concurrency: every job write is ONE conditional item write on `version`. Two triggers on one job:
 *
 * ```
 *   lambda A: get v3 ── decide ── put v4 (if version = 3) ✓
 *   lambda B: get v3 ── decide ──────────── put v4 (if version = 3) ✗ ConcurrencyError → re-read v4, re-decide
 * ```
 *
 * Errors: conditional failures become `ConcurrencyError`/`AlreadyExistsError`; throttling, 5xx and network
 * failures (after the SDK's own retries) become `TransientError`; anything else `PermanentError`. Items are
 * parsed with zod on read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import pRetry from 'p-retry';
import { z } from 'zod';
import { MAX_NEW_RECORD_BYTES, MAX_RECORD_BYTES } from '../../core/decide/compact.ts';
import {
  AlreadyExistsError,
  ConcurrencyError,
  PermanentError,
  TransientError,
  ValidationError,
} from '../../core/errors.ts';
import {
  isTerminal,
  JOB_PHASES,
  type JobEvent,
  type JobPhase,
  type JobRecord,
  type PodSlot,
} from '../../core/job.ts';
import type {
  Clock,
  CounterIncrement,
  CounterTotal,
  IdempotencyStore,
  IdempotencyValue,
  JobRef,
  JobStore,
  MetricStore,
  Timeline,
} from '../../core/ports.ts';
import { translateAwsError } from '../aws/errors.ts';
import { type IndexKeys, indexWriteUnits, transactWriteUnits } from './capacity.ts';
import {
  assembleRecord,
  baseOfSk,
  chooseLayout,
  HEAD_SK,
  HIST_SK,
  type Layout,
  PARTS_END,
  RULES_SK,
  requiredSks,
  SPEC_SK,
  type SplitRecord,
  splitRecord,
  streamPart,
} from './layout.ts';
import {
  formatIssues,
  idempotencyItemSchema,
  jobEventSchema,
  jobRecordSchema,
  seriesItemSchema,
  toJobRecord,
} from './records.ts';
import { Attr, createTableInput, Index, TABLE } from './table.ts';

/** Default retention of timeline events (seconds). */
export const DEFAULT_EVENT_TTL_SECONDS = 30 * 24 * 3600;

type Item = Record<string, unknown>;
type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

/** Key builders: the only place that spells the pk/sk formats. */
export const Keys = {
  job: (ref: JobRef) => ({ pk: `JOB#${ref.namespace}/${ref.name}`, sk: 'JOB' }),
  eventPrefix: 'EVENT#',
  /** Events sort by time: `EVENT#<at, 15 digits>#<index in batch, 4 digits>#<random>`. */
  event: (ref: JobRef, at: number, seq: number, nonce: string) => ({
    pk: `JOB#${ref.namespace}/${ref.name}`,
    sk: `EVENT#${pad(at, 15)}#${pad(seq, 4)}#${nonce}`,
  }),
  /** A counter's increments go to a random one of its partitions (a busy series is spread); reads add them up. */
  counter: (name: string, labels: Record<string, string>, shard: number) => ({
    pk: `COUNTER#${shard}`,
    sk: seriesKey(name, labels),
  }),
  /** A gauge lives in one partition, chosen by its series (newest value wins within the item). */
  gauge: (name: string, labels: Record<string, string>) => {
    const sk = seriesKey(name, labels);
    return { pk: `GAUGE#${streamPart(sk, INDEX_SHARDS)}`, sk };
  },
  claim: (key: string) => ({ pk: `CLAIM#${key}`, sk: 'CLAIM' }),
  idempotency: (key: string) => ({ pk: `IDEMPOTENCY#${key}`, sk: 'IDEMPOTENCY' }),
};

const pad = (n: number, width: number): string => {
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`expected a non-negative integer, got ${n}`);
  return String(n).padStart(width, '0');
};

/** A series' identity: its name and its labels sorted by name (so `{a,b}` and `{b,a}` are one item). */
export const seriesKey = (name: string, labels: Record<string, string>): string =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

const refFromPk = (pk: unknown): JobRef => {
  const m = typeof pk === 'string' ? /^JOB#([^/]+)\/(.+)$/.exec(pk) : null;
  if (!m) throw new PermanentError(`store: unexpected job key ${String(pk)}`);
  return { namespace: m[1]!, name: m[2]! };
};

const cursorSchema = z.object({
  p: z.number().int().min(0).optional(),
  k: z.record(z.string(), z.unknown()).optional(),
});
type Cursor = z.infer<typeof cursorSchema>;
const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify(c)).toString('base64url');
const decodeCursor = (s: string): Cursor => {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new ValidationError('invalid cursor', [{ path: 'cursor', message: 'not a cursor from listJobs' }], {
      cause,
    });
  }
  const parsed = cursorSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError('invalid cursor', [{ path: 'cursor', message: formatIssues(parsed.error) }]);
  }
  return parsed.data;
};

/** A key value DynamoDB accepts: a non-empty string well under its 1,024-byte sort-key limit. */
const isKeyString = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= 512;

/**
 * A cursor's start key must be one this query could have returned: exactly the table's and the queried
 * index's key attributes, all non-empty strings, in the queried partition. DynamoDB refuses any other with a
 * ValidationException, which would surface as a server error; a forged or stale cursor is the caller's error.
 */
const checkCursorKey = (
  k: Record<string, unknown>,
  index: { hash: string; sort: string; partition: unknown; sortPrefix?: string },
): void => {
  const expected = [Attr.pk, Attr.sk, index.hash, index.sort].sort();
  const keys = Object.keys(k).sort();
  const fits =
    keys.length === expected.length &&
    keys.every((key, i) => key === expected[i] && isKeyString(k[key])) &&
    k[index.hash] === index.partition &&
    (k[index.sort] as string).startsWith(index.sortPrefix ?? '');
  if (!fits) {
    throw new ValidationError('invalid cursor', [
      { path: 'cursor', message: 'not a cursor from this listing (pass back the cursor the last page gave)' },
    ]);
  }
};

/**
 * Translates an SDK error (after the SDK's own retries) into the core taxonomy: `translateAwsError` with the
 * `store.` prefix; a ResourceNotFoundException names the missing table, a PermanentError.
 */
export function translateError(operation: string, err: unknown): Error {
  return translateAwsError(`store.${operation}`, err, { notFound: 'permanent' });
}

const isConditionFailure = (err: unknown): boolean =>
  (err as { name?: string })?.name === 'ConditionalCheckFailedException';

/** Some keys/items of a batch call came back unprocessed (DynamoDB throttling part of a batch). */
class UnprocessedError extends TransientError {}

/**
 * Runs a batch call until it leaves nothing unprocessed (it throws `UnprocessedError` while it does): 9 calls
 * in all, with p-retry's jittered backoff from 25 ms up to 1 s; then the `UnprocessedError` (a
 * TransientError) propagates. Other failures propagate at once (the SDK has retried them already).
 */
const retryUnprocessed = (call: () => Promise<void>): Promise<void> =>
  pRetry(call, {
    retries: 8,
    minTimeout: 25,
    factor: 2,
    maxTimeout: 1000,
    randomize: true,
    shouldRetry: ({ error }) => error instanceof UnprocessedError,
  });

/** DynamoDB allows 100 items per transaction: the head and at most this many parts. */
const MAX_TRANSACTION_PARTS = 99;
/** Batch calls of one job write or delete in flight at once. */
const PART_WRITE_CONCURRENCY = 4;
/** Jobs read at once by `listJobs`. */
const LIST_READ_CONCURRENCY = 8;
/** Reads of a job retried while writers commit in between. */
const READ_ATTEMPTS = 6;
/** Job snapshots a store keeps (a warm Lambda re-reading a job reads only the parts written since). */
const MAX_SNAPSHOTS = 32;
/**
 * Partitions of the `active` and `due` indexes and of the counter and gauge items (`ACTIVE#<n>`, `DUE#<n>`,
 * `COUNTER#<n>`, `GAUGE#<n>`): a single partition takes ~1,000 writes/s; these spread 1,000 busy jobs.
 */
export const INDEX_SHARDS = 8;
/** Partition keys of the index and series items written before sharding (still read, never written). */
const LEGACY = { active: 'ACTIVE', due: 'DUE', counter: 'COUNTER', gauge: 'GAUGE' } as const;

const activePartition = (jobRef: string): string => `ACTIVE#${streamPart(jobRef, INDEX_SHARDS)}`;
const duePartition = (jobRef: string): string => `DUE#${streamPart(jobRef, INDEX_SHARDS)}`;
const shardPartitions = (prefix: string, legacy: string): string[] => [
  ...Array.from({ length: INDEX_SHARDS }, (_, n) => `${prefix}#${n}`),
  legacy,
];

/** What the store knows of a job as of one version: its layout and its parts (text and parsed). */
interface Snapshot {
  version: number;
  /** The head's write sequence: +1 per write, whatever the record version (a replaced job starts over). */
  seq: number;
  layout: Layout;
  texts: Map<string, string>;
  values: Map<string, unknown>;
  /** Slot/stream parts of other bases seen on a full read (deleted at the next rebase). */
  stale: string[];
  /** The head's index key attributes as stored (what a write's index updates are counted against). */
  index: Item;
}

/** A job as read: a legacy (single-item) record has no snapshot. */
interface Read {
  job: JobRecord;
  snapshot?: Snapshot;
}

const layoutSchema = z.object({
  base: z.string().min(1),
  k: z.number().int().min(1),
  m: z.number().int().min(1),
  slots: z.number().int().min(0),
});

const recordShape = jobRecordSchema.shape;
const headSchema = jobRecordSchema.omit({
  pods: true,
  spec: true,
  ruleState: true,
  remediations: true,
  nodeFaults: true,
  appliedCommands: true,
  latestFaultyPodInstanceList: true,
  version: true,
});
const histSchema = z.looseObject({
  remediations: recordShape.remediations,
  nodeFaults: recordShape.nodeFaults,
  appliedCommands: recordShape.appliedCommands,
  latestFaultyPodInstanceList: recordShape.latestFaultyPodInstanceList,
});
const slotsSchema = z.array(recordShape.pods.element);
const specPartSchema = z.object({ spec: z.looseObject({}) });
const rulesPartSchema = z.looseObject({});
const streamPartSchema = z.record(z.string(), z.record(z.string(), z.unknown()));

/** The schema a part (or the head) is checked with on read. */
const partSchemaFor = (sk: string): z.ZodType => {
  if (sk === HEAD_SK) return headSchema;
  if (sk === SPEC_SK) return specPartSchema;
  if (sk === HIST_SK) return histSchema;
  if (sk === RULES_SK) return rulesPartSchema;
  return sk.startsWith('P#S#') ? slotsSchema : streamPartSchema;
};

/** Freezes a parsed JSON value all the way down: snapshots share parts between reads, nobody may edit them. */
const deepFreeze = <T>(value: T): T => {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

/** Runs `fn` over `items`, at most `limit` at a time. */
const forEachBounded = async <T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> => {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
};

/**
 * The parts of `split` to write after `prev`: those whose text differs, plus stream parts of the same base
 * that emptied (written as `{}`, not deleted: a reader detects a part newer than its head, not a missing one).
 */
const changedParts = (split: SplitRecord, prev: Snapshot | undefined, layout: Layout): [string, string][] => {
  const out: [string, string][] = [];
  for (const [sk, text] of split.parts) if (prev?.texts.get(sk) !== text) out.push([sk, text]);
  if (prev) {
    for (const [sk, text] of prev.texts) {
      if (sk.startsWith('P#R#') && baseOfSk(sk) === layout.base && !split.parts.has(sk) && text !== '{}')
        out.push([sk, '{}']);
    }
  }
  return out;
};

/** The key attributes of every secondary index. */
const INDEX_KEYS: IndexKeys[] = Object.values(TABLE.globalIndexes);

/** An item's index key attributes. */
const indexKeysOf = (item: Item): Item => {
  const keys: Item = {};
  for (const i of INDEX_KEYS)
    for (const a of [i.hashKey, i.rangeKey]) if (item[a] !== undefined) keys[a] = item[a];
  return keys;
};

/**
 * Whether a slot part is unchanged since the snapshot: the record holds exactly the snapshot's slot objects
 * there. Those are frozen (a read or a write parsed them from the text stored), so being the same objects
 * means being the same JSON. Decide copies a slot on write and leaves the others as it got them, so a write
 * of a big job serialises and compares only the parts whose slots changed. A slot object of the caller's
 * own (a changed slot, a record built in place) is never taken for unchanged: it may have been edited since.
 */
const unchangedSlots =
  (prev: Snapshot, k: number) =>
  (sk: string, pods: readonly PodSlot[], from: number): boolean => {
    const slots = prev.values.get(sk) as readonly PodSlot[] | undefined;
    if (!slots || slots.length !== Math.min(k, pods.length - from) || !prev.texts.has(sk)) return false;
    for (let i = 0; i < slots.length; i++) if (slots[i] !== pods[from + i]) return false;
    return true;
  };

/** The condition of a job's head write: absent (a create) or still at the version the write follows. */
const headCondition = (expect: number | 'absent') =>
  expect === 'absent'
    ? { ConditionExpression: 'attribute_not_exists(pk)' }
    : {
        ConditionExpression: '#version = :prev',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':prev': expect },
      };

/** A head write's lost condition: the job exists (create) or moved on (update). */
const lostHeadWrite = (expect: number | 'absent', conflict: string, cause: unknown): Error =>
  expect === 'absent'
    ? new AlreadyExistsError(conflict, { cause })
    : new ConcurrencyError(conflict, { cause });

/** A base name no concurrent writer picks: the version it is written at and a random tag. */
const newBase = (job: JobRecord): string => `${job.version}.${Math.random().toString(36).slice(2, 8)}`;

/** The DynamoDB behind the client does not have the operation (dynalite: TransactWriteItems). */
const isUnknownOperation = (err: unknown): boolean =>
  /UnknownOperation/.test((err as { name?: string })?.name ?? '') ||
  /UnknownOperation/.test(String((err as { cause?: { name?: string } })?.cause?.name ?? ''));

const isTransactionConflict = (err: unknown): boolean => {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  if (e?.name !== 'TransactionCanceledException') return false;
  return (e.CancellationReasons ?? []).some(
    (r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict',
  );
};

/**
 * Capacity the store's calls consumed, as DynamoDB reported it (`ReturnConsumedCapacity: TOTAL`); a
 * transaction's write units by DynamoDB's rules (capacity.ts: DynamoDB Local misreports them).
 */
export interface CapacityMeter {
  readUnits: number;
  writeUnits: number;
  /** Largest job item (head or part) written, in bytes of its JSON text. */
  largestItemBytes: number;
}

/** Options of `DynamoJobStore`. */
export interface DynamoJobStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Retention of timeline events; default 30 days. */
  eventTtlSeconds?: number;
  /** Clock for TTL checks of claims and idempotency keys (expired items linger until DynamoDB deletes them). */
  clock?: Clock;
}

/** The JobStore on DynamoDB. Stateless apart from its client; safe to share across handler invocations. */
export class DynamoJobStore implements JobStore, Timeline, MetricStore, IdempotencyStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly eventTtl: number;
  private readonly clock: Clock;
  /** Each job's last read or written snapshot, least recently used first. */
  private readonly snapshots = new Map<string, Snapshot>();
  /** Capacity consumed by this store's calls so far (benchmarks and tests read it). */
  readonly meter: CapacityMeter = { readUnits: 0, writeUnits: 0, largestItemBytes: 0 };
  /**
   * Whether the table's DynamoDB has TransactWriteItems. dynalite (the embedded local default) has not:
   * against it the store keeps each job in one item (`record`, the layout before sharding), fine for the
   * job sizes a laptop runs. Learned from the first transaction refused as an unknown operation.
   */
  private transactions = true;

  constructor(options: DynamoJobStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.eventTtl = options.eventTtlSeconds ?? DEFAULT_EVENT_TTL_SECONDS;
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  /**
   * The client's `send`, asking every call for its consumed capacity and adding it to `meter` (reads:
   * GetItem and Query; everything else writes).
   */
  private readonly send = (async (command: { input: Record<string, unknown> }) => {
    command.input.ReturnConsumedCapacity = 'TOTAL';
    const out = (await this.client.send(command as never)) as {
      ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
    };
    const consumed = out.ConsumedCapacity;
    // DynamoDB Local reports 2 units for any transaction: count those by DynamoDB's rules (capacity.ts)
    const units =
      command instanceof TransactWriteCommand
        ? transactWriteUnits(command.input.TransactItems ?? [])
        : Array.isArray(consumed)
          ? consumed.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0)
          : (consumed?.CapacityUnits ?? 0);
    if (command instanceof GetCommand || command instanceof QueryCommand) this.meter.readUnits += units;
    else this.meter.writeUnits += units;
    return out;
  }) as unknown as DynamoDBDocumentClient['send'];

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw translateError(operation, err);
    }
  }

  /** The index attributes of a job's head item (sparse: `active` and `due` only while they apply). */
  private indexAttributes(job: JobRecord): Item {
    const jobRef = `${job.namespace}/${job.name}`;
    const item: Item = {
      [Attr.nsPk]: job.namespace,
      [Attr.nsSk]: `${job.phase}#${job.name}`,
      [Attr.phasePk]: job.phase,
      [Attr.phaseSk]: jobRef,
    };
    if (!isTerminal(job.phase)) {
      item[Attr.activePk] = activePartition(jobRef);
      item[Attr.activeSk] = jobRef;
    }
    // Due whatever the phase: a finished job's only `nextCheckAt` is its TTL delete, which the sweep finds
    // here (a finished job is not in the active index).
    if (job.nextCheckAt !== undefined) {
      item[Attr.duePk] = duePartition(jobRef);
      item[Attr.dueAt] = job.nextCheckAt;
    }
    return item;
  }

  /**
   * Refuses an item text over the guard (PermanentError: decide compacts what it writes, so this is a bug
   * or a job too big for the layout) and, for a new job, over `MAX_NEW_RECORD_BYTES` (the submitter's
   * ValidationError: it would leave no room to write the job again, not even to cancel it).
   */
  private checkSize(job: JobRecord, what: string, text: string, isNew: boolean): void {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (isNew && bytes > MAX_NEW_RECORD_BYTES) {
      throw new ValidationError(`the job's record would be ${bytes} bytes; at most ${MAX_NEW_RECORD_BYTES}`, [
        {
          path: 'spec',
          message:
            `the job (mostly its manifest: pod templates, rules, annotations) takes ${bytes} bytes stored in one item (${what}); ` +
            `a job may take at most ${MAX_NEW_RECORD_BYTES} (DynamoDB's 400 KB item limit, less room for its status)`,
        },
      ]);
    }
    if (bytes > MAX_RECORD_BYTES) {
      throw new PermanentError(
        `store: job ${job.namespace}/${job.name} record is ${bytes} bytes in one item (${what}), over the ${MAX_RECORD_BYTES}-byte guard ` +
          '(DynamoDB items are limited to 400 KB); decide compacts the records it writes (core/decide/compact.ts)',
      );
    }
  }

  /** A record stored before the head/parts layout: one item with the whole record as JSON in `record`. */
  private parseLegacyJob(item: Item): JobRecord {
    const where = `${String(item.pk)}`;
    if (typeof item.record !== 'string') {
      throw new PermanentError(`store: corrupt job item ${where}: record: expected a JSON string`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(item.record);
    } catch (cause) {
      throw new PermanentError(`store: corrupt job item ${where}: record: not JSON`, { cause });
    }
    const parsed = jobRecordSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PermanentError(`store: corrupt job item ${where}: ${formatIssues(parsed.error)}`);
    }
    return toJobRecord(parsed.data);
  }

  /** One part's text parsed and checked against its schema (frozen: snapshots share it between reads). */
  private parsePart(pk: string, sk: string, text: unknown): unknown {
    const where = `${pk} ${sk}`;
    if (typeof text !== 'string')
      throw new PermanentError(`store: corrupt job item ${where}: d: expected JSON text`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw new PermanentError(`store: corrupt job item ${where}: not JSON`, { cause });
    }
    const schema = partSchemaFor(sk);
    const parsed = schema.safeParse(raw);
    if (!parsed.success)
      throw new PermanentError(`store: corrupt job item ${where}: ${formatIssues(parsed.error)}`);
    return deepFreeze(raw);
  }

  /**
   * Reads a job: its head and parts in one consistent Query (head first), retried while a writer commits
   * in between (a part newer than the head). With a snapshot of the job from an earlier read, only parts
   * written since come back (`v` above the snapshot's version), so a warm Lambda reads what changed.
   */
  private async readJob(ref: JobRef): Promise<Read | undefined> {
    const pk = Keys.job(ref).pk;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const known = this.snapshots.get(pk);
      // Its maps copied now, before the Query: a write this process commits meanwhile updates the maps of
      // the snapshot it followed (which may be this one), and this read must see the version it queried.
      const knownTexts = new Map(known?.texts);
      const knownValues = new Map(known?.values);
      const input: QueryCommandInput = {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :head AND :end',
        ExpressionAttributeValues: { ':pk': pk, ':head': HEAD_SK, ':end': PARTS_END },
        ConsistentRead: true,
      };
      if (known) {
        // Parts carry `v`, the head (and a legacy record) `version`: the head always comes back.
        input.FilterExpression = '#v > :known OR attribute_exists(#version)';
        input.ExpressionAttributeNames = { '#v': 'v', '#version': 'version' };
        input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ':known': known.seq };
      }
      const items: Item[] = [];
      for await (const item of this.queryAll('getJob', input)) items.push(item);
      const head = items.find((i) => i.sk === HEAD_SK);
      if (!head) {
        this.snapshots.delete(pk);
        return undefined;
      }
      if (typeof head.record === 'string' || head.head === undefined) {
        this.snapshots.delete(pk);
        return { job: this.parseLegacyJob(head) };
      }
      const layout = layoutSchema.safeParse(head.layout);
      if (!layout.success || typeof head.head !== 'string' || typeof head.version !== 'number') {
        throw new PermanentError(
          `store: corrupt job item ${pk}: ${layout.success ? 'head/version' : `layout: ${formatIssues(layout.error)}`}`,
        );
      }
      const version = head.version;
      const seq = typeof head.seq === 'number' ? head.seq : version;
      const base = layout.data.base;
      // A snapshot of another base (a rebase happened) or of a newer version (this read lost a race) is no
      // use: read everything again.
      if (known && (known.layout.base !== base || known.seq > seq)) {
        this.snapshots.delete(pk);
        continue;
      }
      const snap: Snapshot = {
        version,
        seq,
        layout: layout.data,
        texts: knownTexts,
        values: knownValues,
        stale: [],
        index: indexKeysOf(head),
      };
      let raced = false;
      for (const item of items) {
        const sk = String(item.sk);
        if (sk === HEAD_SK) continue;
        if (typeof item.v !== 'number') throw new PermanentError(`store: corrupt job item ${pk} ${sk}: v`);
        const itemBase = baseOfSk(sk);
        if (itemBase !== undefined && itemBase !== base) {
          snap.stale.push(sk);
          continue;
        }
        if (item.v > seq) {
          raced = true;
          break;
        }
        snap.texts.set(sk, item.d as string);
        snap.values.set(sk, this.parsePart(pk, sk, item.d));
      }
      // A part missing may be a rebase committed while this Query paged (its old base deleted after the
      // new one was written): read again; still missing after every attempt, the job is corrupt.
      const missing = requiredSks(layout.data).filter((sk) => !snap.values.has(sk));
      if (raced || (missing.length > 0 && attempt < READ_ATTEMPTS - 1)) {
        if (missing.length > 0) this.snapshots.delete(pk);
        await sleep(5 + Math.random() * 20 * (attempt + 1));
        continue;
      }
      if (missing.length > 0) {
        throw new PermanentError(
          `store: corrupt job ${pk}: missing part(s) ${missing.slice(0, 3).join(', ')}`,
        );
      }
      const headFields = this.parsePart(pk, HEAD_SK, head.head) as Record<string, unknown>;
      const job = assembleRecord({ ...headFields, version }, layout.data, snap.values);
      this.remember(pk, snap);
      return { job, snapshot: snap };
    }
    throw new TransientError(`store.getJob: job ${pk} kept changing while it was read; retry`);
  }

  /** Keeps a job's snapshot for the next read or write of it (bounded: least recently used go first). */
  private remember(pk: string, snap: Snapshot): void {
    this.snapshots.delete(pk);
    this.snapshots.set(pk, snap);
    while (this.snapshots.size > MAX_SNAPSHOTS) {
      const oldest = this.snapshots.keys().next().value as string;
      this.snapshots.delete(oldest);
    }
  }

  /**
   * Writes `job` (head and the parts that differ from `prev`, the stored version's snapshot) if the stored
   * version is `expect` (`'absent'` for a create). One conditional write when only the head changed; one
   * transaction with the changed parts when they fit (≤ 99 parts); otherwise a new base: every slot and
   * stream part written under a fresh base name first (invisible until the head names it), then the head
   * with the fixed parts in one transaction, then the old base deleted (best effort; leftovers are
   * deleted by the next rebase or with the job).
   */
  private async writeJob(
    operation: string,
    job: JobRecord,
    prev: Snapshot | undefined,
    expect: number | 'absent',
    conflict: string,
  ): Promise<void> {
    if (!this.transactions) {
      await this.writeSingleItem(operation, job, expect, conflict);
      return;
    }
    try {
      await this.writeParts(operation, job, prev, expect, conflict);
    } catch (err) {
      if (!isUnknownOperation(err)) throw err;
      this.transactions = false;
      await this.writeSingleItem(operation, job, expect, conflict);
    }
  }

  /** The whole record in one item (`record`), for a DynamoDB without transactions (dynalite). */
  private async writeSingleItem(
    operation: string,
    job: JobRecord,
    expect: number | 'absent',
    conflict: string,
  ): Promise<void> {
    const record = JSON.stringify(job);
    this.checkSize(job, 'record', record, expect === 'absent');
    this.meter.largestItemBytes = Math.max(this.meter.largestItemBytes, Buffer.byteLength(record, 'utf8'));
    const Item: Item = { ...Keys.job(job), record, version: job.version, ...this.indexAttributes(job) };
    await this.call(operation, async () => {
      try {
        await this.send(
          new PutCommand({
            TableName: this.table,
            Item,
            ...headCondition(expect),
          }),
        );
      } catch (err) {
        if (isConditionFailure(err)) throw lostHeadWrite(expect, conflict, err);
        throw err;
      }
    });
    this.snapshots.delete(Keys.job(job).pk);
  }

  /** The head/parts write (layout.ts); see `writeJob`. */
  private async writeParts(
    operation: string,
    job: JobRecord,
    prev: Snapshot | undefined,
    expect: number | 'absent',
    conflict: string,
  ): Promise<void> {
    const pk = Keys.job(job).pk;
    const isNew = expect === 'absent';
    let layout: Layout = prev ? { ...prev.layout, slots: job.pods.length } : chooseLayout(job, newBase(job));
    let split = splitRecord(job, layout, prev && unchangedSlots(prev, layout.k));
    let changed = changedParts(split, prev, layout);
    const rebase = prev === undefined || changed.length > MAX_TRANSACTION_PARTS;
    if (rebase && prev !== undefined) {
      layout = chooseLayout(job, newBase(job));
      split = splitRecord(job, layout);
      changed = changedParts(split, prev, layout);
    }
    const headText = JSON.stringify(split.head);
    this.checkSize(job, 'head', headText, expect === 'absent');
    for (const [sk, text] of changed) this.checkSize(job, sk, text, isNew && !sk.startsWith('P#S#'));
    const seq = (prev?.seq ?? 0) + 1;
    const partItem = (sk: string, text: string): Item => ({ pk, sk, v: seq, d: text });
    for (const text of [headText, ...changed.map(([, t]) => t)]) {
      this.meter.largestItemBytes = Math.max(this.meter.largestItemBytes, Buffer.byteLength(text, 'utf8'));
    }
    const headItem: Item = {
      ...Keys.job(job),
      head: headText,
      layout,
      version: job.version,
      seq,
      ...this.indexAttributes(job),
    };
    const condition = headCondition(expect);
    const bulk = rebase ? changed.filter(([sk]) => baseOfSk(sk) !== undefined) : [];
    const withHead = rebase ? changed.filter(([sk]) => baseOfSk(sk) === undefined) : changed;
    if (bulk.length > 0) {
      await this.putParts(
        operation,
        bulk.map(([sk, text]) => partItem(sk, text)),
      );
    }
    try {
      await this.call(operation, async () => {
        try {
          if (withHead.length === 0) {
            await this.send(new PutCommand({ TableName: this.table, Item: headItem, ...condition }));
          } else {
            await this.send(
              new TransactWriteCommand({
                TransactItems: [
                  { Put: { TableName: this.table, Item: headItem, ...condition } },
                  ...withHead.map(([sk, text]) => ({
                    Put: { TableName: this.table, Item: partItem(sk, text) },
                  })),
                ],
              }),
            );
            // the transaction's table writes are counted by `send`, its index writes here (capacity.ts)
            this.meter.writeUnits += indexWriteUnits(prev?.index, headItem, INDEX_KEYS);
          }
        } catch (err) {
          if (isConditionFailure(err) || isTransactionConflict(err))
            throw lostHeadWrite(expect, conflict, err);
          throw err;
        }
      });
    } catch (err) {
      // A lost rebase leaves its parts unreferenced: delete them (best effort).
      if (bulk.length > 0)
        await this.deleteParts(
          operation,
          pk,
          bulk.map(([sk]) => sk),
        ).catch(() => {});
      this.snapshots.delete(pk);
      throw err;
    }
    if (rebase && prev !== undefined) {
      const old = [...prev.texts.keys(), ...prev.stale].filter((sk) => {
        const b = baseOfSk(sk);
        return b !== undefined && b !== layout.base;
      });
      await this.deleteParts(operation, pk, old).catch(() => {});
    }
    // Committed: `prev` is superseded, so its maps become the new snapshot's (no copy of thousands of entries
    // per write). A read in flight copied them before its Query (readJob), and nothing awaits between the
    // commit and these updates.
    const texts = rebase || !prev ? new Map<string, string>() : prev.texts;
    const values = rebase || !prev ? new Map<string, unknown>() : prev.values;
    if (rebase && prev) {
      for (const sk of [SPEC_SK, HIST_SK, RULES_SK]) {
        if (prev.texts.has(sk)) texts.set(sk, prev.texts.get(sk)!);
        if (prev.values.has(sk)) values.set(sk, prev.values.get(sk));
      }
    }
    for (const [sk, text] of changed) {
      texts.set(sk, text);
      values.set(sk, deepFreeze(JSON.parse(text)));
    }
    this.remember(pk, {
      version: job.version,
      seq,
      layout,
      texts,
      values,
      stale: [],
      index: indexKeysOf(headItem),
    });
  }

  /** Puts parts (BatchWriteItem, 25 a call, a few calls at a time). */
  private async putParts(operation: string, items: Item[]): Promise<void> {
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
    await forEachBounded(chunks, PART_WRITE_CONCURRENCY, (chunk) =>
      this.batchWrite(
        operation,
        chunk.map((Item) => ({ PutRequest: { Item } })),
      ),
    );
  }

  private async deleteParts(operation: string, pk: string, sks: string[]): Promise<void> {
    const chunks: string[][] = [];
    for (let i = 0; i < sks.length; i += 25) chunks.push(sks.slice(i, i + 25));
    await forEachBounded(chunks, PART_WRITE_CONCURRENCY, (chunk) =>
      this.batchWrite(
        operation,
        chunk.map((sk) => ({ DeleteRequest: { Key: { pk, sk } } })),
      ),
    );
  }

  async createJob(job: JobRecord): Promise<void> {
    await this.writeJob(
      'createJob',
      job,
      undefined,
      'absent',
      `job ${job.namespace}/${job.name} already exists`,
    );
  }

  async getJob(ref: JobRef): Promise<JobRecord | undefined> {
    return (await this.readJob(ref))?.job;
  }

  async putJob(job: JobRecord): Promise<void> {
    const conflict = `job ${job.namespace}/${job.name}: stored version is not ${job.version - 1} (concurrent write or deleted)`;
    const pk = Keys.job(job).pk;
    let prev = this.snapshots.get(pk);
    if (prev?.version !== job.version - 1) {
      // No snapshot of the version this write follows: read what is stored (a legacy record has none,
      // and is rewritten whole in the current layout).
      const read = await this.readJob(job);
      if (!read || read.job.version !== job.version - 1) throw new ConcurrencyError(conflict);
      prev = read.snapshot;
    }
    await this.writeJob('putJob', job, prev, job.version - 1, conflict);
  }

  async deleteJob(ref: JobRef): Promise<void> {
    // Head first (the job is gone for readers at once), then its parts and its timeline, so a job
    // re-created under the same name starts clean.
    await this.call('deleteJob', () =>
      this.send(new DeleteCommand({ TableName: this.table, Key: Keys.job(ref) })),
    );
    this.snapshots.delete(Keys.job(ref).pk);
    await this.deletePartition('deleteJob', ref);
  }

  async replaceFinishedJob(job: JobRecord, finishedVersion: number): Promise<void> {
    const conflict = `job ${job.namespace}/${job.name}: the finished record changed (replaced or deleted) meanwhile`;
    const read = await this.readJob(job);
    if (!read || read.job.version !== finishedVersion) throw new ConcurrencyError(conflict);
    // Size checks before anything is deleted (a refused job leaves the finished one as it was).
    const probe = splitRecord(job, chooseLayout(job, 'probe'));
    this.checkSize(job, 'head', JSON.stringify(probe.head), true);
    for (const [sk, text] of probe.parts) if (!sk.startsWith('P#S#')) this.checkSize(job, sk, text, true);
    // The old timeline first: once the new record is in, its own events start arriving.
    await this.deleteTimeline('replaceFinishedJob', job);
    await this.writeJob('replaceFinishedJob', job, read.snapshot, finishedVersion, conflict);
  }

  private async deleteTimeline(operation: string, ref: JobRef): Promise<void> {
    await this.deleteKeysWithPrefix(operation, ref, Keys.eventPrefix);
  }

  /** Deletes a job's timeline and its parts (everything in its partition but the head). */
  private async deletePartition(operation: string, ref: JobRef): Promise<void> {
    await this.deleteKeysWithPrefix(operation, ref, Keys.eventPrefix);
    await this.deleteKeysWithPrefix(operation, ref, 'P#');
  }

  private async deleteKeysWithPrefix(operation: string, ref: JobRef, prefix: string): Promise<void> {
    const keys: Item[] = [];
    for await (const item of this.queryAll(operation, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
      ExpressionAttributeValues: { ':pk': Keys.job(ref).pk, ':e': prefix },
      ProjectionExpression: 'pk, sk',
    })) {
      keys.push({ pk: item.pk, sk: item.sk });
    }
    const chunks: Item[][] = [];
    for (let i = 0; i < keys.length; i += 25) chunks.push(keys.slice(i, i + 25));
    await forEachBounded(chunks, PART_WRITE_CONCURRENCY, (chunk) =>
      this.batchWrite(
        operation,
        chunk.map((Key) => ({ DeleteRequest: { Key } })),
      ),
    );
  }

  async listJobs(query: {
    namespace?: string;
    phase?: JobPhase;
    limit?: number;
    cursor?: string;
  }): Promise<{ jobs: JobRecord[]; cursor?: string }> {
    const limit = query.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError('invalid limit', [{ path: 'limit', message: 'expected an integer 1..1000' }]);
    }
    const start = query.cursor ? decodeCursor(query.cursor) : undefined;
    // Without namespace or phase, walk the byPhase index phase by phase; the cursor remembers which.
    const phases: (JobPhase | undefined)[] =
      query.namespace !== undefined || query.phase !== undefined ? [undefined] : [...JOB_PHASES];
    let p = start?.p ?? 0;
    if (p >= phases.length && start !== undefined) {
      throw new ValidationError('invalid cursor', [
        { path: 'cursor', message: 'not a cursor from this listing' },
      ]);
    }
    let exclusiveStartKey = start?.k;
    const refs: JobRef[] = [];
    let next: Cursor | undefined;
    while (p < phases.length && refs.length < limit) {
      const input: QueryCommandInput =
        query.namespace !== undefined
          ? {
              TableName: this.table,
              IndexName: Index.byNamespace,
              KeyConditionExpression:
                query.phase !== undefined ? '#h = :h AND begins_with(#s, :s)' : '#h = :h',
              ExpressionAttributeNames:
                query.phase !== undefined ? { '#h': Attr.nsPk, '#s': Attr.nsSk } : { '#h': Attr.nsPk },
              ExpressionAttributeValues:
                query.phase !== undefined
                  ? { ':h': query.namespace, ':s': `${query.phase}#` }
                  : { ':h': query.namespace },
            }
          : {
              TableName: this.table,
              IndexName: Index.byPhase,
              KeyConditionExpression: '#h = :h',
              ExpressionAttributeNames: { '#h': Attr.phasePk },
              ExpressionAttributeValues: { ':h': query.phase ?? phases[p] },
            };
      if (exclusiveStartKey !== undefined && exclusiveStartKey === start?.k) {
        checkCursorKey(
          exclusiveStartKey,
          query.namespace !== undefined
            ? {
                hash: Attr.nsPk,
                sort: Attr.nsSk,
                partition: query.namespace,
                ...(query.phase !== undefined ? { sortPrefix: `${query.phase}#` } : {}),
              }
            : { hash: Attr.phasePk, sort: Attr.phaseSk, partition: query.phase ?? phases[p] },
        );
      }
      const out = await this.call('listJobs', () =>
        this.send(
          new QueryCommand({ ...input, Limit: limit - refs.length, ExclusiveStartKey: exclusiveStartKey }),
        ),
      );
      for (const item of out.Items ?? []) refs.push(refFromPk(item.pk));
      if (out.LastEvaluatedKey) {
        exclusiveStartKey = out.LastEvaluatedKey;
        if (refs.length >= limit) next = { p, k: out.LastEvaluatedKey };
      } else {
        exclusiveStartKey = undefined;
        p += 1;
        if (refs.length >= limit && p < phases.length) next = { p };
      }
    }
    const jobs = await this.batchGetJobs(refs);
    return next ? { jobs, cursor: encodeCursor(next) } : { jobs };
  }

  /** Full records for index hits, in the order given (a few reads at a time); jobs deleted in between are skipped. */
  private async batchGetJobs(refs: JobRef[]): Promise<JobRecord[]> {
    const jobs: (JobRecord | undefined)[] = new Array(refs.length);
    await forEachBounded(
      refs.map((ref, i) => ({ ref, i })),
      LIST_READ_CONCURRENCY,
      async ({ ref, i }) => {
        jobs[i] = await this.getJob(ref);
      },
    );
    return jobs.filter((j): j is JobRecord => j !== undefined);
  }

  private async batchWrite(operation: string, requests: WriteRequest[]): Promise<void> {
    let pending = requests;
    if (pending.length === 0) return;
    await retryUnprocessed(async () => {
      const out = await this.call(operation, () =>
        this.send(
          new BatchWriteCommand({
            RequestItems: { [this.table]: pending },
          }),
        ),
      );
      pending = out.UnprocessedItems?.[this.table] ?? [];
      if (pending.length > 0) {
        throw new UnprocessedError(`store.${operation}: BatchWriteItem kept returning unprocessed items`);
      }
    });
  }

  private async *queryAll(operation: string, input: QueryCommandInput): AsyncGenerator<Item> {
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await this.call(operation, () =>
        this.send(new QueryCommand({ ...input, ExclusiveStartKey })),
      );
      yield* out.Items ?? [];
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  /**
   * Due jobs from every partition of the `due` index, soonest first: each partition is read up to `limit`
   * (it is sorted by due time), then the merged list is cut to `limit`.
   */
  async listDueJobs(now: number, limit = 100): Promise<JobRef[]> {
    const hits: { ref: JobRef; at: number }[] = [];
    for (const partition of shardPartitions('DUE', LEGACY.due)) {
      let ExclusiveStartKey: Item | undefined;
      let taken = 0;
      do {
        const out = await this.call('listDueJobs', () =>
          this.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: Index.due,
              KeyConditionExpression: '#h = :h AND #s <= :now',
              ExpressionAttributeNames: { '#h': Attr.duePk, '#s': Attr.dueAt },
              ExpressionAttributeValues: { ':h': partition, ':now': now },
              Limit: limit - taken,
              ExclusiveStartKey,
            }),
          ),
        );
        for (const item of out.Items ?? []) {
          hits.push({ ref: refFromPk(item.pk), at: Number(item[Attr.dueAt]) });
          taken++;
        }
        ExclusiveStartKey = out.LastEvaluatedKey;
      } while (ExclusiveStartKey && taken < limit);
    }
    return hits
      .sort((a, b) => a.at - b.at)
      .slice(0, limit)
      .map((h) => h.ref);
  }

  async listActiveJobs(): Promise<JobRef[]> {
    const refs: JobRef[] = [];
    for (const partition of shardPartitions('ACTIVE', LEGACY.active)) {
      for await (const item of this.queryAll('listActiveJobs', {
        TableName: this.table,
        IndexName: Index.active,
        KeyConditionExpression: '#h = :h',
        ExpressionAttributeNames: { '#h': Attr.activePk },
        ExpressionAttributeValues: { ':h': partition },
      })) {
        refs.push(refFromPk(item.pk));
      }
    }
    return refs;
  }

  async appendEvents(ref: JobRef, events: JobEvent[]): Promise<void> {
    const requests = events.map((event, i) => {
      const parsed = jobEventSchema.safeParse(event);
      if (!parsed.success) {
        throw new ValidationError(`event ${i} of ${ref.namespace}/${ref.name} is invalid`, [
          { path: `events.${i}`, message: formatIssues(parsed.error) },
        ]);
      }
      const nonce = Math.random().toString(16).slice(2, 10).padEnd(8, '0');
      return {
        PutRequest: {
          Item: {
            ...Keys.event(ref, event.at, i, nonce),
            event: JSON.stringify(parsed.data),
            [Attr.ttl]: Math.floor(event.at / 1000) + this.eventTtl,
          },
        },
      };
    });
    for (let i = 0; i < requests.length; i += 25)
      await this.batchWrite('appendEvents', requests.slice(i, i + 25));
  }

  async listEvents(ref: JobRef, query: { after?: number; limit?: number } = {}): Promise<JobEvent[]> {
    const from = query.after !== undefined ? `EVENT#${pad(Math.floor(query.after), 15)}#~` : 'EVENT#';
    const events: JobEvent[] = [];
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    for await (const item of this.queryAll('listEvents', {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': Keys.job(ref).pk, ':from': from, ':to': 'EVENT#~' },
      ConsistentRead: true,
    })) {
      if (typeof item.event !== 'string')
        throw new PermanentError(`store: corrupt event item ${String(item.sk)}`);
      const parsed = jobEventSchema.safeParse(JSON.parse(item.event));
      if (!parsed.success) {
        throw new PermanentError(
          `store: corrupt event item ${String(item.sk)}: ${formatIssues(parsed.error)}`,
        );
      }
      if (query.after !== undefined && parsed.data.at <= query.after) continue;
      events.push(parsed.data as JobEvent);
      if (events.length >= limit) break;
    }
    return events;
  }

  async incrementCounters(increments: CounterIncrement[]): Promise<void> {
    // Merge increments of the same series first: one ADD per series per call.
    const merged = new Map<string, CounterIncrement>();
    for (const inc of increments) {
      if (!Number.isFinite(inc.by))
        throw new ValidationError(`counter ${inc.name}: increment must be finite`);
      const key = seriesKey(inc.name, inc.labels);
      const prev = merged.get(key);
      merged.set(key, prev ? { ...prev, by: prev.by + inc.by } : inc);
    }
    await Promise.all(
      [...merged.values()].map((inc) =>
        this.call('incrementCounters', () =>
          this.send(
            new UpdateCommand({
              TableName: this.table,
              Key: Keys.counter(inc.name, inc.labels, Math.floor(Math.random() * INDEX_SHARDS)),
              UpdateExpression: 'ADD #v :by SET #n = :n, #l = :l',
              ExpressionAttributeNames: { '#v': 'value', '#n': 'name', '#l': 'labels' },
              ExpressionAttributeValues: { ':by': inc.by, ':n': inc.name, ':l': inc.labels },
            }),
          ),
        ),
      ),
    );
  }

  async readCounters(): Promise<CounterTotal[]> {
    return this.readSeries('COUNTER');
  }

  /**
   * Sets gauges to their latest value: a write carrying an older `at` than the stored one is ignored, so
   * concurrent Lambdas converge on the newest observation.
   */
  async setGauges(gauges: CounterTotal[], at: number): Promise<void> {
    await Promise.all(
      gauges.map(async (g) => {
        try {
          await this.send(
            new UpdateCommand({
              TableName: this.table,
              Key: Keys.gauge(g.name, g.labels),
              UpdateExpression: 'SET #v = :v, #n = :n, #l = :l, #at = :at',
              ConditionExpression: 'attribute_not_exists(#at) OR #at <= :at',
              ExpressionAttributeNames: { '#v': 'value', '#n': 'name', '#l': 'labels', '#at': 'at' },
              ExpressionAttributeValues: { ':v': g.value, ':n': g.name, ':l': g.labels, ':at': at },
            }),
          );
        } catch (err) {
          if (!isConditionFailure(err)) throw translateError('setGauges', err);
        }
      }),
    );
  }

  async readGauges(): Promise<CounterTotal[]> {
    return this.readSeries('GAUGE');
  }

  /**
   * Every series of a kind, read from all its partitions (and the unsharded one of older tables): counters
   * add their partitions up; a gauge takes its newest value.
   */
  private async readSeries(kind: 'COUNTER' | 'GAUGE'): Promise<CounterTotal[]> {
    const bySeries = new Map<string, CounterTotal & { at: number }>();
    for (const pk of shardPartitions(kind, LEGACY[kind === 'COUNTER' ? 'counter' : 'gauge'])) {
      for await (const item of this.queryAll(kind === 'COUNTER' ? 'readCounters' : 'readGauges', {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': pk },
        ConsistentRead: true,
      })) {
        const parsed = seriesItemSchema.safeParse(item);
        if (!parsed.success) {
          throw new PermanentError(
            `store: corrupt ${kind} item ${String(item.sk)}: ${formatIssues(parsed.error)}`,
          );
        }
        const key = String(item.sk);
        const at = typeof item.at === 'number' ? item.at : 0;
        const seen = bySeries.get(key);
        if (!seen) bySeries.set(key, { ...parsed.data, at });
        else if (kind === 'COUNTER') seen.value += parsed.data.value;
        else if (at > seen.at) bySeries.set(key, { ...parsed.data, at });
      }
    }
    return [...bySeries.values()].map(({ name, labels, value }) => ({ name, labels, value }));
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const nowSec = Math.floor(this.clock.now() / 1000);
    try {
      await this.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...Keys.claim(key), [Attr.ttl]: nowSec + ttlSeconds },
          // An expired claim that DynamoDB has not yet deleted counts as absent.
          ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
          ExpressionAttributeNames: { '#ttl': Attr.ttl },
          ExpressionAttributeValues: { ':now': nowSec },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw translateError('claimOnce', err);
    }
  }

  async claimIdempotencyKey(
    key: string,
    value: IdempotencyValue,
    ttlSeconds: number,
  ): Promise<IdempotencyValue> {
    // Two attempts: a claim seen taken but gone on the read (its TTL passed in between) is claimed again.
    for (let attempt = 0; attempt < 2; attempt++) {
      const nowSec = Math.floor(this.clock.now() / 1000);
      try {
        await this.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...this.idempotencyItem(key, value), [Attr.ttl]: nowSec + ttlSeconds },
            ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
            ExpressionAttributeNames: { '#ttl': Attr.ttl },
            ExpressionAttributeValues: { ':now': nowSec },
          }),
        );
        return value;
      } catch (err) {
        if (!isConditionFailure(err)) throw translateError('claimIdempotencyKey', err);
      }
      const held = await this.getIdempotencyKey(key);
      if (held) return held;
    }
    throw new ConcurrencyError(`idempotency key ${key}: claimed and expired concurrently; retry`);
  }

  private idempotencyItem(key: string, value: IdempotencyValue): Item {
    return {
      ...Keys.idempotency(key),
      ref: { namespace: value.ref.namespace, name: value.ref.name },
      bodyHash: value.bodyHash,
      ...(value.uid !== undefined ? { uid: value.uid } : {}),
    };
  }

  async getIdempotencyKey(key: string): Promise<IdempotencyValue | undefined> {
    const out = await this.call('getIdempotencyKey', () =>
      this.send(new GetCommand({ TableName: this.table, Key: Keys.idempotency(key), ConsistentRead: true })),
    );
    if (!out.Item) return undefined;
    const parsed = idempotencyItemSchema.safeParse(out.Item);
    if (!parsed.success) {
      throw new PermanentError(`store: corrupt idempotency item ${key}: ${formatIssues(parsed.error)}`);
    }
    if (parsed.data.expiresAt < Math.floor(this.clock.now() / 1000)) return undefined;
    const { ref, bodyHash, uid } = parsed.data;
    return uid !== undefined ? { ref, bodyHash, uid } : { ref, bodyHash };
  }

  /**
   * Records what a key created. Re-recording the same value is fine (a retried submission); the same key
   * with another body or job while unexpired is `AlreadyExistsError`.
   */
  async putIdempotencyKey(key: string, value: IdempotencyValue, ttlSeconds: number): Promise<void> {
    const nowSec = Math.floor(this.clock.now() / 1000);
    try {
      await this.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...this.idempotencyItem(key, value), [Attr.ttl]: nowSec + ttlSeconds },
          ConditionExpression:
            'attribute_not_exists(pk) OR #ttl < :now OR (#h = :h AND #r.#ns = :ns AND #r.#nm = :nm)',
          ExpressionAttributeNames: {
            '#ttl': Attr.ttl,
            '#h': 'bodyHash',
            '#r': 'ref',
            '#ns': 'namespace',
            '#nm': 'name',
          },
          ExpressionAttributeValues: {
            ':now': nowSec,
            ':h': value.bodyHash,
            ':ns': value.ref.namespace,
            ':nm': value.ref.name,
          },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) {
        throw new AlreadyExistsError(`idempotency key ${key} was already used for another submission`, {
          cause: err,
        });
      }
      throw translateError('putIdempotencyKey', err);
    }
  }
}

/**
 * Creates the table if it is missing and waits until it is ACTIVE; enables TTL where supported (dynalite has
 * no UpdateTimeToLive: tolerated). For local runs and tests; the SST stack creates the real table.
 */
export async function ensureTable(
  client: DynamoDBClient | DynamoDBDocumentClient,
  tableName: string,
): Promise<void> {
  const send = client.send.bind(client) as DynamoDBClient['send'];
  try {
    await send(new CreateTableCommand(createTableInput(tableName)));
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException')
      throw translateError('ensureTable', err);
  }
  for (let i = 0; ; i++) {
    const out = await send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (out.Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
    if (out.Table?.TableStatus === 'ACTIVE' && indexesActive) break;
    if (i > 600) throw new TransientError(`ensureTable: ${tableName} did not become ACTIVE`);
    await sleep(50);
  }
  try {
    await send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: Attr.ttl, Enabled: true },
      }),
    );
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    // dynalite: UnknownOperationException; a second enable on DynamoDB: ValidationException "already enabled".
    if (!/UnknownOperation|ValidationException/.test(name)) throw translateError('ensureTable', err);
  }
}
