/**
 * Finished jobs through the handlers: `ttlSecondsAfterFinished` deletes the record and its timeline at the
 * sweep after completion + ttl; a finished job's name can be submitted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  h = await startHarness();
  api = makeHandler(h.deps);
});
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
