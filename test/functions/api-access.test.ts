/**
 * Per-namespace authorization end to end: the `api` handler over dynalite and the local Kubernetes API,
 * with `TRAINKEEPER_ACCESS` mapping two teams' roles to their namespaces, driven by API Gateway v2 events
 * (the recorded POST /jobs event, test/fixtures/events/api-gateway-v2-post-jobs.json) carrying different
 * `requestContext.authorizer.iam.userArn`s, as API Gateway's IAM authorizer sets them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import { makeHandler as makeEventsHandler } from '../../functions/events.ts';
import type { ApiResponse } from '../../functions/shell/http.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';

const ACCT = '111122223333';
const ALICE = `arn:aws:sts::${ACCT}:assumed-role/TeamA-Engineers/alice`; // team-a (role ARN rule)
const BOB = `arn:aws:sts::${ACCT}:assumed-role/TeamB-Research/bob`; // team-b (assumed-role pattern)
const LEAD = `arn:aws:sts::${ACCT}:assumed-role/TeamA-Engineers/lead`; // team-a and team-b (two rules)
const ADMIN = `arn:aws:sts::${ACCT}:assumed-role/MLPlatform-Admin/carol`; // every namespace
const STRANGER = `arn:aws:sts::${ACCT}:assumed-role/Analytics/dave`; // no rule
const LOOKALIKE = `arn:aws:sts::${ACCT}:assumed-role/TeamA-Engineers-Contractors/eve`; // no rule

const ACCESS = [
  { principal: `arn:aws:iam::${ACCT}:role/teams/TeamA-Engineers`, namespaces: ['team-a'] },
  { principal: `arn:aws:sts::${ACCT}:assumed-role/TeamB-*/*`, namespaces: ['team-b'] },
  { principal: LEAD, namespaces: ['team-b'] },
  { principal: `arn:aws:sts::${ACCT}:assumed-role/MLPlatform-Admin/*`, namespaces: '*' },
];

let h: Harness;
let api: ReturnType<typeof makeHandler>;

beforeAll(async () => {
  h = await startHarness(
    {
      TRAINKEEPER_ALLOWED_NAMESPACES: 'default,team-a,team-b',
      TRAINKEEPER_ACCESS: JSON.stringify(ACCESS),
    },
    { namespaces: ['team-b'] },
  );
  api = makeHandler(h.deps);
  for (const [who, ns, name] of [
    [ALICE, 'team-a', 'a-job'],
    [BOB, 'team-b', 'b-job'],
    [ADMIN, 'default', 'd-job'],
  ] as const) {
    expect((await submit(who, ns, name)).statusCode).toBe(201);
  }
});
afterAll(async () => {
  await h?.stop();
});

const body = (res: ApiResponse) => JSON.parse(res.body);
const as = (principal: string, method: string, path: string, text?: string, headers = {}) =>
  api(
    apiEvent(method, path, {
      principal,
      ...(text !== undefined ? { body: text } : {}),
      headers: { 'content-type': 'application/json', ...headers },
    }),
  );
const submit = (principal: string, namespace: string, name: string, headers = {}) =>
  as(principal, 'POST', '/jobs', manifest(name, namespace), headers);
const names = (res: ApiResponse) =>
  body(res)
    .items.map(
      (j: { metadata: { namespace: string; name: string } }) => `${j.metadata.namespace}/${j.metadata.name}`,
    )
    .sort();

describe('submitting', () => {
  it('forbids a submission into another team’s namespace with 403 and creates nothing', async () => {
    const res = await submit(ALICE, 'team-b', 'sneaky');
    expect(res.statusCode).toBe(403);
    expect(body(res).type).toMatch(/namespace-forbidden$/);
    expect(await h.store.getJob({ namespace: 'team-b', name: 'sneaky' })).toBeUndefined();
    expect(h.kube.store.list('pods', 'team-b').some((p) => p.metadata.name.startsWith('sneaky'))).toBe(false);
  });

  it('matches a role ARN rule against the role’s sessions only, not a role whose name extends it', async () => {
    expect((await submit(LOOKALIKE, 'team-a', 'lookalike')).statusCode).toBe(403);
    expect((await submit(STRANGER, 'team-a', 'stranger')).statusCode).toBe(403);
  });

  it('scopes Idempotency-Keys per principal: two teams using the same key each get their own job', async () => {
    const a = await submit(ALICE, 'team-a', 'idem-a', { 'idempotency-key': 'shared-key' });
    const b = await submit(BOB, 'team-b', 'idem-b', { 'idempotency-key': 'shared-key' });
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(body(b).metadata.name).toBe('idem-b');
    const replay = await submit(ALICE, 'team-a', 'idem-a', { 'idempotency-key': 'shared-key' });
    expect(replay.statusCode).toBe(200);
    expect(body(replay).metadata.uid).toBe(body(a).metadata.uid);
  });
});

describe('job routes', () => {
  const routes: [string, string, string?][] = [
    ['GET', ''],
    ['GET', '/events'],
    ['DELETE', ''],
    ['POST', '/restart', '{"level":"job"}'],
    ['PUT', '/rules', '[{"name":"Hang","logPattern":".*step.*","expectedRecurringFrequencyInSeconds":60}]'],
  ];

  it.each(routes)(
    'answers %s /jobs/team-b/…%s from team-a with the same 403 whether the job exists or not',
    async (method, sub, text) => {
      const existing = await as(ALICE, method, `/jobs/team-b/b-job${sub}`, text);
      const missing = await as(ALICE, method, `/jobs/team-b/no-such-job${sub}`, text);
      expect(existing.statusCode).toBe(403);
      expect(body(existing).type).toMatch(/namespace-forbidden$/);
      expect(missing.statusCode).toBe(403);
      expect(missing.body).toBe(existing.body);
    },
  );

  it('leaves the other team’s job untouched after the refused commands', async () => {
    const job = await h.store.getJob({ namespace: 'team-b', name: 'b-job' });
    expect(job?.phase).not.toBe('Cancelled');
    expect(job?.spec.runPolicy.logMonitoringConfiguration.map((r) => r.name)).not.toContain('Hang');
    const events = await h.store.listEvents({ namespace: 'team-b', name: 'b-job' });
    expect(events.some((e) => JSON.stringify(e).includes(ALICE))).toBe(false);
  });

  it('lets each team read and command its own job, and the admin every job', async () => {
    expect((await as(ALICE, 'GET', '/jobs/team-a/a-job')).statusCode).toBe(200);
    expect((await as(BOB, 'GET', '/jobs/team-b/b-job/events')).statusCode).toBe(200);
    expect((await as(LEAD, 'GET', '/jobs/team-b/b-job')).statusCode).toBe(200);
    expect((await as(ADMIN, 'GET', '/jobs/default/d-job')).statusCode).toBe(200);
    const restart = await as(BOB, 'POST', '/jobs/team-b/b-job/restart', '{"level":"process"}');
    expect(restart.statusCode).toBe(202);
    const events = await h.store.listEvents({ namespace: 'team-b', name: 'b-job' });
    expect(events.some((e) => JSON.stringify(e).includes(BOB))).toBe(true);
  });

  it('refuses a principal no rule matches on every namespace', async () => {
    for (const path of ['/jobs/team-a/a-job', '/jobs/team-b/b-job', '/jobs/default/d-job']) {
      expect((await as(STRANGER, 'GET', path)).statusCode).toBe(403);
    }
  });
});

describe('listing', () => {
  it('lists only the principal’s namespaces', async () => {
    expect(names(await as(ALICE, 'GET', '/jobs'))).toEqual(['team-a/a-job', 'team-a/idem-a']);
    expect(names(await as(BOB, 'GET', '/jobs'))).toEqual(['team-b/b-job', 'team-b/idem-b']);
    expect(names(await as(LEAD, 'GET', '/jobs'))).toEqual([
      'team-a/a-job',
      'team-a/idem-a',
      'team-b/b-job',
      'team-b/idem-b',
    ]);
    expect(names(await as(ADMIN, 'GET', '/jobs'))).toContain('default/d-job');
    expect(names(await as(STRANGER, 'GET', '/jobs'))).toEqual([]);
  });

  it('answers a namespace query outside the principal’s namespaces with 403', async () => {
    const res = await as(ALICE, 'GET', '/jobs?namespace=team-b');
    expect(res.statusCode).toBe(403);
    expect(body(res).type).toMatch(/namespace-forbidden$/);
    expect(names(await as(ALICE, 'GET', '/jobs?namespace=team-a'))).toEqual([
      'team-a/a-job',
      'team-a/idem-a',
    ]);
  });

  it('keeps following the cursor through pages filtered to several namespaces', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 50; i++) {
      const res = await as(
        LEAD,
        'GET',
        `/jobs?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.statusCode).toBe(200);
      seen.push(...names(res));
      cursor = body(res).cursor;
      if (!cursor) break;
    }
    expect(seen.sort()).toEqual(['team-a/a-job', 'team-a/idem-a', 'team-b/b-job', 'team-b/idem-b']);
  });
});

describe('the local plane', () => {
  it('gives its caller without IAM (principal local) every namespace even with a mapping', async () => {
    const res = await api(apiEvent('GET', '/jobs', { principal: null }));
    expect(res.statusCode).toBe(200);
    expect(names(res)).toEqual(expect.arrayContaining(['default/d-job', 'team-a/a-job', 'team-b/b-job']));
  });

  it('gives an IAM principal that happens to be called local nothing special in AWS mode', async () => {
    const aws = makeHandler({ ...h.deps, config: { ...h.deps.config, mode: 'aws' } });
    const res = await aws(apiEvent('GET', '/jobs/team-a/a-job', { principal: 'local' }));
    expect(res.statusCode).toBe(403);
  });
});

describe('bus commands', () => {
  it('records a command from the bus as coming from eventbridge, not from the by its detail claims', async () => {
    const events = makeEventsHandler(h.deps);
    const outcome = await events({
      version: '0',
      id: 'e-1',
      'detail-type': 'TrainKeeper Command',
      source: 'trainkeeper.cli',
      account: ACCT,
      time: new Date().toISOString(),
      region: 'us-west-2',
      resources: [],
      detail: {
        namespace: 'team-a',
        name: 'a-job',
        command: {
          kind: 'UpdateRules',
          rules: [{ name: 'Hang', logPattern: '.*step.*', expectedRecurringFrequencyInSeconds: 600 }],
          by: ADMIN,
        },
      },
    });
    expect(outcome.status).toBe('applied');
    const timeline = JSON.stringify(await h.store.listEvents({ namespace: 'team-a', name: 'a-job' }));
    expect(timeline).toContain('replaced by eventbridge');
    expect(timeline).not.toContain(ADMIN);
  });
});
