/**
 * The head/parts layout on DynamoDB Local (dynalite has no transactions and keeps one item per job): a job of
 * thousands of pods round-trips with every item far under the item limit, a heartbeat costs a few write
 * units, a full restart writes a new base and removes the old one, and stores sharing a table (Lambda
 * instances) never read a mix of two versions.
 */
import { randomUUID } from 'node:crypto';
import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { indexWriteUnits, writeUnits } from '../../../adapters/dynamo/capacity.ts';
import { DynamoJobStore, ensureTable } from '../../../adapters/dynamo/store.ts';
import { TABLE } from '../../../adapters/dynamo/table.ts';
import { MAX_RECORD_BYTES } from '../../../core/decide/compact.ts';
import { ConcurrencyError, PermanentError } from '../../../core/errors.ts';
import type { JobRecord } from '../../../core/job.ts';
import { runningRecord } from '../../core/big-record.ts';
import { makeSpec } from '../../core/dsl.ts';
import { type LocalDynamo, makeDocClient, startDynamoDbLocal } from '../../support/dynamo.ts';

let dynamo: LocalDynamo;
let client: ReturnType<typeof makeDocClient>;

beforeAll(async () => {
  dynamo = await startDynamoDbLocal();
  client = makeDocClient(dynamo.endpoint);
}, 120_000);
afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

const newStore = async (tableName?: string) => {
  const table = tableName ?? `tk-${randomUUID().slice(0, 8)}`;
  if (!tableName) await ensureTable(client, table);
  return { table, store: new DynamoJobStore({ client, tableName: table }) };
};

const bigJob = (replicas: number): JobRecord => {
  const job = runningRecord(makeSpec({ name: `big-${randomUUID().slice(0, 6)}`, replicas }));
  return { ...job, version: 1 };
};

const items = async (table: string, job: JobRecord) => {
  const out: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `JOB#${job.namespace}/${job.name}` },
        ExclusiveStartKey,
      }),
    );
    out.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return out;
};

describe('sharded job records on DynamoDB Local', () => {
  it('round-trips a 3,000-pod job whose whole record is far over the item limit, every item small', async () => {
    const { table, store } = await newStore();
    const job = bigJob(3000);
    expect(JSON.stringify(job).length).toBeGreaterThan(MAX_RECORD_BYTES);
    await store.createJob(job);
    expect(await store.getJob(job)).toEqual(job);
    const stored = await items(table, job);
    expect(stored.length).toBeGreaterThan(100);
    for (const item of stored) expect(JSON.stringify(item).length).toBeLessThan(4096);
    // A fresh store (another Lambda instance) reads the same record.
    expect(await (await newStore(table)).store.getJob(job)).toEqual(job);
  });

  it('writes a heartbeat as the head and one slot part: a few write units, not the job', async () => {
    const { store } = await newStore();
    const job = bigJob(4096);
    await store.createJob(job);
    const read = (await store.getJob(job))!;
    const next = structuredClone(read);
    next.version = read.version + 1;
    next.pods[2000]!.lastSeenAt = 2_000_000;
    next.progress = { ...next.progress, step: 10, at: 2_000_000 };
    const before = store.meter.writeUnits;
    await store.putJob(next);
    const units = store.meter.writeUnits - before;
    expect(units).toBeGreaterThan(0);
    expect(units).toBeLessThanOrEqual(10);
    expect(await store.getJob(job)).toEqual(next);
  });

  it("serialises only the slot parts whose slots changed when the record keeps the read's own slot objects (decide's copy on write)", async () => {
    const { table, store } = await newStore();
    const job = bigJob(2000);
    await store.createJob(job);
    const read = (await store.getJob(job))!;
    // as decide leaves a record: new objects for the changed slots, the read's (frozen) ones elsewhere
    const next: JobRecord = { ...read, version: read.version + 1, pods: read.pods.slice() };
    next.pods[7] = { ...read.pods[7]!, lastSeenAt: 3_000_000 };
    next.pods[1500] = { ...read.pods[1500]!, lastSeenAt: 3_000_001 };
    // slot parts are the only arrays the store serialises
    const stringified: unknown[] = [];
    const original = JSON.stringify;
    const spy = vi.spyOn(JSON, 'stringify').mockImplementation((...args: Parameters<typeof original>) => {
      if (Array.isArray(args[0])) stringified.push(args[0]);
      return original(...args);
    });
    try {
      await store.putJob(next);
    } finally {
      spy.mockRestore();
    }
    expect(stringified).toHaveLength(2);
    const fresh = (await newStore(table)).store;
    expect(await fresh.getJob(job)).toEqual(JSON.parse(JSON.stringify(next)));

    // the same content in objects of the caller's own (not the read's): every part is serialised again,
    // and what is stored is still exactly the record
    const rebuilt = structuredClone(await store.getJob(job))!;
    rebuilt.version += 1;
    rebuilt.pods[3]!.lastSeenAt = 3_000_002;
    await store.putJob(rebuilt);
    expect(await fresh.getJob(job)).toEqual(rebuilt);
  });

  it("sizes the store's items as DynamoDB bills a write of them (the units a transaction is counted with)", async () => {
    const { table, store } = await newStore();
    const job = bigJob(700);
    job.ruleState = { note: 'x'.repeat(1500), n: [1.5, -2e-7, 123456789012345, 0, true, null] };
    await store.createJob(job);
    const stored = await items(table, job);
    expect(stored.length).toBeGreaterThan(10);
    const indexes = Object.values(TABLE.globalIndexes);
    for (const item of stored) {
      // the same item under another key of the same length, a new item: DynamoDB Local reports a
      // PutItem right, its new index entries included
      const copy = { ...item, pk: `Z${String(item.pk).slice(1)}` };
      const out = await client.send(
        new PutCommand({ TableName: table, Item: copy, ReturnConsumedCapacity: 'TOTAL' }),
      );
      expect({ sk: item.sk, units: writeUnits(copy) + indexWriteUnits(undefined, copy, indexes) }).toEqual({
        sk: item.sk,
        units: out.ConsumedCapacity?.CapacityUnits,
      });
    }
    // written again unchanged but for a non-key attribute, no index is touched: the table's units only
    const head = stored.find((i) => i.sk === 'JOB')!;
    const again = { ...head, pk: `Z${String(head.pk).slice(1)}`, version: 99 };
    const out = await client.send(
      new PutCommand({ TableName: table, Item: again, ReturnConsumedCapacity: 'TOTAL' }),
    );
    expect(indexWriteUnits(head, again, indexes)).toBe(0);
    expect(out.ConsumedCapacity?.CapacityUnits).toBe(writeUnits(again));
  });

  it('returns one version to a read whose Query was answered before a write of the same store committed', async () => {
    const { table } = await newStore();
    let hold: Promise<void> | undefined;
    // the read's Query is answered at once, its answer handed back only when `hold` settles
    const gated = new Proxy(client, {
      get: (target, prop) =>
        prop === 'send'
          ? async (command: unknown) => {
              const out = await target.send(command as never);
              if (command instanceof QueryCommand && hold) await hold;
              return out;
            }
          : Reflect.get(target, prop, target),
    });
    const store = new DynamoJobStore({ client: gated, tableName: table });
    const job = bigJob(300);
    await store.createJob(job);
    const read = (await store.getJob(job))!;
    let release = () => {};
    hold = new Promise((r) => {
      release = r;
    });
    const inFlight = store.getJob(job);
    await new Promise((r) => setTimeout(r, 50));
    const next: JobRecord = { ...read, version: read.version + 1, pods: read.pods.slice() };
    next.pods[5] = { ...read.pods[5]!, lastSeenAt: 4_000_000 };
    await store.putJob(next);
    hold = undefined;
    release();
    const seen = (await inFlight)!;
    // the version the Query saw, whole: not its head with a part of the write that came after
    expect(seen.version).toBe(read.version);
    expect(seen).toEqual(read);
    expect(await store.getJob(job)).toEqual(JSON.parse(JSON.stringify(next)));
  });

  it('moves a full restart of every slot to a new base, deleting the old parts', async () => {
    const { table, store } = await newStore();
    const job = bigJob(600);
    await store.createJob(job);
    const next = structuredClone((await store.getJob(job))!);
    next.version += 1;
    next.generation += 1;
    next.pods = next.pods.map((s) => ({ ...s, name: `${s.name}-r`, podPhase: 'Pending', agent: undefined }));
    await store.putJob(next);
    expect(await (await newStore(table)).store.getJob(job)).toEqual(JSON.parse(JSON.stringify(next)));
    const bases = new Set(
      (await items(table, job))
        .map((i) => String(i.sk))
        .filter((sk) => sk.startsWith('P#S#'))
        .map((sk) => sk.split('#')[2]),
    );
    expect(bases.size).toBe(1);
  });

  it('lets one of two stores win a write of the same version; the loser re-reads the winner exactly', async () => {
    const { table, store: a } = await newStore();
    const { store: b } = await newStore(table);
    const job = bigJob(300);
    await a.createJob(job);
    const ra = (await a.getJob(job))!;
    const rb = (await b.getJob(job))!;
    const wa = { ...structuredClone(ra), version: 2, submittedBy: 'a' };
    wa.pods[10]!.lastSeenAt = 11;
    const wb = { ...structuredClone(rb), version: 2, submittedBy: 'b' };
    wb.pods[250]!.lastSeenAt = 22;
    await a.putJob(wa);
    await expect(b.putJob(wb)).rejects.toBeInstanceOf(ConcurrencyError);
    const seen = (await b.getJob(job))!;
    expect(seen).toEqual(wa);
    expect(seen.pods[250]!.lastSeenAt).toBe(ra.pods[250]!.lastSeenAt);
  });

  it('reports a job whose part is gone as corrupt, naming the part, after reading again in case a rebase was under way', async () => {
    const { table, store } = await newStore();
    const job = bigJob(20);
    await store.createJob(job);
    const slotPart = (await items(table, job)).find((i) => String(i.sk).startsWith('P#S#'))!;
    await client.send(new DeleteCommand({ TableName: table, Key: { pk: slotPart.pk, sk: slotPart.sk } }));
    const fresh = (await newStore(table)).store;
    const err = await fresh.getJob(job).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String(err)).toContain(String(slotPart.sk));
  });

  it('reads a record stored before the layout (one item) and rewrites it in parts on the next write', async () => {
    const { table, store } = await newStore();
    const job = bigJob(50);
    await client.send(
      new PutCommand({
        TableName: table,
        Item: {
          pk: `JOB#${job.namespace}/${job.name}`,
          sk: 'JOB',
          record: JSON.stringify(job),
          version: job.version,
        },
      }),
    );
    expect(await store.getJob(job)).toEqual(job);
    await store.putJob({ ...job, version: 2, phase: 'Restarting' });
    const head = (await items(table, job)).find((i) => i.sk === 'JOB')!;
    expect(head.record).toBeUndefined();
    expect((await (await newStore(table)).store.getJob(job))?.phase).toBe('Restarting');
  });
});
