/**
 * Commands under concurrency, through the api handler on DynamoDB Local (dynalite without Java): every
 * command answered 2xx is applied exactly once (visible once in the timeline and in the state), and every
 * other one gets an error (409 once the job is finished, 503 when the writes kept losing).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/api.ts';
import { makeHandler as makeEventsHandler } from '../../functions/events.ts';
import { hasJava } from '../support/dynamo.ts';
import { apiEvent, fixtureJson, manifest } from './fixtures.ts';
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

const submit = async (name: string) => {
  const res = await api(
    apiEvent('POST', '/jobs', {
      body: manifest(name, NAMESPACE),
      headers: { 'content-type': 'application/json' },
    }),
  );
  expect(res.statusCode).toBe(201);
};

/** A rules list of `n` rules: the count tells the commands apart in the timeline. */
const rulesBody = (n: number) =>
  JSON.stringify(Array.from({ length: n }, (_, i) => ({ name: `Rule${i}`, logPattern: `.*marker${i}.*` })));

type Cmd = { kind: 'rules'; n: number } | { kind: 'cancel' };

const send = (name: string, cmd: Cmd) =>
  cmd.kind === 'rules'
    ? api(
        apiEvent('PUT', `/jobs/${NAMESPACE}/${name}/rules`, {
          body: rulesBody(cmd.n),
          headers: { 'content-type': 'application/json' },
        }),
      )
    : api(apiEvent('DELETE', `/jobs/${NAMESPACE}/${name}`));

let seq = 0;

describe('concurrent commands on one job', () => {
  it('applies each of 20 concurrent rule updates answered 200 exactly once, and answers the others 503', async () => {
    const name = `cmd-rules-${seq++}`;
    await submit(name);
    const cmds = Array.from({ length: 20 }, (_, i) => ({ kind: 'rules', n: i + 1 }) as const);
    const answers = await Promise.all(cmds.map((c) => send(name, c)));
    for (const a of answers) expect([200, 503]).toContain(a.statusCode);
    const ok = cmds.filter((_, i) => answers[i]?.statusCode === 200).map((c) => c.n);
    expect(ok.length).toBeGreaterThan(0);
    const events = await h.store.listEvents({ namespace: NAMESPACE, name });
    const applied = events
      .filter((e) => e.reason === 'RulesUpdated')
      .map((e) => Number(/\((\d+) rules\)/.exec(e.message)?.[1]));
    expect(applied.sort((a, b) => a - b)).toEqual(ok.sort((a, b) => a - b));
    // The stored rules are those of one of the applied commands (the last write's).
    const job = await h.store.getJob({ namespace: NAMESPACE, name });
    expect(ok).toContain(job?.spec.runPolicy.logMonitoringConfiguration.length);
  }, 120_000);

  it('property: every command answered 2xx is visible exactly once; after a cancel the rest are 409 job-finished', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { weight: 4, arbitrary: fc.integer({ min: 1, max: 30 }).map((n): Cmd => ({ kind: 'rules', n })) },
            { weight: 1, arbitrary: fc.constant<Cmd>({ kind: 'cancel' }) },
          ),
          { minLength: 2, maxLength: 12 },
        ),
        async (drawn) => {
          const name = `cmd-prop-${seq++}`;
          await submit(name);
          // Distinct rule counts so each update is identifiable in the timeline.
          const cmds = drawn.map((c, i): Cmd => (c.kind === 'rules' ? { kind: 'rules', n: 100 + i } : c));
          const answers = await Promise.all(cmds.map((c) => send(name, c)));
          const events = await h.store.listEvents({ namespace: NAMESPACE, name });
          const job = await h.store.getJob({ namespace: NAMESPACE, name });
          const updates = events
            .filter((e) => e.reason === 'RulesUpdated')
            .map((e) => Number(/\((\d+) rules\)/.exec(e.message)?.[1]));
          const cancelled = events.filter((e) => e.lifecycle === 'JobCancelled');
          cmds.forEach((c, i) => {
            const res = answers[i]!;
            if (c.kind === 'rules') {
              const seen = updates.filter((n) => n === c.n).length;
              if (res.statusCode === 200) expect(seen).toBe(1);
              else {
                expect(seen).toBe(0);
                expect([409, 503]).toContain(res.statusCode);
                if (res.statusCode === 409) expect(JSON.parse(res.body).type).toMatch(/job-finished$/);
              }
            } else {
              expect([202, 503]).toContain(res.statusCode);
            }
          });
          const cancelsOk = cmds.filter((c, i) => c.kind === 'cancel' && answers[i]!.statusCode === 202);
          if (cancelsOk.length > 0) {
            expect(job?.phase).toBe('Cancelled');
            expect(cancelled).toHaveLength(1);
          } else expect(cancelled).toHaveLength(0);
        },
      ),
      { numRuns: 4 },
    );
  }, 300_000);
});

describe('finished jobs', () => {
  it('answers restart and rules updates of a finished job with 409 job-finished naming the phase; a second cancel is 202', async () => {
    const name = `cmd-done-${seq++}`;
    await submit(name);
    expect((await send(name, { kind: 'cancel' })).statusCode).toBe(202);
    const restart = await api(
      apiEvent('POST', `/jobs/${NAMESPACE}/${name}/restart`, {
        body: '{"level":"process"}',
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(restart.statusCode).toBe(409);
    expect(JSON.parse(restart.body)).toMatchObject({
      type: expect.stringMatching(/job-finished$/),
      detail: expect.stringContaining('Cancelled'),
    });
    const rules = await send(name, { kind: 'rules', n: 2 });
    expect(rules.statusCode).toBe(409);
    const again = await send(name, { kind: 'cancel' });
    expect(again.statusCode).toBe(202);
    expect(JSON.parse(again.body).status.phase).toBe('Cancelled');
  }, 60_000);
});

describe('commands on the bus', () => {
  const busEvent = (name: string, id: string, rules: number) => {
    const event = fixtureJson<Record<string, unknown>>('events/trainkeeper-command-restart.json');
    return {
      ...event,
      id,
      detail: {
        namespace: NAMESPACE,
        name,
        command: {
          kind: 'UpdateRules',
          rules: Array.from({ length: rules }, (_, i) => ({ name: `R${i}`, logPattern: '.*x.*' })),
        },
      },
    };
  };

  it('applies two commands sent at the same instant, and a redelivery of one (same event id) once', async () => {
    const name = `cmd-bus-${seq++}`;
    await submit(name);
    const events = makeEventsHandler(h.deps);
    await events(busEvent(name, 'evt-1', 3));
    await events(busEvent(name, 'evt-2', 4)); // same `time` as evt-1
    await events(busEvent(name, 'evt-1', 3)); // redelivered
    const updates = (await h.store.listEvents({ namespace: NAMESPACE, name }))
      .filter((e) => e.reason === 'RulesUpdated')
      .map((e) => Number(/\((\d+) rules\)/.exec(e.message)?.[1]));
    expect(updates).toEqual([3, 4]);
  }, 60_000);
});
