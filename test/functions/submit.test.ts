/**
 * POST /jobs under concurrency, on DynamoDB Local (dynalite without Java): one Idempotency-Key creates at
 * most one job whatever arrives at once; a finished job's name can be submitted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
import { hasJava } from '../support/dynamo.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  h = await startHarness({}, { dynamo: hasJava() ? 'dynamodb-local' : 'dynalite' });
  api = makeHandler(h.deps);
}, 60_000);
afterAll(async () => {
  await h?.stop();
});

const body = (res: ApiResponse) => JSON.parse(res.body);
const post = (text: string, headers: Record<string, string> = {}) =>
  api(apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json', ...headers } }));
const jobsNamed = async (prefix: string) =>
  (await h.store.listJobs({ namespace: NAMESPACE, limit: 500 })).jobs.filter((j) =>
    j.name.startsWith(prefix),
  );

describe('Idempotency-Key under concurrency', () => {
  it('creates one job for 8 concurrent submissions with one key and different bodies; the others are 409', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(manifest(`race-diff-${i}`, NAMESPACE), { 'idempotency-key': 'k-race' }),
      ),
    );
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    for (const a of answers.filter((x) => x.statusCode !== 201)) {
      expect(a.statusCode).toBe(409);
      expect(body(a).type).toMatch(/idempotency-key-reused$/);
    }
    expect(await jobsNamed('race-diff-')).toHaveLength(1);
    const pods = h.kube.store.list('pods', NAMESPACE).filter((p) => p.metadata.name.startsWith('race-diff-'));
    expect(pods).toHaveLength(2);
  }, 60_000);

  it('answers 8 concurrent submissions with one key and one body with the same job (one 201, the rest 200)', async () => {
    const text = manifest('race-same', NAMESPACE);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => post(text, { 'idempotency-key': 'k-same' })),
    );
    const codes = answers.map((a) => a.statusCode).sort();
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    for (const c of codes) expect([200, 201]).toContain(c);
    expect(new Set(answers.map((a) => body(a).metadata.uid)).size).toBe(1);
    expect(await jobsNamed('race-same')).toHaveLength(1);
  }, 60_000);

  it('keeps one generateName submission per key: a retry gets the generated name of the first', async () => {
    const text = manifest('ignored', NAMESPACE, (m) => {
      m.metadata = { generateName: 'gen-', namespace: NAMESPACE };
    });
    const first = await post(text, { 'idempotency-key': 'k-gen' });
    expect(first.statusCode).toBe(201);
    const again = await post(text, { 'idempotency-key': 'k-gen' });
    expect(again.statusCode).toBe(200);
    expect(body(again).metadata).toMatchObject({
      name: body(first).metadata.name,
      uid: body(first).metadata.uid,
    });
    expect(await jobsNamed('gen-')).toHaveLength(1);
  }, 60_000);
});

describe('name reuse', () => {
  it('replaces a finished job with a new submission of its name: new uid, a timeline of its own', async () => {
    const first = await post(manifest('reuse-a', NAMESPACE));
    expect(first.statusCode).toBe(201);
    expect((await api(apiEvent('DELETE', `/jobs/${NAMESPACE}/reuse-a`))).statusCode).toBe(202);
    const second = await post(manifest('reuse-a', NAMESPACE));
    expect(second.statusCode).toBe(201);
    expect(body(second).metadata.uid).not.toBe(body(first).metadata.uid);
    expect(body(second).status.phase).toBe('Pending');
    const events = await h.store.listEvents({ namespace: NAMESPACE, name: 'reuse-a' });
    expect(events.filter((e) => e.lifecycle === 'JobSubmitted')).toHaveLength(1);
    expect(events.filter((e) => e.lifecycle === 'JobCancelled')).toHaveLength(0);
  }, 60_000);

  it('refuses a submission of the name of a job that is not finished with 409 job-exists', async () => {
    expect((await post(manifest('reuse-b', NAMESPACE))).statusCode).toBe(201);
    const again = await post(manifest('reuse-b', NAMESPACE));
    expect(again.statusCode).toBe(409);
    expect(body(again).type).toMatch(/job-exists$/);
  }, 60_000);

  it('lets one of 6 concurrent resubmissions of a finished name replace it; the others get 409 or 503', async () => {
    expect((await post(manifest('reuse-c', NAMESPACE))).statusCode).toBe(201);
    expect((await api(apiEvent('DELETE', `/jobs/${NAMESPACE}/reuse-c`))).statusCode).toBe(202);
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(manifest('reuse-c', NAMESPACE))));
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    for (const c of codes.filter((x) => x !== 201)) expect([409, 503]).toContain(c);
    const winner = answers.find((a) => a.statusCode === 201)!;
    expect((await h.store.getJob({ namespace: NAMESPACE, name: 'reuse-c' }))?.uid).toBe(
      body(winner).metadata.uid,
    );
  }, 60_000);
});
