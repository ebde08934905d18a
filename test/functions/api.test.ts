import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
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
const post = (name: string, headers: Record<string, string> = {}, text = manifest(name, NAMESPACE)) =>
  api(apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json', ...headers } }));

describe('POST /jobs', () => {
  it('creates the job, its pods in the cluster and a JobSubmitted event, and answers 201 with the job document', async () => {
    const res = await post('submit-a');
    expect(res.statusCode).toBe(201);
    const doc = body(res);
    expect(doc.metadata).toMatchObject({ name: 'submit-a', namespace: NAMESPACE });
    expect(doc.metadata.submittedBy).toBe('arn:aws:sts::111122223333:assumed-role/ml-engineer/alice');
    expect(doc.status.phase).toBe('Pending');
    const pods = h.kube.store.list('pods', NAMESPACE).filter((p) => p.metadata.name.startsWith('submit-a-'));
    expect(pods).toHaveLength(2);
    const events = await h.store.listEvents({ namespace: NAMESPACE, name: 'submit-a' });
    expect(events.map((e) => e.lifecycle).filter(Boolean)).toContain('JobSubmitted');
  });

  it('accepts a YAML manifest by content type', async () => {
    const yaml = `apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata: {name: yaml-job, namespace: ${NAMESPACE}}
spec:
  replicaSpecs:
    - name: worker
      replicas: 1
      template:
        spec:
          containers: [{name: trainer, image: "python:3.12", command: [trainkeeper-agent, "--", python, train.py]}]
`;
    const res = await api(
      apiEvent('POST', '/jobs', { body: yaml, headers: { 'content-type': 'application/yaml' } }),
    );
    expect(res.statusCode).toBe(201);
  });

  it('answers the same job with 200 for a retry with the same Idempotency-Key and body, and 409 for another body', async () => {
    const first = await post('idem-a', { 'idempotency-key': 'k-1' });
    expect(first.statusCode).toBe(201);
    const again = await post('idem-a', { 'idempotency-key': 'k-1' });
    expect(again.statusCode).toBe(200);
    expect(body(again).metadata.uid).toBe(body(first).metadata.uid);
    const other = await post('idem-b', { 'idempotency-key': 'k-1' });
    expect(other.statusCode).toBe(409);
    expect(body(other).type).toMatch(/idempotency-key-reused$/);
    expect(await h.store.getJob({ namespace: NAMESPACE, name: 'idem-b' })).toBeUndefined();
  });

  it('completes a retry whose first attempt created the job but did not record the key', async () => {
    expect((await post('idem-crash')).statusCode).toBe(201);
    const retry = await post('idem-crash', { 'idempotency-key': 'k-crash' });
    expect(retry.statusCode).toBe(200);
    expect(
      await h.store.getIdempotencyKey('api#arn:aws:sts::111122223333:assumed-role/ml-engineer/alice#k-crash'),
    ).toMatchObject({ ref: { name: 'idem-crash' } });
    const someoneElse = await api(
      apiEvent('POST', '/jobs', {
        body: manifest('idem-crash', NAMESPACE),
        headers: { 'content-type': 'application/json', 'idempotency-key': 'k-other' },
        principal: 'arn:aws:sts::111122223333:assumed-role/ml-engineer/bob',
      }),
    );
    expect(someoneElse.statusCode).toBe(409);
  });

  it('refuses a second job with an existing name with a 409 problem document', async () => {
    expect((await post('dup-a')).statusCode).toBe(201);
    const res = await post('dup-a');
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(body(res)).toMatchObject({
      status: 409,
      title: 'Job exists',
      errors: [{ path: 'metadata.name' }],
    });
  });

  it('lists every one of 20 manifest errors with its field path in one 400', async () => {
    const text = manifest('many-errors', NAMESPACE, (m) => {
      (m.spec as { runPolicy: Record<string, unknown> }).runPolicy.logMonitoringConfiguration = Array.from(
        { length: 20 },
        (_, i) => ({ name: `rule${i}`, logPattern: '.*x.*', operator: 'bogus', metricThreshold: 1 }),
      );
    });
    const res = await post('many-errors', {}, text);
    expect(res.statusCode).toBe(400);
    const doc = body(res);
    expect(doc).toMatchObject({ status: 400, title: 'Invalid request' });
    const paths = new Set(doc.errors.map((e: { path: string }) => e.path));
    for (let i = 0; i < 20; i++)
      expect(paths).toContain(`spec.runPolicy.logMonitoringConfiguration[${i}].operator`);
    expect(doc.errors.length).toBeGreaterThanOrEqual(20);
  });

  it('rejects a body that is not JSON under a JSON content type with a 400 naming the body', async () => {
    const res = await post('broken', {}, '{"apiVersion": ');
    expect(res.statusCode).toBe(400);
    expect(body(res).errors[0].path).toBe('body');
  });

  it('forbids a namespace outside the allowed list with 403', async () => {
    const res = await post('elsewhere', {}, manifest('elsewhere', 'kube-system'));
    expect(res.statusCode).toBe(403);
    expect(body(res).errors[0].path).toBe('metadata.namespace');
  });

  it('rejects a privileged pod template at the baseline level with 400 and the field path', async () => {
    const text = manifest('privileged', NAMESPACE, (m) => {
      const spec = m.spec as {
        replicaSpecs: { template: { spec: { containers: Record<string, unknown>[] } } }[];
      };
      (spec.replicaSpecs[0]!.template.spec.containers[0] as Record<string, unknown>).securityContext = {
        privileged: true,
      };
    });
    const res = await post('privileged', {}, text);
    expect(res.statusCode).toBe(400);
    const doc = body(res);
    expect(doc.type).toMatch(/pod-security$/);
    expect(doc.errors.some((e: { path: string }) => e.path.includes('securityContext.privileged'))).toBe(
      true,
    );
  });

  it('answers 401 without an IAM principal outside local mode', async () => {
    const strict = makeHandler({ ...h.deps, config: { ...h.deps.config, mode: 'aws' } });
    const res = await strict(apiEvent('GET', '/jobs', { principal: null }));
    expect(res.statusCode).toBe(401);
  });
});

describe('reading jobs', () => {
  it('pages through the list with limit and cursor', async () => {
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let i = 0; i < 20; i++) {
      const res = await api(
        apiEvent(
          'GET',
          `/jobs?namespace=${NAMESPACE}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        ),
      );
      expect(res.statusCode).toBe(200);
      const page = body(res);
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const item of page.items) seen.add(item.metadata.name);
      cursor = page.cursor;
      if (!cursor) break;
    }
    expect(seen).toContain('submit-a');
    expect(seen).toContain('dup-a');
  });

  it('rejects an invalid query with the query field path', async () => {
    const res = await api(apiEvent('GET', '/jobs?limit=0&phase=Sleeping'));
    expect(res.statusCode).toBe(400);
    const paths = body(res).errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['query.limit', 'query.phase']));
  });

  it('returns the job document with HyperPod status names and RFC 3339 times', async () => {
    const res = await api(apiEvent('GET', `/jobs/${NAMESPACE}/submit-a`));
    expect(res.statusCode).toBe(200);
    const status = body(res).status;
    expect(status).toHaveProperty('restartCount', 0);
    expect(status.restartStatus).toHaveProperty('fullJobRestartCount', 0);
    expect(status.restartStatus.currentEvalPeriod).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(status.pods).toHaveLength(2);
    expect(status.budgets).toHaveProperty('processRestartsLeft');
  });

  it('answers 404 with a problem document for an unknown job and an unknown route', async () => {
    const missing = await api(apiEvent('GET', `/jobs/${NAMESPACE}/nope`));
    expect(missing.statusCode).toBe(404);
    expect(body(missing).type).toMatch(/job-not-found$/);
    expect((await api(apiEvent('GET', '/nothing'))).statusCode).toBe(404);
    expect((await api(apiEvent('PATCH', '/jobs'))).statusCode).toBe(405);
  });

  it('serves the timeline after a given event time', async () => {
    const all = body(await api(apiEvent('GET', `/jobs/${NAMESPACE}/submit-a/events`)));
    expect(all.items.length).toBeGreaterThan(0);
    expect(all.items[0]).toHaveProperty('time');
    const after = body(await api(apiEvent('GET', `/jobs/${NAMESPACE}/submit-a/events?after=${all.after}`)));
    expect(after.items).toEqual([]);
  });
});

describe('commands', () => {
  it('validates a restart body and names the bad field', async () => {
    const res = await api(
      apiEvent('POST', `/jobs/${NAMESPACE}/submit-a/restart`, {
        body: '{"level":"node"}',
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(res.statusCode).toBe(400);
    expect(body(res).errors[0].path).toBe('body.level');
  });

  it('replaces the rules from a YAML list and rejects an invalid list with rule paths', async () => {
    const bad = await api(
      apiEvent('PUT', `/jobs/${NAMESPACE}/submit-a/rules`, {
        body: '- name: Hang\n  logPattern: ".*step.*"\n  operator: bogus\n',
        headers: { 'content-type': 'application/yaml' },
      }),
    );
    expect(bad.statusCode).toBe(400);
    expect(body(bad).errors[0].path).toBe('rules[0].operator');
    const ok = await api(
      apiEvent('PUT', `/jobs/${NAMESPACE}/submit-a/rules`, {
        body: '- name: Hang\n  logPattern: ".*step.*"\n  expectedRecurringFrequencyInSeconds: 600\n',
        headers: { 'content-type': 'application/yaml' },
      }),
    );
    expect(ok.statusCode).toBe(200);
    const job = await h.store.getJob({ namespace: NAMESPACE, name: 'submit-a' });
    expect(job?.spec.runPolicy.logMonitoringConfiguration.map((r) => r.name)).toEqual(['Hang']);
  });

  it('cancels a job with DELETE and answers 202 with the cancelled job', async () => {
    const res = await api(apiEvent('DELETE', `/jobs/${NAMESPACE}/dup-a`));
    expect(res.statusCode).toBe(202);
    const job = await h.store.getJob({ namespace: NAMESPACE, name: 'dup-a' });
    expect(job === undefined || job.phase === 'Cancelled').toBe(true);
  });
});
