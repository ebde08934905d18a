/**
 * The contract suite of the four store ports (`JobStore`, `Timeline`, `MetricStore`, `IdempotencyStore`,
 * core/ports.ts), one `describe` per port, run against every real DynamoDB we can start (DynamoDB Local,
 * dynalite) through `DynamoJobStore`, which implements all four. Each case gets a fresh table, so cases
 * never see each other's items.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoJobStore, ensureTable } from '../../../adapters/dynamo/store.ts';
import {
  MAX_NEW_RECORD_BYTES,
  MAX_RECORD_BYTES,
  RECORD_GROWTH_HEADROOM_BYTES,
} from '../../../core/decide/compact.ts';
import {
  AlreadyExistsError,
  ConcurrencyError,
  PermanentError,
  ValidationError,
} from '../../../core/errors.ts';
import type { JobEvent, JobPhase, JobRecord } from '../../../core/job.ts';
import type { JobSpec } from '../../../core/spec/types.ts';
import { type LocalDynamo, makeDocClient } from '../../support/dynamo.ts';

/** A minimal, valid job record (spec is a fixture: the store treats it as an opaque object). */
export function makeJob(
  overrides: Partial<JobRecord> & { namespace?: string; name?: string } = {},
): JobRecord {
  const namespace = overrides.namespace ?? 'team-a';
  const name = overrides.name ?? `job-${randomUUID().slice(0, 8)}`;
  const spec = {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    name,
    namespace,
    labels: {},
    annotations: {},
    nprocPerNode: 1,
    replicaSpecs: [],
    runPolicy: {},
    trainkeeper: {},
  } as unknown as JobSpec;
  return {
    namespace,
    name,
    uid: randomUUID(),
    spec,
    submittedBy: 'local',
    phase: 'Pending',
    conditions: [],
    generation: 0,
    pods: [
      {
        replica: 'worker',
        index: 0,
        name: `${name}-worker-0-g0`,
        podGeneration: 0,
        groupRank: 0,
        spare: false,
        podPhase: 'Pending',
      },
    ],
    restartStatus: { currentEvalPeriod: 0, restartCount: 0, fullJobRestartCount: 0 },
    restartCount: 0,
    processRestartCount: 0,
    nodeFaults: {},
    progress: { restartsWithoutProgress: 0 },
    remediations: [],
    ruleState: { generation: 0, rules: {} },
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    version: 1,
    ...overrides,
  };
}

const event = (at: number, reason: string, lifecycle?: string): JobEvent => ({
  at,
  type: 'Normal',
  reason,
  message: `${reason} at ${at}`,
  generation: 0,
  ...(lifecycle ? { lifecycle } : {}),
});

const byRef = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) =>
  `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);

/** Runs the store ports' contract against the DynamoDB behind `start()`. */
export function runStoreContract(label: string, start: () => Promise<LocalDynamo>): void {
  describe(`store ports contract on ${label}`, () => {
    let dynamo: LocalDynamo;
    let client: ReturnType<typeof makeDocClient>;
    let store: DynamoJobStore;
    let now = 1_700_000_000_000;

    // A JVM start (DynamoDB Local) on a loaded machine can take over a minute.
    beforeAll(async () => {
      dynamo = await start();
      client = makeDocClient(dynamo.endpoint);
    }, 120_000);
    afterAll(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    beforeEach(async () => {
      const tableName = `tk-${randomUUID().slice(0, 8)}`;
      await ensureTable(client, tableName);
      now = 1_700_000_000_000;
      store = new DynamoJobStore({ client, tableName, clock: { now: () => now } });
    });

    describe('JobStore', () => {
      it('creates a job and reads back exactly the record that was written', async () => {
        const job = makeJob({ nextCheckAt: 5, masterPort: 29500 });
        await store.createJob(job);
        expect(await store.getJob(job)).toEqual(job);
        expect(await store.getJob({ namespace: 'team-a', name: 'absent' })).toBeUndefined();
      });

      it('refuses to create a job whose name is taken with AlreadyExistsError', async () => {
        const job = makeJob();
        await store.createJob(job);
        await expect(store.createJob({ ...job, uid: 'other' })).rejects.toBeInstanceOf(AlreadyExistsError);
        expect((await store.getJob(job))?.uid).toBe(job.uid);
      });

      it('writes a job only when the stored version is the previous one, else ConcurrencyError', async () => {
        const job = makeJob();
        await store.createJob(job);
        await store.putJob({ ...job, phase: 'Running', version: 2 });
        await expect(store.putJob({ ...job, phase: 'Failed', version: 2 })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
        await expect(store.putJob({ ...job, version: 4 })).rejects.toBeInstanceOf(ConcurrencyError);
        const stored = await store.getJob(job);
        expect(stored?.phase).toBe('Running');
        expect(stored?.version).toBe(2);
      });

      it('treats a putJob for a job that does not exist as a concurrency conflict', async () => {
        await expect(store.putJob(makeJob({ version: 2 }))).rejects.toBeInstanceOf(ConcurrencyError);
      });

      it('lets exactly one of many concurrent writers of the same version win', async () => {
        const job = makeJob();
        await store.createJob(job);
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            store.putJob({ ...job, submittedBy: `writer-${i}`, version: 2 }),
          ),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(7);
        for (const r of lost) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
        const winner = results.findIndex((r) => r.status === 'fulfilled');
        expect((await store.getJob(job))?.submittedBy).toBe(`writer-${winner}`);
      });

      it('refuses a new record over MAX_NEW_RECORD_BYTES (ValidationError naming the size), so every stored record has room to grow', async () => {
        const fat = (bytes: number) => makeJob({ ruleState: { blob: 'x'.repeat(bytes) } });
        const over = fat(MAX_NEW_RECORD_BYTES);
        const err = await store.createJob(over).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).message).toMatch(/\d+ bytes; at most \d+/);
        expect(await store.getJob(over)).toBeUndefined();
        const under = fat(MAX_NEW_RECORD_BYTES - 4096);
        await store.createJob(under);
        // The stored record can take RECORD_GROWTH_HEADROOM_BYTES more and still be written.
        const grown = {
          ...under,
          version: 2,
          remediations: [],
          nodeFaults: { n: 1 },
          submittedBy: 'y'.repeat(RECORD_GROWTH_HEADROOM_BYTES),
        };
        await store.putJob(grown);
        expect((await store.getJob(under))?.version).toBe(2);
      });

      it('refuses a record past the size guard with a clear error and keeps the stored one', async () => {
        const job = makeJob();
        await store.createJob(job);
        const huge = { ...job, version: 2, ruleState: { blob: 'x'.repeat(MAX_RECORD_BYTES) } };
        await expect(store.putJob(huge)).rejects.toThrow(/over the .*-byte guard/);
        await expect(store.putJob(huge)).rejects.toBeInstanceOf(PermanentError);
        expect((await store.getJob(job))?.version).toBe(1);
      });

      it('reports a corrupt job item as an error naming the bad field, not a cast', async () => {
        const job = makeJob();
        await store.createJob(job);
        const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
        const tableName = (store as unknown as { table: string }).table;
        await client.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              pk: `JOB#${job.namespace}/${job.name}`,
              sk: 'JOB',
              version: 1,
              record: JSON.stringify({ ...job, phase: 'Exploded' }),
            },
          }),
        );
        await expect(store.getJob(job)).rejects.toThrow(/phase/);
      });

      it('lists jobs by namespace, by phase, by both and overall, page by page with an opaque cursor', async () => {
        const phases: JobPhase[] = ['Pending', 'Running', 'Succeeded'];
        const jobs = Array.from({ length: 9 }, (_, i) =>
          makeJob({ namespace: i % 2 ? 'team-b' : 'team-a', name: `job-${i}`, phase: phases[i % 3]! }),
        );
        for (const job of jobs) await store.createJob(job);

        const collect = async (query: { namespace?: string; phase?: JobPhase }, limit: number) => {
          const seen: JobRecord[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.listJobs({ ...query, limit, ...(cursor ? { cursor } : {}) });
            expect(page.jobs.length).toBeLessThanOrEqual(limit);
            seen.push(...page.jobs);
            cursor = page.cursor;
            pages++;
          } while (cursor && pages < 50);
          return seen;
        };
        const expected = (pred: (j: JobRecord) => boolean) => jobs.filter(pred).sort(byRef);

        expect((await collect({ namespace: 'team-a' }, 2)).sort(byRef)).toEqual(
          expected((j) => j.namespace === 'team-a'),
        );
        expect((await collect({ phase: 'Running' }, 2)).sort(byRef)).toEqual(
          expected((j) => j.phase === 'Running'),
        );
        expect((await collect({ namespace: 'team-b', phase: 'Pending' }, 1)).sort(byRef)).toEqual(
          expected((j) => j.namespace === 'team-b' && j.phase === 'Pending'),
        );
        const all = await collect({}, 4);
        expect(all).toHaveLength(9);
        expect(all.sort(byRef)).toEqual(expected(() => true));
      });

      it('follows a phase change in listJobs after putJob', async () => {
        const job = makeJob({ name: 'mover' });
        await store.createJob(job);
        await store.putJob({ ...job, phase: 'Running', version: 2 });
        expect((await store.listJobs({ phase: 'Pending' })).jobs).toEqual([]);
        expect(
          (await store.listJobs({ namespace: job.namespace, phase: 'Running' })).jobs.map((j) => j.name),
        ).toEqual(['mover']);
      });

      it('rejects a cursor it did not make with a ValidationError on the cursor field', async () => {
        const err = await store.listJobs({ cursor: 'bm90LWpzb24' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).issues[0]?.path).toBe('cursor');
      });

      it('rejects a real cursor passed to another query (namespace, phase, index) with a ValidationError, not a DynamoDB error', async () => {
        for (const [i, ns] of ['team-a', 'team-a', 'team-b'].entries()) {
          await store.createJob(makeJob({ namespace: ns, name: `cursor-${i}` }));
        }
        const page = await store.listJobs({ namespace: 'team-a', limit: 1 });
        expect(page.cursor).toBeDefined();
        const cursor = page.cursor as string;
        expect((await store.listJobs({ namespace: 'team-a', limit: 1, cursor })).jobs).toHaveLength(1);
        for (const query of [
          { namespace: 'team-b' },
          { namespace: 'team-a', phase: 'Running' as const },
          { phase: 'Pending' as const },
          {},
        ]) {
          const err = await store.listJobs({ ...query, cursor }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ValidationError);
          expect((err as ValidationError).issues[0]?.path).toBe('cursor');
        }
      });

      it('lists active jobs (never finished ones) and due jobs (finished ones too: their TTL delete) from their indexes', async () => {
        await store.createJob(makeJob({ name: 'running-due', phase: 'Running', nextCheckAt: 1000 }));
        await store.createJob(makeJob({ name: 'running-later', phase: 'Running', nextCheckAt: 5000 }));
        await store.createJob(makeJob({ name: 'pending-no-check', phase: 'Pending' }));
        await store.createJob(makeJob({ name: 'failed-due', phase: 'Failed', nextCheckAt: 10 }));
        const done = makeJob({ name: 'finishing', phase: 'Running', nextCheckAt: 20 });
        await store.createJob(done);
        await store.putJob({ ...done, phase: 'Succeeded', version: 2 });

        const names = (refs: { name: string }[]) => refs.map((r) => r.name).sort();
        expect(names(await store.listActiveJobs())).toEqual([
          'pending-no-check',
          'running-due',
          'running-later',
        ]);
        expect(names(await store.listDueJobs(9))).toEqual([]);
        expect(names(await store.listDueJobs(999))).toEqual(['failed-due', 'finishing']);
        expect(names(await store.listDueJobs(1000))).toEqual(['failed-due', 'finishing', 'running-due']);
        expect(names(await store.listDueJobs(10_000))).toEqual([
          'failed-due',
          'finishing',
          'running-due',
          'running-later',
        ]);
        expect(await store.listDueJobs(10_000, 1)).toEqual([{ namespace: 'team-a', name: 'failed-due' }]);
      });

      it('replaces a finished record only at the version it was read, deleting the old timeline', async () => {
        const done = makeJob({ name: 'reused', phase: 'Cancelled', version: 7 });
        await store.createJob(done);
        await store.appendEvents(done, [event(1, 'Old')]);
        const next = makeJob({ name: 'reused', phase: 'Pending', uid: 'new-uid' });
        await expect(store.replaceFinishedJob(next, done.version + 1)).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
        await store.replaceFinishedJob(next, done.version);
        expect((await store.getJob(next))?.uid).toBe('new-uid');
        expect(await store.listEvents(next)).toEqual([]);
        await expect(store.replaceFinishedJob(next, done.version)).rejects.toBeInstanceOf(ConcurrencyError);
      });

      it('deletes a job with its timeline, and deleting again is fine', async () => {
        const job = makeJob({ phase: 'Running', nextCheckAt: 1 });
        await store.createJob(job);
        await store.appendEvents(
          job,
          Array.from({ length: 30 }, (_, i) => event(i, `E${i}`)),
        );
        await store.deleteJob(job);
        expect(await store.getJob(job)).toBeUndefined();
        expect(await store.listEvents(job)).toEqual([]);
        expect(await store.listActiveJobs()).toEqual([]);
        expect(await store.listDueJobs(10)).toEqual([]);
        await store.deleteJob(job);
        await store.createJob(job);
        expect((await store.getJob(job))?.uid).toBe(job.uid);
      });
    });

    describe('Timeline', () => {
      it('appends events and lists them in time order, and only those after a given time', async () => {
        const ref = { namespace: 'team-a', name: 'timeline' };
        await store.appendEvents(ref, [event(300, 'C'), event(100, 'A', 'JobSubmitted')]);
        await store.appendEvents(ref, [event(200, 'B'), event(300, 'D')]);
        const all = await store.listEvents(ref);
        expect(all.map((e) => e.at)).toEqual([100, 200, 300, 300]);
        expect(all[0]).toEqual(event(100, 'A', 'JobSubmitted'));
        expect((await store.listEvents(ref, { after: 200 })).map((e) => e.reason).sort()).toEqual(['C', 'D']);
        expect((await store.listEvents(ref, { after: 100, limit: 1 })).map((e) => e.reason)).toEqual(['B']);
        expect(await store.listEvents({ namespace: 'team-a', name: 'other' })).toEqual([]);
      });

      it('rejects an invalid event with the path of the bad field', async () => {
        const bad = { ...event(1, 'A'), type: 'Loud' } as unknown as JobEvent;
        const err = await store
          .appendEvents({ namespace: 'a', name: 'b' }, [event(0, 'ok'), bad])
          .catch((e) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).issues[0]?.path).toBe('events.1');
      });
    });

    describe('MetricStore', () => {
      it('adds counters concurrently from many promises without losing an increment', async () => {
        const labelsA = { level: 'process', reason: 'WorkerCrash' };
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            store.incrementCounters([
              {
                name: 'trainkeeper_restarts_total',
                labels: i % 2 ? labelsA : { reason: 'WorkerCrash', level: 'process' },
                by: 1,
              },
              { name: 'trainkeeper_log_lines_evaluated_total', labels: {}, by: 10 },
              { name: 'trainkeeper_log_lines_evaluated_total', labels: {}, by: 5 },
            ]),
          ),
        );
        const totals = (await store.readCounters()).sort((a, b) => a.name.localeCompare(b.name));
        expect(totals).toEqual([
          { name: 'trainkeeper_log_lines_evaluated_total', labels: {}, value: 600 },
          { name: 'trainkeeper_restarts_total', labels: labelsA, value: 40 },
        ]);
      });

      it('keeps the newest gauge value even when an older observation arrives later', async () => {
        const name = 'hyperpod_training_operator_jobs_restart_latency';
        await store.setGauges([{ name, labels: { level: 'process' }, value: 4 }], 2000);
        await store.setGauges([{ name, labels: { level: 'process' }, value: 9 }], 1000);
        await store.setGauges([{ name, labels: {}, value: 1.5 }], 1000);
        const gauges = (await store.readGauges()).sort(
          (a, b) => Object.keys(a.labels).length - Object.keys(b.labels).length,
        );
        expect(gauges).toEqual([
          { name, labels: {}, value: 1.5 },
          { name, labels: { level: 'process' }, value: 4 },
        ]);
      });
    });

    describe('IdempotencyStore', () => {
      it('claims a key once, then reports the duplicate, until the claim expires', async () => {
        expect(await store.claimOnce('batch-1', 60)).toBe(true);
        expect(await store.claimOnce('batch-1', 60)).toBe(false);
        expect(await store.claimOnce('batch-2', 60)).toBe(true);
        now += 61_000;
        expect(await store.claimOnce('batch-1', 60)).toBe(true);
      });

      it('lets only one of many concurrent claims of the same key win', async () => {
        const results = await Promise.all(Array.from({ length: 10 }, () => store.claimOnce('dup', 60)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('claims a submission key for exactly one of many concurrent claimers; the others get its value', async () => {
        const ref = { namespace: 'team-a', name: 'j1' };
        const claims = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            store.claimIdempotencyKey('sub', { ref, bodyHash: `h${i}`, uid: `u${i}` }, 3600),
          ),
        );
        const winner = claims[0]!;
        expect(claims.every((c) => c.uid === winner.uid && c.bodyHash === winner.bodyHash)).toBe(true);
        expect(await store.getIdempotencyKey('sub')).toEqual(winner);
        now += 3601_000;
        const fresh = { ref, bodyHash: 'later', uid: 'u-later' };
        expect(await store.claimIdempotencyKey('sub', fresh, 3600)).toEqual(fresh);
      });

      it('records idempotency keys, accepts the same value again and refuses another body', async () => {
        const value = { ref: { namespace: 'team-a', name: 'j1' }, bodyHash: 'h1' };
        expect(await store.getIdempotencyKey('k1')).toBeUndefined();
        await store.putIdempotencyKey('k1', value, 3600);
        expect(await store.getIdempotencyKey('k1')).toEqual(value);
        await store.putIdempotencyKey('k1', value, 3600);
        await expect(
          store.putIdempotencyKey('k1', { ...value, bodyHash: 'h2' }, 3600),
        ).rejects.toBeInstanceOf(AlreadyExistsError);
        now += 3601_000;
        expect(await store.getIdempotencyKey('k1')).toBeUndefined();
        await store.putIdempotencyKey('k1', { ...value, bodyHash: 'h2' }, 3600);
        expect((await store.getIdempotencyKey('k1'))?.bodyHash).toBe('h2');
      });
    });
  });
}
