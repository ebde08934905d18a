/**
 * The one DynamoDB table: its key design, shared by the store, the tests, the local control plane and the SST
 * stack so that all of them create exactly the same table. See docs/store.md for the item types.
 *
 * Invariants:
 * - Every item has `pk` and `sk` (strings). Job records are `JOB#<ns>/<name>` / `JOB`; their timeline lives in
 *   the same partition (`EVENT#…`), so one Query lists it in order.
 * - All indexes are KEYS_ONLY and sparse: an item appears in an index only while it carries that index's key
 *   attributes. A KEYS_ONLY index is written only when its key attributes change, so the hot path (a job
 *   written on every trigger) pays for an index write only on a phase change or a new `nextCheckAt`.
 * - `expiresAt` (epoch seconds) is the TTL attribute (timeline events, delivery claims, idempotency keys).
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/** Attribute names of the table's keys, index keys and TTL (one place, so nobody misspells them). */
export const Attr = {
  pk: 'pk',
  sk: 'sk',
  /** byNamespace index: partition = namespace, sort = `<phase>#<name>`. */
  nsPk: 'gsiNs',
  nsSk: 'gsiNsSk',
  /** byPhase index: partition = phase, sort = `<ns>/<name>`. */
  phasePk: 'gsiPhase',
  phaseSk: 'gsiPhaseSk',
  /** active index: partition = `ACTIVE` while the job is not terminal (absent otherwise). */
  activePk: 'activePk',
  activeSk: 'activeSk',
  /** due index: partition = `DUE` while `nextCheckAt` is set (a finished job's: its TTL delete); sort = nextCheckAt (N). */
  duePk: 'duePk',
  dueAt: 'dueAt',
  ttl: 'expiresAt',
} as const;

/** Index names. */
export const Index = {
  byNamespace: 'byNamespace',
  byPhase: 'byPhase',
  active: 'active',
  due: 'due',
} as const;

type KeyType = 'string' | 'number';

/**
 * A neutral description of the table (what SST's `sst.aws.Dynamo` and `CreateTable` both need). Every index
 * projects keys only; readers then read each listed job (its head and parts, one Query).
 */
export const TABLE = {
  fields: {
    [Attr.pk]: 'string',
    [Attr.sk]: 'string',
    [Attr.nsPk]: 'string',
    [Attr.nsSk]: 'string',
    [Attr.phasePk]: 'string',
    [Attr.phaseSk]: 'string',
    [Attr.activePk]: 'string',
    [Attr.activeSk]: 'string',
    [Attr.duePk]: 'string',
    [Attr.dueAt]: 'number',
  } satisfies Record<string, KeyType>,
  primaryIndex: { hashKey: Attr.pk, rangeKey: Attr.sk },
  globalIndexes: {
    [Index.byNamespace]: { hashKey: Attr.nsPk, rangeKey: Attr.nsSk, projection: 'keys-only' },
    [Index.byPhase]: { hashKey: Attr.phasePk, rangeKey: Attr.phaseSk, projection: 'keys-only' },
    [Index.active]: { hashKey: Attr.activePk, rangeKey: Attr.activeSk, projection: 'keys-only' },
    [Index.due]: { hashKey: Attr.duePk, rangeKey: Attr.dueAt, projection: 'keys-only' },
  },
  ttl: Attr.ttl,
} as const;

/** `CreateTable` input for this design (on-demand billing). Used by `ensureTable` and tests. */
export function createTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: Object.entries(TABLE.fields).map(([name, type]) => ({
      AttributeName: name,
      AttributeType: type === 'number' ? 'N' : 'S',
    })),
    KeySchema: [
      { AttributeName: TABLE.primaryIndex.hashKey, KeyType: 'HASH' },
      { AttributeName: TABLE.primaryIndex.rangeKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: Object.entries(TABLE.globalIndexes).map(([name, index]) => ({
      IndexName: name,
      KeySchema: [
        { AttributeName: index.hashKey, KeyType: 'HASH' },
        { AttributeName: index.rangeKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    })),
  };
}
