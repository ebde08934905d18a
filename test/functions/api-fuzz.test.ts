/**
 * Fuzzes the `api` handler's routes with fast-check: generated methods, paths (percent-encoding, long and
 * odd segments), query strings, headers, bodies (manifests with a field replaced by anything, JSON, YAML,
 * garbage, deep nesting, duplicate keys, huge numbers) and the base64 flag. For every input the handler
 * must answer (never throw), never with a 5xx, and every 4xx must be a well-formed problem document; after
 * the run `GET /jobs` still answers 200. Against the real handler on dynalite and the local Kubernetes API.
 *
 * Bounded and seedable: `TK_FUZZ_RUNS` (default 250) and `TK_FUZZ_SEED` (default fixed, so CI is
 * repeatable; a failure prints the seed and the shrunk counterexample to replay).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_BASE } from '../../core/api/documents.ts';
import { makeHandler } from '../../functions/api.ts';
import type { ApiGatewayV2Event, ApiResponse } from '../../functions/shell/http.ts';
import { apiEvent, fixtureJson, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

const RUNS = Number(process.env.TK_FUZZ_RUNS ?? 250);
const SEED = Number(process.env.TK_FUZZ_SEED ?? 20261205);
const TARGET = 'fuzz-target';

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  h = await startHarness();
  api = makeHandler(h.deps);
  const res = await api(
    apiEvent('POST', '/jobs', {
      body: manifest(TARGET, NAMESPACE),
      headers: { 'content-type': 'application/json' },
    }),
  );
  expect(res.statusCode).toBe(201);
});
afterAll(async () => {
  await h?.stop();
});

// --- paths -------------------------------------------------------------------------------------------

const oddSegment = fc.oneof(
  fc.constantFrom(
    '%',
    '%Z',
    '%ZZ',
    '%E0%A4%A',
    '%C0%AF',
    '%00',
    '%2F',
    '%2e%2e',
    '..',
    '.',
    '%ff%fe',
    '~',
    '*',
  ),
  fc.nat({ max: 6000 }).map((n) => 'a'.repeat(n)),
  fc.nat({ max: 400 }).map((n) => '%41'.repeat(n)),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }).map((s) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return s; // a lone surrogate: send it raw
    }
  }),
);
const segment = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('jobs', NAMESPACE, TARGET, 'default', 'events', 'restart', 'rules'),
  },
  { weight: 2, arbitrary: oddSegment },
);
const path = fc.oneof(
  fc.constantFrom(
    '/jobs',
    `/jobs/${NAMESPACE}/${TARGET}`,
    `/jobs/${NAMESPACE}/${TARGET}/events`,
    `/jobs/${NAMESPACE}/${TARGET}/restart`,
    `/jobs/${NAMESPACE}/${TARGET}/rules`,
  ),
  fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`),
  fc
    .tuple(fc.array(segment, { maxLength: 5 }), fc.constantFrom('/', '//', ''))
    .map(([s, end]) => `/${s.join('//')}${end}`),
);

// --- queries -----------------------------------------------------------------------------------------

const cursorOf = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const queryValue = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1',
    '50',
    '500',
    '501',
    '1e400',
    'NaN',
    '0x10',
    '1.5',
    '9'.repeat(400),
    '%',
    '%ZZ',
  ),
  fc.constantFrom('Pending', 'Running', 'Sleeping', NAMESPACE, 'kube-system'),
  fc.string({ maxLength: 30 }),
  fc.jsonValue({ maxDepth: 3 }).map(cursorOf),
  fc
    .record({
      p: fc.integer(),
      k: fc.dictionary(
        fc.constantFrom('pk', 'sk', 'gsiNs', 'gsiNsSk', 'gsiPhase', 'gsiPhaseSk', 'x'),
        fc.jsonValue({ maxDepth: 1 }),
      ),
    })
    .map(cursorOf),
);
const query = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('namespace', 'phase', 'limit', 'cursor', 'after'),
        fc.string({ maxLength: 8 }),
      ),
      queryValue,
    ),
    { maxLength: 5 },
  )
  .chain((pairs) =>
    fc
      .boolean()
      .map((raw) =>
        pairs
          .map(([k, v]) => (raw ? `${k}=${v}` : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
          .join('&'),
      ),
  );

// --- bodies ------------------------------------------------------------------------------------------

const MANIFEST_PATHS = [
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['metadata', 'labels'],
  ['metadata', 'annotations'],
  ['metadata', 'generateName'],
  ['spec', 'nprocPerNode'],
  ['spec', 'replicaSpecs'],
  ['spec', 'replicaSpecs', 0, 'replicas'],
  ['spec', 'replicaSpecs', 0, 'template'],
  ['spec', 'replicaSpecs', 0, 'template', 'metadata'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'hostNetwork'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'securityContext'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'volumes'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'containers'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'containers', 0, 'securityContext'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'containers', 0, 'ports'],
  ['spec', 'runPolicy'],
  ['spec', 'runPolicy', 'logMonitoringConfiguration'],
  ['spec', 'runPolicy', 'logMonitoringConfiguration', 0, 'logPattern'],
  ['spec', 'runPolicy', 'restartPolicy'],
  ['spec', 'elasticPolicy'],
  ['spec', 'trainkeeper'],
] as const;

/** A JSON text nested `depth` levels (written as text: building the value would recurse to print it). */
const deepText = fc
  .tuple(fc.integer({ min: 50, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => `${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`);

const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom('true', 'false', '0', '', null, 1e308, -1, 2 ** 53 + 1, -0, [], {}, [{}], 'x'.repeat(300)),
  fc.constantFrom({ privileged: 'true' }, { runAsUser: '0' }, [{ name: 'h', hostPath: { path: '/' } }], {
    hostPath: {},
  }),
);

const mutatedManifest = fc
  .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.constantFrom(...MANIFEST_PATHS), oddValue)
  .map(([name, at, value]) => {
    const m = fixtureJson('manifests/minimal.json') as Record<string, unknown>;
    m.metadata = { name: `fz-${name}`, namespace: NAMESPACE };
    let node = m as Record<string | number, unknown>;
    for (const key of at.slice(0, -1)) {
      if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
      node = node[key] as Record<string | number, unknown>;
    }
    node[at.at(-1) as string | number] = value;
    return JSON.stringify(m);
  });

const body = fc.oneof(
  { weight: 4, arbitrary: mutatedManifest },
  {
    weight: 1,
    arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).map((n) => manifest(`ok-${n}`, NAMESPACE)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: deepText },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"level":"job","level":"process"}',
      '{"level":"process"}',
      '{"a":1,"a":2}',
      '{"a":{"b":1,"\\u0062":2}}',
      '[{"name":"R","logPattern":".*x.*","faultOnMatch":true,"faultOnMatch":false}]',
      '- name: R\n  logPattern: ".*x.*"\n  name: S\n',
      '- name: R\n  logPattern: "(a+)+$"\n  faultOnMatch: true\n',
      'a: &a [*a]',
      'a: &x {b: *x}',
      '{"replicas": 1e400}',
      `{"n": ${'9'.repeat(5000)}}`,
      '\u0000\uffff',
      '---\n---\n',
      '%YAML 1.1\n---\n!!binary AAAA',
      '',
      ' ',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
);

const contentType = fc.constantFrom(
  'application/json',
  'application/yaml',
  'text/plain',
  'application/merge-patch+json',
  'multipart/form-data; boundary=x',
  'json',
  '',
);

/** Anything, anywhere. */
const anyRequest = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE') },
    { weight: 1, arbitrary: fc.constantFrom('PATCH', 'HEAD', 'OPTIONS', 'get', 'TRACE', '', 'P O S T') },
  ),
  path,
  query,
  body,
  contentType,
  idempotencyKey: fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
  extraHeaders: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 50 }), {
    maxKeys: 3,
  }),
  base64: fc.constantFrom('no', 'no', 'no', 'yes', 'garbage'),
});

/** A body aimed at the route that reads it, so deep, duplicate-key and odd bodies reach the parsers. */
const aimedRequest = fc
  .tuple(
    fc.constantFrom(
      ['POST', '/jobs'],
      ['PUT', `/jobs/${NAMESPACE}/${TARGET}/rules`],
      ['POST', `/jobs/${NAMESPACE}/${TARGET}/restart`],
      ['GET', '/jobs'],
      ['GET', `/jobs/${NAMESPACE}/${TARGET}/events`],
    ),
    query,
    body,
    fc.constantFrom('application/json', 'application/yaml'),
    fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    fc.constantFrom('no', 'no', 'yes'),
  )
  .map(([[method, path], query, body, contentType, idempotencyKey, base64]) => ({
    method,
    path,
    query,
    body,
    contentType,
    idempotencyKey,
    extraHeaders: {} as Record<string, string>,
    base64,
  }));

const request = fc.oneof(anyRequest, aimedRequest);

type Request = typeof anyRequest extends fc.Arbitrary<infer T> ? T : never;

function eventOf(r: Request): ApiGatewayV2Event {
  const event = apiEvent(r.method, `${r.path}${r.query ? `?${r.query}` : ''}`, {
    body: r.body,
    headers: {
      ...r.extraHeaders,
      'content-type': r.contentType,
      ...(r.idempotencyKey !== undefined ? { 'idempotency-key': r.idempotencyKey } : {}),
    },
  });
  if (r.base64 !== 'no') {
    event.isBase64Encoded = true;
    event.body = r.base64 === 'yes' ? Buffer.from(r.body).toString('base64') : r.body;
  }
  return event;
}

/** The problem document contract (functions/README.md): every 4xx is one, `status` equal to the code. */
function expectProblem(res: ApiResponse): void {
  expect(res.headers['content-type']).toBe('application/problem+json');
  const doc = JSON.parse(res.body);
  expect(doc.type.startsWith(PROBLEM_BASE)).toBe(true);
  expect(doc.type.length).toBeGreaterThan(PROBLEM_BASE.length);
  expect(doc.status).toBe(res.statusCode);
  expect(typeof doc.title).toBe('string');
  expect(typeof doc.detail).toBe('string');
  expect(Array.isArray(doc.errors)).toBe(true);
  for (const issue of doc.errors) {
    expect(typeof issue.path).toBe('string');
    expect(typeof issue.message).toBe('string');
  }
}

describe('api fuzz', () => {
  it(`answers every generated request without a 5xx, every 4xx a problem document (${RUNS} runs, seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await api(eventOf(r));
        expect(res.statusCode).toBeGreaterThanOrEqual(200);
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expectProblem(res);
        else expect(() => JSON.parse(res.body)).not.toThrow();
      }),
      { numRuns: RUNS, seed: SEED },
    );
    const list = await api(apiEvent('GET', '/jobs'));
    expect(list.statusCode).toBe(200);
    expect(JSON.parse(list.body).items.length).toBeGreaterThan(0);
    expect(h.log.entries.filter((e) => e.level === 'error')).toEqual([]);
  }, 120_000);
});
