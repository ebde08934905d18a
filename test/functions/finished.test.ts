/**
 * Finished jobs through the handlers: `ttlSecondsAfterFinished` deletes the record and its timeline at the
 * sweep after completion + ttl; a finished job's name can be submitted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_NEW_RECORD_BYTES, MAX_RECORD_BYTES, unshardedBytes } from '../../core/decide/compact.ts';
import { makeHandler } from '../../functions/api.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { grow, runningRecord } from '../core/big-record.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  // DynamoDB Local: the big records here are stored in parts (dynalite, without transactions, keeps one item).
  h = await startHarness({}, { dynamo: 'dynamodb-local' });
  api = makeHandler(h.deps);
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const body = (res: ApiResponse) => JSON.parse(res.body);
const submit = (
  name: string,
  runPolicy: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) =>
  api(
    apiEvent('POST', '/jobs', {
      body: manifest(name, NAMESPACE, (m) => {
        const spec = m.spec as { runPolicy: Record<string, unknown> };
        spec.runPolicy = { ...spec.runPolicy, ...runPolicy };
      }),
      headers: { 'content-type': 'application/json', ...headers },
    }),
  );
const post = (text: string) =>
  api(apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }));
const cancel = (name: string) => api(apiEvent('DELETE', `/jobs/${NAMESPACE}/${name}`));
const ref = (name: string) => ({ namespace: NAMESPACE, name });

describe('ttlSecondsAfterFinished', () => {
  it('deletes a finished job and its timeline at the first sweep after completion + ttl, not before', async () => {
    expect((await submit('ttl-a', { ttlSecondsAfterFinished: 30 })).statusCode).toBe(201);
    expect((await cancel('ttl-a')).statusCode).toBe(202);
    const done = await h.store.getJob(ref('ttl-a'));
    expect(done?.phase).toBe('Cancelled');
    expect(done?.nextCheckAt).toBe((done?.completionTime ?? 0) + 30_000);

    const at = (offsetMs: number) => makeSweep({ ...h.deps, clock: { now: () => Date.now() + offsetMs } });
    await at(0)();
    expect((await h.store.getJob(ref('ttl-a')))?.phase).toBe('Cancelled');
    const swept = await at(31_000)();
    expect(swept.jobs.find((j) => j.ref.name === 'ttl-a')?.status).toBe('deleted');
    expect(await h.store.getJob(ref('ttl-a'))).toBeUndefined();
    expect(await h.store.listEvents(ref('ttl-a'))).toEqual([]);
  }, 60_000);

  it('keeps a finished job with the default ttl (0)', async () => {
    expect((await submit('ttl-keep')).statusCode).toBe(201);
    expect((await cancel('ttl-keep')).statusCode).toBe(202);
    await makeSweep({ ...h.deps, clock: { now: () => Date.now() + 365 * 86_400_000 } })();
    expect((await h.store.getJob(ref('ttl-keep')))?.phase).toBe('Cancelled');
  }, 60_000);
});

describe('jobs that must stay cancellable', () => {
  const withEnv = (name: string, bytes: number) =>
    manifest(name, NAMESPACE, (m) => {
      const spec = m.spec as {
        replicaSpecs: { template: { spec: { containers: Record<string, unknown>[] } } }[];
      };
      spec.replicaSpecs[0]!.template.spec.containers[0]!.env = [{ name: 'BLOB', value: 'a'.repeat(bytes) }];
    });

  it('refuses a job whose record would leave no room to grow, naming its size; one just under is accepted and cancels', async () => {
    const over = await post(withEnv('big-over', MAX_NEW_RECORD_BYTES));
    expect([400, 413]).toContain(over.statusCode);
    // Named by its size (the API's 413 record-too-large in KiB, or the store's 400 in bytes).
    expect(JSON.stringify(body(over).errors)).toMatch(/\d+(\.\d+)? (KiB|bytes)/);
    expect(await h.store.getJob(ref('big-over'))).toBeUndefined();

    const under = await post(withEnv('big-under', MAX_NEW_RECORD_BYTES - 8 * 1024));
    expect(under.statusCode).toBe(201);
    const cancelled = await cancel('big-under');
    expect(cancelled.statusCode).toBe(202);
    expect(body(cancelled).status.phase).toBe('Cancelled');
  }, 60_000);

  it('cancels a big job whose record grew to the store guard through many job-level restarts (202, Cancelled)', async () => {
    expect((await submit('big-grown')).statusCode).toBe(201);
    const stored = (await h.store.getJob(ref('big-grown')))!;
    // The same job at 300 pods on EKS-style nodes, every job-level restart remembered listing all of them.
    const spec = {
      ...stored.spec,
      replicaSpecs: stored.spec.replicaSpecs.map((r) => ({ ...r, replicas: 300, spares: 0 })),
    };
    const first = { ...runningRecord(spec), uid: stored.uid, createdAt: stored.createdAt };
    expect(unshardedBytes(first)).toBeLessThan(MAX_NEW_RECORD_BYTES);
    let restarts = 1;
    while (unshardedBytes(grow(first, { restarts: restarts + 1 })) <= MAX_RECORD_BYTES) restarts++;
    const big = grow(first, { restarts });
    // Filled to 24 bytes under the guard: what a cancel adds (its condition, its command id) cannot fit.
    big.remediations.at(-1)!.message += 'm'.repeat(MAX_RECORD_BYTES - 24 - unshardedBytes(big));
    big.version = stored.version + 1;
    expect(unshardedBytes(big)).toBe(MAX_RECORD_BYTES - 24);
    await h.store.putJob(big);

    const cancelled = await cancel('big-grown');
    expect(cancelled.statusCode).toBe(202);
    expect(body(cancelled).status.phase).toBe('Cancelled');
    const after = (await h.store.getJob(ref('big-grown')))!;
    expect(after.phase).toBe('Cancelled');
    expect(unshardedBytes(after)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    // History was trimmed, not the job: the newest remediations stay, their lists cut to counts.
    expect(after.remediations.at(-1)).toMatchObject({
      generation: restarts,
      counts: { pods: 300, ranks: 300, nodes: 300 },
    });
    expect(after.spec).toEqual(big.spec);
  }, 60_000);

  it.each(['json', 'yaml'] as const)(
    'refuses a %s manifest nested hundreds of levels under template.spec with a 400, so no job exists that cannot be cancelled',
    async (format) => {
      const name = `deep-${format}`;
      const deep = (n: number): unknown => (n === 0 ? 'x' : { a: deep(n - 1) });
      const m = JSON.parse(manifest(name, NAMESPACE));
      m.spec.replicaSpecs[0].template.spec.extra = deep(format === 'json' ? 2000 : 300);
      const text = format === 'json' ? JSON.stringify(m) : yamlFlow(m);
      const res = await api(
        apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': `application/${format}` } }),
      );
      expect(res.statusCode).toBe(400);
      expect(await h.store.getJob(ref(name))).toBeUndefined();
      expect((await cancel(name)).statusCode).toBe(404);
    },
  );
});

/** YAML in flow style (JSON is YAML; written by hand so deep nesting needs no YAML library recursion). */
const yamlFlow = (value: unknown): string => `# yaml\n${JSON.stringify(value)}\n`;
