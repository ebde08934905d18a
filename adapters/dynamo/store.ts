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
  BatchGetCommand,
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
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
import { isTerminal, JOB_PHASES, type JobEvent, type JobPhase, type JobRecord } from '../../core/job.ts';
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
import {
  formatIssues,
  idempotencyItemSchema,
  jobEventSchema,
  jobRecordSchema,
  seriesItemSchema,
  toJobRecord,
} from './records.ts';
import { Attr, createTableInput, Index } from './table.ts';

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
  counter: (name: string, labels: Record<string, string>) => ({ pk: 'COUNTER', sk: seriesKey(name, labels) }),
  gauge: (name: string, labels: Record<string, string>) => ({ pk: 'GAUGE', sk: seriesKey(name, labels) }),
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

  constructor(options: DynamoJobStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.eventTtl = options.eventTtlSeconds ?? DEFAULT_EVENT_TTL_SECONDS;
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw translateError(operation, err);
    }
  }

  /**
   * The job item: the record as JSON plus the sparse index attributes derived from it. A new record over
   * `MAX_NEW_RECORD_BYTES` is the submitter's error (ValidationError naming the size): it would leave no
   * room to write the job again, not even to cancel it.
   */
  private jobItem(job: JobRecord, isNew = false): Item {
    const record = JSON.stringify(job);
    const bytes = Buffer.byteLength(record, 'utf8');
    if (isNew && bytes > MAX_NEW_RECORD_BYTES) {
      throw new ValidationError(`the job's record would be ${bytes} bytes; at most ${MAX_NEW_RECORD_BYTES}`, [
        {
          path: 'spec',
          message:
            `the job (mostly its manifest: pod templates, rules, annotations) takes ${bytes} bytes stored; ` +
            `a job may take at most ${MAX_NEW_RECORD_BYTES} (DynamoDB's 400 KB item limit, less room for its status)`,
        },
      ]);
    }
    if (bytes > MAX_RECORD_BYTES) {
      throw new PermanentError(
        `store: job ${job.namespace}/${job.name} record is ${bytes} bytes, over the ${MAX_RECORD_BYTES}-byte guard ` +
          '(DynamoDB items are limited to 400 KB); decide compacts the records it writes (core/decide/compact.ts)',
      );
    }
    const jobRef = `${job.namespace}/${job.name}`;
    const item: Item = {
      ...Keys.job(job),
      record,
      version: job.version,
      [Attr.nsPk]: job.namespace,
      [Attr.nsSk]: `${job.phase}#${job.name}`,
      [Attr.phasePk]: job.phase,
      [Attr.phaseSk]: jobRef,
    };
    if (!isTerminal(job.phase)) {
      item[Attr.activePk] = 'ACTIVE';
      item[Attr.activeSk] = jobRef;
    }
    // Due whatever the phase: a finished job's only `nextCheckAt` is its TTL delete, which the sweep finds
    // here (a finished job is not in the active index).
    if (job.nextCheckAt !== undefined) {
      item[Attr.duePk] = 'DUE';
      item[Attr.dueAt] = job.nextCheckAt;
    }
    return item;
  }

  private parseJob(item: Item): JobRecord {
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

  async createJob(job: JobRecord): Promise<void> {
    const Item = this.jobItem(job, true);
    await this.call('createJob', async () => {
      try {
        await this.client.send(
          new PutCommand({ TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' }),
        );
      } catch (err) {
        if (isConditionFailure(err)) {
          throw new AlreadyExistsError(`job ${job.namespace}/${job.name} already exists`, { cause: err });
        }
        throw err;
      }
    });
  }

  async getJob(ref: JobRef): Promise<JobRecord | undefined> {
    const out = await this.call('getJob', () =>
      this.client.send(new GetCommand({ TableName: this.table, Key: Keys.job(ref), ConsistentRead: true })),
    );
    return out.Item ? this.parseJob(out.Item) : undefined;
  }

  async putJob(job: JobRecord): Promise<void> {
    await this.putAtVersion(
      'putJob',
      this.jobItem(job),
      job.version - 1,
      `job ${job.namespace}/${job.name}: stored version is not ${job.version - 1} (concurrent write or deleted)`,
    );
  }

  async deleteJob(ref: JobRef): Promise<void> {
    await this.call('deleteJob', () =>
      this.client.send(new DeleteCommand({ TableName: this.table, Key: Keys.job(ref) })),
    );
    // The timeline goes with the record, so a job re-created under the same name starts clean.
    await this.deleteTimeline('deleteJob', ref);
  }

  async replaceFinishedJob(job: JobRecord, finishedVersion: number): Promise<void> {
    const Item = this.jobItem(job, true);
    // The old timeline first: once the new record is in, its own events start arriving.
    await this.deleteTimeline('replaceFinishedJob', job);
    await this.putAtVersion(
      'replaceFinishedJob',
      Item,
      finishedVersion,
      `job ${job.namespace}/${job.name}: the finished record changed (replaced or deleted) meanwhile`,
    );
  }

  /** Writes a job item only if the stored one is at `previousVersion`; ConcurrencyError otherwise. */
  private async putAtVersion(
    operation: string,
    Item: Item,
    previousVersion: number,
    conflict: string,
  ): Promise<void> {
    await this.call(operation, async () => {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.table,
            Item,
            ConditionExpression: '#v = :prev',
            ExpressionAttributeNames: { '#v': 'version' },
            ExpressionAttributeValues: { ':prev': previousVersion },
          }),
        );
      } catch (err) {
        if (isConditionFailure(err)) throw new ConcurrencyError(conflict, { cause: err });
        throw err;
      }
    });
  }

  private async deleteTimeline(operation: string, ref: JobRef): Promise<void> {
    const keys: Item[] = [];
    for await (const item of this.queryAll(operation, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
      ExpressionAttributeValues: { ':pk': Keys.job(ref).pk, ':e': Keys.eventPrefix },
      ProjectionExpression: 'pk, sk',
    })) {
      keys.push({ pk: item.pk, sk: item.sk });
    }
    for (let i = 0; i < keys.length; i += 25) {
      await this.batchWrite(
        operation,
        keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })),
      );
    }
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
        this.client.send(
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

  /** Full records for index hits, in the order given; jobs deleted in between are skipped. */
  private async batchGetJobs(refs: JobRef[]): Promise<JobRecord[]> {
    const byKey = new Map<string, JobRecord>();
    for (let i = 0; i < refs.length; i += 100) {
      let keys: Item[] = refs.slice(i, i + 100).map(Keys.job);
      await retryUnprocessed(async () => {
        const out = await this.call('listJobs', () =>
          this.client.send(
            new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }),
          ),
        );
        for (const item of out.Responses?.[this.table] ?? []) byKey.set(String(item.pk), this.parseJob(item));
        keys = (out.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined) ?? [];
        if (keys.length > 0) {
          throw new UnprocessedError('store.listJobs: BatchGetItem kept returning unprocessed keys');
        }
      });
    }
    return refs.flatMap((r) => {
      const job = byKey.get(Keys.job(r).pk);
      return job ? [job] : [];
    });
  }

  private async batchWrite(operation: string, requests: WriteRequest[]): Promise<void> {
    let pending = requests;
    if (pending.length === 0) return;
    await retryUnprocessed(async () => {
      const out = await this.call(operation, () =>
        this.client.send(
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
        this.client.send(new QueryCommand({ ...input, ExclusiveStartKey })),
      );
      yield* out.Items ?? [];
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  async listDueJobs(now: number, limit = 100): Promise<JobRef[]> {
    const refs: JobRef[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await this.call('listDueJobs', () =>
        this.client.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: Index.due,
            KeyConditionExpression: '#h = :h AND #s <= :now',
            ExpressionAttributeNames: { '#h': Attr.duePk, '#s': Attr.dueAt },
            ExpressionAttributeValues: { ':h': 'DUE', ':now': now },
            Limit: limit - refs.length,
            ExclusiveStartKey,
          }),
        ),
      );
      for (const item of out.Items ?? []) refs.push(refFromPk(item.pk));
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey && refs.length < limit);
    return refs;
  }

  async listActiveJobs(): Promise<JobRef[]> {
    const refs: JobRef[] = [];
    for await (const item of this.queryAll('listActiveJobs', {
      TableName: this.table,
      IndexName: Index.active,
      KeyConditionExpression: '#h = :h',
      ExpressionAttributeNames: { '#h': Attr.activePk },
      ExpressionAttributeValues: { ':h': 'ACTIVE' },
    })) {
      refs.push(refFromPk(item.pk));
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
          this.client.send(
            new UpdateCommand({
              TableName: this.table,
              Key: Keys.counter(inc.name, inc.labels),
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
          await this.client.send(
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

  private async readSeries(pk: 'COUNTER' | 'GAUGE'): Promise<CounterTotal[]> {
    const out: CounterTotal[] = [];
    for await (const item of this.queryAll(pk === 'COUNTER' ? 'readCounters' : 'readGauges', {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      ConsistentRead: true,
    })) {
      const parsed = seriesItemSchema.safeParse(item);
      if (!parsed.success) {
        throw new PermanentError(
          `store: corrupt ${pk} item ${String(item.sk)}: ${formatIssues(parsed.error)}`,
        );
      }
      out.push(parsed.data);
    }
    return out;
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const nowSec = Math.floor(this.clock.now() / 1000);
    try {
      await this.client.send(
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
        await this.client.send(
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
      this.client.send(
        new GetCommand({ TableName: this.table, Key: Keys.idempotency(key), ConsistentRead: true }),
      ),
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
      await this.client.send(
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
