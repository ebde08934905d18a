/**
 * The HTTP API's route table (stacks/policy.ts `API_ROUTES`) against the real `api` handler on dynalite and
 * the local Kubernetes API (test/functions/harness.ts): every route API Gateway forwards is one the handler
 * serves, so no route of the table ends in the handler's own "no such route" or "method not allowed".
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import { API_ROUTES } from '../../stacks/policy.ts';
import { apiEvent, manifest } from '../functions/fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from '../functions/harness.ts';

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  h = await startHarness();
  api = makeHandler(h.deps);
});
afterAll(async () => {
  await h?.stop();
});

const BODIES: Record<string, { body: string; type: string }> = {
  'POST /jobs': { body: manifest('route-check', NAMESPACE), type: 'application/json' },
  'POST /jobs/{namespace}/{name}/restart': { body: '{"level":"process"}', type: 'application/json' },
  'PUT /jobs/{namespace}/{name}/rules': { body: '[]', type: 'application/yaml' },
};

it.each(API_ROUTES.filter((r) => r !== '$default'))('serves %s in the api handler', async (route) => {
  const [method, template] = route.split(' ') as [string, string];
  const path = template.replace('{namespace}', NAMESPACE).replace('{name}', 'no-such-job');
  const b = BODIES[route];
  const res = await api(
    apiEvent(method, path, b ? { body: b.body, headers: { 'content-type': b.type } } : {}),
  );
  const type = res.statusCode >= 400 ? (JSON.parse(res.body) as { type: string }).type : '';
  expect(type).not.toMatch(/route-not-found$|method-not-allowed$/);
  expect(res.statusCode).toBeLessThan(500);
});

it('answers what only $default forwards with the handler problem documents', async () => {
  const wrongMethod = await api(apiEvent('PATCH', '/jobs'));
  expect(wrongMethod.statusCode).toBe(405);
  expect(wrongMethod.headers?.allow).toBe('GET, POST');
  const unknown = await api(apiEvent('GET', '/nope'));
  expect(unknown.statusCode).toBe(404);
});
