/**
 * Bad input gets a clear 4xx from the `api` handler, never a 500 or a thrown error: body caps, deep and
 * duplicate-key JSON, bad paths, forged cursors, wrongly typed pod-security fields, records too big to
 * store. Against the real handler on dynalite and the local Kubernetes API (harness.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_NEW_RECORD_BYTES, MAX_RECORD_BYTES } from '../../core/decide/compact.ts';
import { makeHandler } from '../../functions/api.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
import { MAX_BODY_BYTES, MAX_BODY_DEPTH } from '../../functions/shell/http.ts';
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
const JSON_TYPE = { 'content-type': 'application/json' };
const postJson = (text: string) => api(apiEvent('POST', '/jobs', { body: text, headers: JSON_TYPE }));
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A manifest with a template field nested `depth` objects deep, as JSON text (built without recursion). */
const deepManifest = (name: string, depth: number) =>
  manifest(name, NAMESPACE).replace(
    '"containers":',
    `"deep":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)},"containers":`,
  );

describe('bodies', () => {
  it('answers 413 payload-too-large for a body over the 1 MiB cap, plain or base64', async () => {
    const big = manifest('big-body', NAMESPACE, (m) => {
      (m.metadata as Record<string, unknown>).annotations = { a: 'x'.repeat(MAX_BODY_BYTES) };
    });
    const plain = await postJson(big);
    expect(plain.statusCode).toBe(413);
    expect(body(plain)).toMatchObject({ status: 413, errors: [{ path: 'body' }] });
    expect(body(plain).type).toMatch(/payload-too-large$/);
    const event = apiEvent('POST', '/jobs', {
      body: Buffer.from(big).toString('base64'),
      headers: JSON_TYPE,
    });
    event.isBase64Encoded = true;
    expect((await api(event)).statusCode).toBe(413);
  });

  it('refuses JSON nested deeper than the cap with 400 and the path where it gets too deep', async () => {
    const res = await postJson(deepManifest('deep-json', 5000));
    expect(res.statusCode).toBe(400);
    const [issue] = body(res).errors;
    expect(issue.message).toBe(`nested deeper than ${MAX_BODY_DEPTH} levels`);
    expect(issue.path).toMatch(/^body\.spec\.replicaSpecs\[0\]\.template\.spec\.deep(\.a)+$/);
    const lists = await postJson(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(lists.statusCode).toBe(400);
  });

  it('refuses a flow-style YAML manifest nested 2,000 deep with 400 naming the depth and the line, not a stack overflow', async () => {
    const m = JSON.parse(manifest('deep-flow-yaml', NAMESPACE));
    const text = `# yaml\n${JSON.stringify(m).replace('"containers":', `"deep":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)},"containers":`)}\n`;
    const res = await api(
      apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/yaml' } }),
    );
    expect(res.statusCode).toBe(400);
    const [issue] = body(res).errors;
    expect(issue.message).toMatch(
      new RegExp(`^nested deeper than ${MAX_BODY_DEPTH} levels at line 2, column \\d+$`),
    );
    expect(await h.store.getJob({ namespace: NAMESPACE, name: 'deep-flow-yaml' })).toBeUndefined();
    expect((await postJson(manifest('deep-flow-rules', NAMESPACE))).statusCode).toBe(201);
    const rules = await api(
      apiEvent('PUT', `/jobs/${NAMESPACE}/deep-flow-rules/rules`, {
        body: `- ${'{a: '.repeat(800)}1${'}'.repeat(800)}`,
        headers: { 'content-type': 'application/yaml' },
      }),
    );
    expect(rules.statusCode).toBe(400);
    expect(body(rules).errors[0]).toEqual({
      path: 'body',
      message: `nested deeper than ${MAX_BODY_DEPTH} levels at line 1, column ${2 + 4 * 99 + 1}`,
    });
  });

  it('refuses deep YAML rule lists with 400', async () => {
    expect((await postJson(manifest('rules-target', NAMESPACE))).statusCode).toBe(201);
    for (const text of [
      `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
      `- ${'{a: '.repeat(150)}1${'}'.repeat(150)}`,
    ]) {
      const res = await api(
        apiEvent('PUT', `/jobs/${NAMESPACE}/rules-target/rules`, {
          body: text,
          headers: { 'content-type': 'application/yaml' },
        }),
      );
      expect(res.statusCode).toBe(400);
      expect(body(res).errors[0].path).toMatch(/^body/);
    }
  });

  it('refuses YAML whose aliases make a cycle with 400 instead of overflowing the stack', async () => {
    const manifestYaml = (name: string, spec: string) =>
      `apiVersion: sagemaker.amazonaws.com/v1\nkind: HyperPodPyTorchJob\nmetadata: {name: ${name}, namespace: ${NAMESPACE}}\nspec:\n  replicaSpecs:\n    - name: worker\n      replicas: 1\n      template:\n        spec: ${spec}\n`;
    for (const text of [
      'a: &a [*a]',
      manifestYaml('cyclic-template', '&s {containers: [{name: t, image: i}], loop: *s}'),
    ]) {
      const res = await api(
        apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/yaml' } }),
      );
      expect(res.statusCode).toBe(400);
    }
    expect(await h.store.getJob({ namespace: NAMESPACE, name: 'cyclic-template' })).toBeUndefined();
  });

  it('refuses a JSON body with a duplicate key, naming its path, as the YAML parser does', async () => {
    const text = manifest('dup-keys', NAMESPACE).replace(
      '"containers":',
      '"hostNetwork":false,"hostNetwork":true,"containers":',
    );
    const res = await postJson(text);
    expect(res.statusCode).toBe(400);
    expect(body(res).errors).toEqual([
      {
        path: 'body.spec.replicaSpecs[0].template.spec.hostNetwork',
        message: expect.stringMatching(/duplicate key/),
      },
    ]);
    expect(await h.store.getJob({ namespace: NAMESPACE, name: 'dup-keys' })).toBeUndefined();
    // the same key spelled with an escape is the same key
    const escaped = await postJson(
      manifest('dup-escaped', NAMESPACE).replace('{', '{"kind":"X","\\u006bind":"Y",'),
    );
    expect(body(escaped).errors[0].path).toBe('body.kind');
    const restart = await api(
      apiEvent('POST', `/jobs/${NAMESPACE}/rules-target/restart`, {
        body: '{"level":"job","level":"process"}',
        headers: JSON_TYPE,
      }),
    );
    expect(restart.statusCode).toBe(400);
    expect(body(restart).errors[0].path).toBe('body.level');
  });

  it('refuses hostNetwork: "true" with the field path instead of letting it past the baseline check', async () => {
    const text = manifest('hostnet-string', NAMESPACE, (m) => {
      const spec = m.spec as { replicaSpecs: { template: { spec: Record<string, unknown> } }[] };
      spec.replicaSpecs[0]!.template.spec.hostNetwork = 'true';
    });
    const res = await postJson(text);
    expect(res.statusCode).toBe(400);
    expect(body(res).errors[0]).toMatchObject({ path: 'spec.replicaSpecs[0].template.spec.hostNetwork' });
  });
});

describe('records too big to store', () => {
  it('answers 413 record-too-large naming the biggest parts, largest first, instead of a 500', async () => {
    const text = manifest('huge-record', NAMESPACE, (m) => {
      (m.metadata as Record<string, unknown>).annotations = { notes: 'n'.repeat(150_000) };
      const spec = m.spec as { replicaSpecs: { template: Record<string, unknown> }[] };
      spec.replicaSpecs[0]!.template.metadata = { annotations: { blob: 'b'.repeat(250_000) } };
    });
    const res = await postJson(text);
    expect(res.statusCode).toBe(413);
    const doc = body(res);
    expect(doc.type).toMatch(/record-too-large$/);
    expect(doc.errors.map((e: { path: string }) => e.path).slice(0, 3)).toEqual([
      'record',
      'spec.replicaSpecs[0].template.metadata.annotations',
      'metadata.annotations',
    ]);
    expect(doc.errors[1].message).toMatch(/^1 pod annotations: 244\.\d KiB \(\d+% of the record\)$/);
    expect(await h.store.getJob({ namespace: NAMESPACE, name: 'huge-record' })).toBeUndefined();
  });

  it('answers 413 naming the rule list and its count when new rules would not fit the record', async () => {
    expect((await postJson(manifest('many-rules', NAMESPACE))).statusCode).toBe(201);
    const rules = Array.from({ length: 900 }, (_, i) => ({
      name: `Rule${i}`,
      logPattern: `.*${'x'.repeat(400)}${i}.*`,
      faultOnMatch: true,
    }));
    const res = await api(
      apiEvent('PUT', `/jobs/${NAMESPACE}/many-rules/rules`, {
        body: JSON.stringify(rules),
        headers: JSON_TYPE,
      }),
    );
    expect(res.statusCode).toBe(413);
    expect(body(res).errors[1]).toMatchObject({
      path: 'spec.runPolicy.logMonitoringConfiguration',
      message: expect.stringMatching(/^900 log rules: /),
    });
    expect((await api(apiEvent('GET', `/jobs/${NAMESPACE}/many-rules`))).statusCode).toBe(200);
  });

  it('answers 413 for rules that fit the store guard but not the growth headroom a new record keeps, and 200 for rules that do', async () => {
    expect((await postJson(manifest('headroom-rules', NAMESPACE))).statusCode).toBe(201);
    const ref = { namespace: NAMESPACE, name: 'headroom-rules' };
    const before = (await h.store.getJob(ref))!;
    const rulesOf = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        name: `Rule${i}`,
        logPattern: `.*${'x'.repeat(400)}${i}.*`,
        faultOnMatch: true,
      }));
    const put = (count: number) =>
      api(
        apiEvent('PUT', `/jobs/${NAMESPACE}/headroom-rules/rules`, {
          body: JSON.stringify(rulesOf(count)),
          headers: JSON_TYPE,
        }),
      );
    // 600 such rules take ~290 KB: over MAX_NEW_RECORD_BYTES, under MAX_RECORD_BYTES.
    const recordBytes =
      Buffer.byteLength(JSON.stringify(before)) + Buffer.byteLength(JSON.stringify(rulesOf(600)));
    expect(recordBytes).toBeGreaterThan(MAX_NEW_RECORD_BYTES);
    expect(recordBytes).toBeLessThan(MAX_RECORD_BYTES);
    const res = await put(600);
    expect(res.statusCode).toBe(413);
    expect(body(res).errors[0].message).toContain(`over the ${(MAX_NEW_RECORD_BYTES / 1024).toFixed(1)} KiB`);
    expect((await h.store.getJob(ref))!.spec.runPolicy.logMonitoringConfiguration).toEqual(
      before.spec.runPolicy.logMonitoringConfiguration,
    );
    expect((await put(100)).statusCode).toBe(200);
  });
});

describe('paths and queries', () => {
  it('answers 400 for bad percent-encoding in the path instead of throwing', async () => {
    for (const path of ['/jobs/%E0%A4%A/x', `/jobs/${NAMESPACE}/%ZZ`, '/jobs/%']) {
      const res = await api(apiEvent('GET', path));
      expect(res.statusCode).toBe(400);
      expect(body(res).errors[0].message).toBe('bad percent-encoding');
    }
  });

  it('answers 400 for a 5,000-character path segment, naming its length', async () => {
    for (const path of [`/jobs/${'a'.repeat(5000)}/x`, `/jobs/${NAMESPACE}/${'a'.repeat(5000)}`]) {
      for (const method of ['GET', 'DELETE']) {
        const res = await api(apiEvent(method, path));
        expect(res.statusCode).toBe(400);
        expect(body(res).errors[0].message).toMatch(/^5000 characters: longer than any Kubernetes name/);
      }
    }
  });

  it.each([
    ['not base64 JSON', 'zzzz'],
    ['a key of another shape', cursorOf({ k: { pk: 5 } })],
    ['a key of another index', cursorOf({ p: 2, k: { foo: 'x' } })],
    ['a phase past the last', cursorOf({ p: 1e9 })],
    ['an empty key value', cursorOf({ p: 0, k: { pk: '', sk: '', gsiPhase: 'Pending', gsiPhaseSk: '' } })],
    [
      'a key from another phase',
      cursorOf({ p: 0, k: { pk: 'a', sk: 'b', gsiPhase: 'Failed', gsiPhaseSk: 'x' } }),
    ],
  ])('answers 400 invalid cursor for a cursor that decodes to %s', async (_what, cursor) => {
    const res = await api(apiEvent('GET', `/jobs?cursor=${cursor}`));
    expect(res.statusCode).toBe(400);
    expect(body(res)).toMatchObject({ detail: 'invalid cursor', errors: [{ path: 'cursor' }] });
  });

  it('answers 400 for a namespace cursor whose key is outside the queried namespace or phase', async () => {
    const other = cursorOf({ k: { pk: 'JOB#x/y', sk: 'JOB', gsiNs: 'other', gsiNsSk: 'Pending#y' } });
    expect((await api(apiEvent('GET', `/jobs?namespace=${NAMESPACE}&cursor=${other}`))).statusCode).toBe(400);
    const phase = cursorOf({ k: { pk: 'JOB#x/y', sk: 'JOB', gsiNs: NAMESPACE, gsiNsSk: 'Failed#y' } });
    expect(
      (await api(apiEvent('GET', `/jobs?namespace=${NAMESPACE}&phase=Pending&cursor=${phase}`))).statusCode,
    ).toBe(400);
  });
});
