/**
 * The logs handler attributes a line only by where it came from (the stock Container Insights record's
 * `kubernetes` metadata, Labels Off) and the job only by the store; agent records from anywhere but the
 * agent's container of a pod of the job are dropped and counted, and a believable record that would move
 * the job is confirmed with the real agent's `/status` first. Real dynalite, the local Kubernetes API and
 * real `trainkeeper-agent` processes (their workers run on, so their `/status` says RUNNING).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../core/job.ts';
import { Metric } from '../../core/metrics.ts';
import { makeHandler as makeApi } from '../../functions/api.ts';
import { candidateJobNames, makeHandler as makeLogs } from '../../functions/logs.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { apiEvent, logsEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

let h: Harness;
let job: JobRecord;
const NAME = 'attr-job';

beforeAll(async () => {
  h = await startHarness({}, { namespaces: ['sandbox'] });
  const text = manifest(NAME, NAMESPACE, (m) => {
    (m.spec as Record<string, unknown>).nprocPerNode = 1;
    (m.spec as Record<string, unknown>).trainkeeper = { presets: [] };
  });
  const res = await makeApi(h.deps)(
    apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }),
  );
  expect(res.statusCode).toBe(201);
  const sweep = makeSweep(h.deps);
  for (let i = 0; i < 80; i++) {
    await h.kubelet();
    await sweep({}).catch(() => undefined);
    const j = await h.store.getJob({ namespace: NAMESPACE, name: NAME });
    if (j?.phase === 'Running') {
      job = j;
      return;
    }
    await sleep(100);
  }
  throw new Error('the job never ran');
}, 60_000);
afterAll(async () => {
  await h?.stop();
});

const load = async () => (await h.store.getJob({ namespace: NAMESPACE, name: NAME })) as JobRecord;
const forgedCount = async () =>
  (await h.store.readCounters()).find(
    (c) => c.name === Metric.malformedEventsSkipped && c.labels.kind === 'forged-agent-record',
  )?.value ?? 0;
const rank0 = () => job.pods.find((p) => p.groupRank === 0)!.name;
const agentRecord = (fields: Record<string, unknown>) =>
  JSON.stringify({
    trainkeeper: 'agent/v1',
    ts: new Date().toISOString(),
    generation: job.generation,
    kind: 'state',
    ...fields,
  });

describe('attribution from the source', () => {
  it.each<[string, () => Parameters<typeof logsEvent>]>([
    [
      'a COMPLETED record from a pod of another namespace naming the job and its pod',
      () => [
        'forger',
        [
          {
            text: agentRecord({ state: 'COMPLETED', job: NAME, namespace: NAMESPACE, pod: rank0() }),
            timestamp: Date.now(),
          },
        ],
        { namespace: 'sandbox', container: 'forger' },
      ],
    ],
    [
      "a FAULTED record from a sidecar container of the job's own pod",
      () => [
        rank0(),
        [{ text: agentRecord({ state: 'FAULTED', reason: 'WorkerCrash' }), timestamp: Date.now() }],
        { container: 'sidecar' },
      ],
    ],
    [
      "a COMPLETED record from the agent's container of one pod naming another pod",
      () => [
        rank0(),
        [
          {
            text: agentRecord({ state: 'COMPLETED', pod: job.pods.find((p) => p.groupRank === 1)!.name }),
            timestamp: Date.now(),
          },
        ],
      ],
    ],
  ])('drops and counts %s, and the job does not move', async (_name, make) => {
    const before = await forgedCount();
    const outcome = await makeLogs(h.deps)(logsEvent(...make()));
    expect(outcome.skipped).toEqual({ 'forged-agent-record': 1 });
    expect(outcome.jobs).toEqual([]);
    expect(await forgedCount()).toBe(before + 1);
    const after = await load();
    expect(after.phase).toBe('Running');
    expect(after.generation).toBe(job.generation);
    expect(h.log.entries.some((e) => e.message === 'logs: dropped a forged agent record')).toBe(true);
  });

  it('warns about a forging source at most once a minute, however much it prints', async () => {
    const logs = makeLogs(h.deps);
    const batch = () =>
      logsEvent(
        'noisy-forger',
        [{ text: agentRecord({ state: 'COMPLETED', job: NAME }), timestamp: Date.now() }],
        {
          namespace: 'sandbox',
          container: 'app',
        },
      );
    const before = await forgedCount();
    for (let i = 0; i < 5; i++) await logs(batch());
    expect(await forgedCount()).toBe(before + 5);
    const warnings = h.log.entries.filter(
      (e) => e.message === 'logs: dropped a forged agent record' && e.fields?.pod === 'noisy-forger',
    );
    expect(warnings).toHaveLength(1);
  });

  it("asks the agent before believing a FAULTED record from the agent's own container: the agent runs, so nothing moves", async () => {
    const outcome = await makeLogs(h.deps)(
      logsEvent(rank0(), [
        { text: agentRecord({ state: 'FAULTED', reason: 'WorkerCrash' }), timestamp: Date.now() },
      ]),
    );
    expect(outcome.skipped).toEqual({});
    expect(outcome.jobs).toEqual([expect.objectContaining({ status: 'reconciled' })]);
    const after = await load();
    expect(after.phase).toBe('Running');
    expect(after.generation).toBe(job.generation);
    expect(after.restartCount).toBe(job.restartCount);
    expect(after.pods.find((p) => p.name === rank0())?.agent?.state).toBe('RUNNING');
  });

  it("asks every rank's agent of a small job on a fault claim, so decide can blame the pod that faulted first: the other rank's agent answered too", async () => {
    const before = await load();
    const rank1 = before.pods.find((p) => p.groupRank === 1)!;
    const crash = JSON.stringify({
      trainkeeper: 'agent/v1',
      ts: new Date().toISOString(),
      generation: before.generation,
      kind: 'worker-exit',
      state: 'RUNNING',
      localRank: 0,
      exitCode: 1,
      signal: null,
    });
    const outcome = await makeLogs(h.deps)(logsEvent(rank0(), [{ text: crash, timestamp: Date.now() }]));
    expect(outcome.jobs).toEqual([expect.objectContaining({ status: 'reconciled' })]);
    const after = await load();
    expect(after.phase).toBe('Running');
    expect(after.generation).toBe(before.generation);
    const asked = after.pods.find((p) => p.name === rank1.name)!;
    expect(asked.agent?.state).toBe('RUNNING');
    expect(asked.agent?.at).toBeGreaterThan(rank1.agent?.at ?? 0);
  });

  it("asks no agent about a crash claim of an older generation's run (a worker a restart stopped): nothing moves", async () => {
    const before = await load();
    const stopped = JSON.stringify({
      trainkeeper: 'agent/v1',
      ts: new Date().toISOString(),
      generation: before.generation - 1,
      kind: 'worker-exit',
      state: 'STOPPING',
      localRank: 0,
      exitCode: null,
      signal: 'SIGTERM',
    });
    const outcome = await makeLogs(h.deps)(logsEvent(rank0(), [{ text: stopped, timestamp: Date.now() }]));
    expect(outcome.jobs).toEqual([expect.objectContaining({ status: 'reconciled' })]);
    const after = await load();
    expect(after.generation).toBe(before.generation);
    expect(after.restartCount).toBe(before.restartCount);
    // not asked: the slots' agent reports are those of before
    expect(after.pods.map((p) => p.agent)).toEqual(before.pods.map((p) => p.agent));
  });

  it('attributes worker lines of a stock record (no labels) to the job that owns the pod, and notes that worker lines arrive', async () => {
    const outcome = await makeLogs(h.deps)(
      logsEvent(rank0(), [{ text: '[default0]:step 3 loss 2.0', timestamp: Date.now() }]),
    );
    expect(outcome.jobs).toEqual([
      expect.objectContaining({ ref: { namespace: NAMESPACE, name: NAME }, linesEvaluated: 1 }),
    ]);
    const after = await load();
    expect(after.workerLinesAt).toBeGreaterThanOrEqual(after.runningSince ?? 0);
  });

  it('counts a line of a pod no job owns as unknown-job', async () => {
    const outcome = await makeLogs(h.deps)(
      logsEvent(`${NAME}-worker-7-g0`, [{ text: '[default0]:hello', timestamp: Date.now() }]),
    );
    expect(outcome.skipped).toEqual({ 'unknown-job': 1 });
  });
});

describe('candidateJobNames', () => {
  it.each([
    ['llama-pods-0-g2', ['llama']],
    ['my-job-worker-3-g0', ['my-job', 'my']],
    ['not-a-job-pod', []],
  ])('reads the job names %s may belong to', (pod, names) => {
    expect(candidateJobNames(pod)).toEqual(names);
  });
});
