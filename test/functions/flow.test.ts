/**
 * The handlers together on real components: a job submitted through the API, brought up by the sweep on
 * the local Kubernetes API with real agents, then faulted through CloudWatch Logs batches, SageMaker
 * HyperPod events and concurrent triggers. Assertions are on the stored job and the cluster.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, TransientError } from '../../core/errors.ts';
import type { JobRecord } from '../../core/job.ts';
import { Metric } from '../../core/metrics.ts';
import type { Cluster, JobRef, JobStore } from '../../core/ports.ts';
import { makeHandler as makeApi } from '../../functions/api.ts';
import { makeHandler as makeEvents } from '../../functions/events.ts';
import { makeHandler as makeLogs } from '../../functions/logs.ts';
import { type Deps, reconcile } from '../../functions/shell/reconcile.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { encodeSubscriptionPayload } from '../../local/shipper.ts';
import { apiEvent, fixtureJson, logsEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    TRAINKEEPER_CLUSTER_KIND: 'hyperpod',
    TRAINKEEPER_CLUSTER_NAME: 'sample-cluster',
  });
});
afterAll(async () => {
  await h?.stop();
});

const ref = (name: string): JobRef => ({ namespace: NAMESPACE, name });
const load = async (name: string): Promise<JobRecord> => {
  const job = await h.store.getJob(ref(name));
  if (!job) throw new Error(`job ${name} is missing`);
  return job;
};

/** Submits a 2-pod job (one worker per pod, an out-of-memory rule with faultOnMatch) through the API. */
async function submit(name: string): Promise<void> {
  const text = manifest(name, NAMESPACE, (m) => {
    (m.spec as Record<string, unknown>).nprocPerNode = 1;
    (m.spec as Record<string, unknown>).trainkeeper = { presets: [] };
  });
  const res = await makeApi(h.deps)(
    apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }),
  );
  expect(res.statusCode).toBe(201);
}

/** Plays kubelet + sweep until `done(job)` holds (bounded). */
async function converge(
  name: string,
  done: (job: JobRecord) => boolean,
  deps: Deps = h.deps,
): Promise<JobRecord> {
  const sweep = makeSweep(deps);
  let job = await load(name);
  for (let i = 0; i < 80 && !done(job); i++) {
    await h.kubelet();
    await sweep({}).catch(() => undefined);
    job = await load(name);
    if (!done(job)) await sleep(100);
  }
  if (!done(job))
    throw new Error(`job ${name} did not converge: phase ${job.phase}, generation ${job.generation}`);
  return job;
}

const running = (generation: number) => (job: JobRecord) =>
  job.phase === 'Running' && job.generation === generation;

/** The OOM line of rank 0, as its worker would print it, time-stamped now. */
function oomBatch(job: JobRecord) {
  const pod = job.pods.find((p) => p.groupRank === 0)!;
  return logsEvent(pod.name, [
    { text: '[default0]:step 10 loss 2.31', timestamp: Date.now() },
    {
      text: '[default0]:RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB',
      timestamp: Date.now(),
    },
  ]);
}

describe('a job through its triggers', () => {
  it('comes up Running through the API and the sweep, with every agent started for generation 0', async () => {
    await submit('flow-a');
    const job = await converge('flow-a', running(0));
    expect(job.pods.every((p) => p.agent?.state === 'RUNNING')).toBe(true);
    expect(job.masterAddr).toBeDefined();
  });

  it('restarts once for a CloudWatch batch delivered twice', async () => {
    const logs = makeLogs(h.deps);
    const before = await load('flow-a');
    const batch = oomBatch(before);
    const first = await logs(batch);
    expect(first.jobs).toEqual([expect.objectContaining({ status: 'reconciled' })]);
    const second = await logs(batch);
    expect(second.jobs).toEqual([expect.objectContaining({ status: 'duplicate' })]);
    const after = await load('flow-a');
    expect(after.generation).toBe(before.generation + 1);
    expect(after.restartCount).toBe(before.restartCount + 1);
    const recovered = await converge('flow-a', running(before.generation + 1));
    expect(recovered.restartCount).toBe(before.restartCount + 1);
    const remediation = recovered.remediations.at(-1);
    expect(remediation?.reason).toMatch(/^LogFault_OutOfMemory/);
    if (remediation?.recoveredAt !== undefined) {
      console.log(
        `OOM line → restart: detection ${remediation.detectedAt - remediation.faultAt} ms, ` +
          `restart (stop + start of 2 real agents, driven by sweep passes) ${remediation.recoveredAt - remediation.detectedAt} ms`,
      );
    }
  });

  it('keeps the batch going past a 1 MB line, an unknown job and a broken agent record, and counts them', async () => {
    const logs = makeLogs(h.deps);
    const before = await load('flow-a');
    const pod = before.pods.find((p) => p.groupRank === 0)!.name;
    const counters = async (kind: string) =>
      (await h.store.readCounters()).find(
        (c) => c.name === Metric.malformedEventsSkipped && c.labels.kind === kind,
      )?.value ?? 0;
    const oversizedBefore = await counters('oversized-line');
    const unknownBefore = await counters('unknown-job');
    const recordBefore = await counters('agent-record');
    const now = Date.now();
    const batch = logsEvent(pod, [
      { text: `[default0]:${'x'.repeat(1024 * 1024)}`, timestamp: now },
      { text: '{"trainkeeper":"agent/v1","kind":"heartbeat"}', timestamp: now },
      { text: '[default0]:RuntimeError: CUDA out of memory', timestamp: now + 1 },
    ]);
    const stranger = logsEvent('ghost-pod-0', [{ text: '[default0]:hello', timestamp: now }]);
    const outcome = await logs(batch);
    const ghost = await logs(stranger);
    expect(outcome.skipped).toMatchObject({ 'oversized-line': 1, 'agent-record': 1 });
    expect(ghost.skipped).toMatchObject({ 'unknown-job': 1 });
    expect(await counters('oversized-line')).toBe(oversizedBefore + 1);
    expect(await counters('agent-record')).toBe(recordBefore + 1);
    expect(await counters('unknown-job')).toBe(unknownBefore + 1);
    const after = await load('flow-a');
    expect(after.generation).toBe(before.generation + 1);
    await converge('flow-a', running(before.generation + 1));
  });

  it('skips a payload that is not gzip, counting it, without throwing', async () => {
    const logs = makeLogs(h.deps);
    const outcome = await logs({ awslogs: { data: Buffer.from('definitely not gzip').toString('base64') } });
    expect(outcome).toMatchObject({ status: 'malformed', skipped: { 'payload-gzip': 1 } });
  });

  it('lets one of two concurrent reconciles of the same fault win: the loser re-reads, no double and no lost restart', async () => {
    const before = await load('flow-a');
    const pod = before.pods.find((p) => p.groupRank === 1)!;
    // The agent's /status answer (what decide acts on; a FAULTED record from the logs only asks for it).
    const fault = {
      type: 'AgentPolled' as const,
      pod: pod.name,
      status: {
        status: 'faulted',
        faultCount: before.generation,
        reason: 'WorkerCrash',
        message: 'local rank 0 exited with code 1',
      },
      at: Date.now(),
    };
    const progress = { type: 'Progress' as const, step: (before.progress.step ?? 0) + 1000, at: Date.now() };
    // Both triggers read the same version before either writes.
    const deps = { ...h.deps, store: barrierStore(h.store, 2) };
    const [a, b] = await Promise.all([
      reconcile(deps, ref('flow-a'), [fault]),
      reconcile(deps, ref('flow-a'), [fault, progress]),
    ]);
    expect(a.conflicts + b.conflicts).toBeGreaterThanOrEqual(1);
    const after = await load('flow-a');
    expect(after.generation).toBe(before.generation + 1);
    expect(after.restartCount).toBe(before.restartCount + 1);
    expect(after.progress.step).toBe(progress.step);
    const conflicts = (await h.store.readCounters()).find((c) => c.name === Metric.reconcileConflicts);
    expect(conflicts?.value ?? 0).toBeGreaterThanOrEqual(1);
    await converge('flow-a', running(before.generation + 1));
  });

  it('converges on the next sweep when a handler throws after the state write', async () => {
    const before = await load('flow-a');
    let failures = 0;
    const flaky: Cluster = Object.assign(
      Object.create(Object.getPrototypeOf(h.deps.cluster)),
      h.deps.cluster,
      {
        startAgents: async () => {
          failures++;
          throw new TransientError('proxy: 503 from the API server');
        },
        stopAgents: async () => {
          failures++;
          throw new TransientError('proxy: 503 from the API server');
        },
      },
    );
    const deps = { ...h.deps, cluster: flaky };
    await expect(
      reconcile(deps, ref('flow-a'), [
        {
          type: 'Command',
          command: { kind: 'Restart', level: 'process', by: 'test' },
          at: Date.now(),
          id: `test#${Math.random()}`,
        },
      ]),
    ).rejects.toBeInstanceOf(TransientError);
    expect(failures).toBeGreaterThan(0);
    const written = await load('flow-a');
    expect(written.generation).toBe(before.generation + 1);
    const recovered = await converge('flow-a', running(before.generation + 1));
    expect(recovered.restartCount).toBe(before.restartCount + 1);
  });

  it('moves the pod off a node SageMaker reports as rebooting', async () => {
    const events = makeEvents(h.deps);
    const before = await load('flow-a');
    const victim = before.pods.find((p) => p.groupRank === 0)!;
    const nodes = await h.deps.cluster.listNodes();
    const node = nodes.find((n) => n.name === victim.nodeName)!;
    const event = fixtureJson<{ detail: { EventDetails: Record<string, unknown> } }>(
      'events/hyperpod-instance-reboot.json',
    );
    event.detail.EventDetails.InstanceId = node.instanceId;
    const outcome = await events(event);
    expect(outcome.status).toBe('applied');
    expect(outcome.jobs.map((j) => j.ref.name)).toContain('flow-a');
    const after = await load('flow-a');
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(after.pods.find((p) => p.index === victim.index)?.name).not.toBe(victim.name);
    const recovered = await converge(
      'flow-a',
      (j) => j.phase === 'Running' && j.generation === after.generation,
    );
    expect(recovered.pods.every((p) => p.nodeName !== victim.nodeName)).toBe(true);
  });

  it('applies a Restart command from the TrainKeeper bus', async () => {
    const events = makeEvents(h.deps);
    const before = await load('flow-a');
    const event = fixtureJson<{ time: string; detail: Record<string, unknown> }>(
      'events/trainkeeper-command-restart.json',
    );
    event.detail.name = 'flow-a';
    // The fixture's time is long past: a command is told apart by its event id, not its time.
    const outcome = await events(event);
    expect(outcome.jobs).toEqual([{ ref: ref('flow-a'), status: 'written' }]);
    expect((await load('flow-a')).generation).toBe(before.generation + 1);
    await converge('flow-a', running(before.generation + 1));
  });

  it('attributes a plain line by its Fluent Bit stream name when the record carries no labels', async () => {
    const logs = makeLogs(h.deps);
    const before = await load('flow-a');
    const pod = before.pods.find((p) => p.groupRank === 1)!.name;
    const payload = encodeSubscriptionPayload(
      '/aws/containerinsights/test/application',
      `${pod}_${NAMESPACE}_trainer-${'c'.repeat(64)}`,
      [
        {
          id: `${Date.now()}000000000001`,
          timestamp: Date.now(),
          message: '[default0]:RuntimeError: CUDA out of memory',
        },
      ],
    );
    const outcome = await logs(payload);
    expect(outcome.jobs).toEqual([
      expect.objectContaining({ ref: ref('flow-a'), status: 'reconciled', linesEvaluated: 1 }),
    ]);
    expect((await load('flow-a')).generation).toBe(before.generation + 1);
    await converge('flow-a', running(before.generation + 1));
  });

  it('sweeps the other jobs when one fails, then throws the retryable error', async () => {
    await submit('flow-b');
    const broken: Cluster = Object.assign(
      Object.create(Object.getPrototypeOf(h.deps.cluster)),
      h.deps.cluster,
      {
        listJobPods: async (r: JobRef) => {
          if (r.name === 'flow-a') throw new TransientError('kube: 503 listing pods');
          return h.deps.cluster.listJobPods(r);
        },
      },
    );
    const sweep = makeSweep({ ...h.deps, cluster: broken });
    const before = await load('flow-b');
    await h.kubelet();
    await expect(sweep({})).rejects.toBeInstanceOf(TransientError);
    const after = await load('flow-b');
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.pods.every((p) => p.podPhase === 'Running')).toBe(true);
    await converge('flow-b', running(0));
  });

  it('evaluates a 5,000-line batch of both ranks with a single job write (O(jobs), not O(lines))', async () => {
    const logs = makeLogs(h.deps);
    const before = await load('flow-b');
    const t0 = Date.now();
    const perPod = before.pods.map((p) =>
      logsEvent(
        p.name,
        Array.from({ length: 2500 }, (_, i) => ({
          text: `[default0]:step ${i} loss ${(2 - i / 5000).toFixed(4)}`,
          timestamp: t0 + i,
        })),
      ),
    );
    const started = performance.now();
    const outcomes = [];
    for (const batch of perPod) outcomes.push(await logs(batch));
    const ms = performance.now() - started;
    const evaluated = outcomes.flatMap((o) => o.jobs).reduce((n, j) => n + j.linesEvaluated, 0);
    expect(evaluated).toBe(5000);
    const after = await load('flow-b');
    expect(after.version - before.version).toBeLessThanOrEqual(perPod.length);
    expect(after.generation).toBe(before.generation);
    console.log(
      `logs handler: 5,000 lines in 2 batches in ${ms.toFixed(0)} ms (${((5000 / ms) * 1000).toFixed(0)} lines/s), ${after.version - before.version} job writes`,
    );
  });

  it('ignores the events of another cluster and counts a malformed detail without touching any job', async () => {
    const events = makeEvents(h.deps);
    const before = await load('flow-a');
    const other = fixtureJson<{ detail: { EventDetails: Record<string, unknown> } }>(
      'events/hyperpod-instance-reboot.json',
    );
    other.detail.EventDetails.ClusterName = 'someone-elses-cluster';
    other.detail.EventDetails.ClusterArn = 'arn:aws:sagemaker:us-west-2:111122223333:cluster/zzzz9999zzzz';
    expect(await events(other)).toMatchObject({ status: 'ignored', jobs: [] });
    const broken = fixtureJson<{ detail: { EventDetails: Record<string, unknown> } }>(
      'events/hyperpod-instance-reboot.json',
    );
    delete broken.detail.EventDetails.EventId;
    const outcome = await events(broken);
    expect(outcome.status).toBe('malformed');
    expect(outcome.reason).toContain('detail.EventDetails.EventId');
    expect(await events({ not: 'an event' })).toMatchObject({ status: 'malformed' });
    expect((await load('flow-a')).version).toBe(before.version);
  });

  it('records a terminal action failure and failing emitters without failing the trigger', async () => {
    const before = await load('flow-b');
    const fail = (what: string) => async () => {
      throw new Error(`${what} is down`);
    };
    const cluster: Cluster = Object.assign(
      Object.create(Object.getPrototypeOf(h.deps.cluster)),
      h.deps.cluster,
      {
        stopAgents: async () => {
          throw new PermanentError('proxy: 403 forbidden');
        },
        recordKubeEvent: fail('the events API'),
      },
    );
    const deps: Deps = {
      ...h.deps,
      cluster,
      events: { publish: fail('EventBridge') },
      metrics: { recordDecision: fail('CloudWatch'), push: fail('AMP') },
    };
    const outcome = await reconcile(deps, ref('flow-b'), [
      {
        type: 'Command',
        command: { kind: 'Restart', level: 'process', by: 'test' },
        at: Date.now(),
        id: `test#${Math.random()}`,
      },
    ]);
    expect(outcome.status).toBe('written');
    expect(outcome.errors.map((e) => e.action)).toContain('StopAgents');
    const after = await load('flow-b');
    expect(after.generation).toBe(before.generation + 1);
    const timeline = await h.store.listEvents(ref('flow-b'), { after: before.updatedAt - 1 });
    expect(timeline.some((e) => e.reason === 'ActionFailed' && e.message.includes('StopAgents'))).toBe(true);
    await converge('flow-b', running(before.generation + 1));
  });

  it('runs the later actions when one fails with a retryable error, then fails the trigger so it is retried', async () => {
    await submit('flow-d');
    await converge('flow-d', running(0));
    const cluster: Cluster = Object.assign(
      Object.create(Object.getPrototypeOf(h.deps.cluster)),
      h.deps.cluster,
      {
        shutdownAgents: async () => {
          throw new TransientError('proxy: 503 after retries');
        },
      },
    );
    await expect(
      reconcile({ ...h.deps, cluster }, ref('flow-d'), [
        { type: 'Command', command: { kind: 'Cancel', by: 'test' }, at: Date.now(), id: 'test#cancel-d' },
      ]),
    ).rejects.toBeInstanceOf(TransientError);
    expect((await load('flow-d')).phase).toBe('Cancelled');
    // The pods were still deleted (cleanPodPolicy All) and the cancel is in the timeline.
    const pods = await h.deps.cluster.listJobPods(ref('flow-d'));
    expect(pods.every((p) => p.deletionTimestamp !== undefined)).toBe(true);
    const timeline = await h.store.listEvents(ref('flow-d'));
    expect(timeline.some((e) => e.lifecycle === 'JobCancelled')).toBe(true);
  });

  it('takes training progress from the captured step of the progress rule, highest of the batch', async () => {
    const text = manifest('flow-c', NAMESPACE, (m) => {
      const spec = m.spec as Record<string, unknown> & { runPolicy: Record<string, unknown> };
      spec.nprocPerNode = 1;
      spec.trainkeeper = { presets: [], progressRule: 'Step' };
      spec.runPolicy.logMonitoringConfiguration = [{ name: 'Step', logPattern: '.*step (\\d+) .*' }];
    });
    const res = await makeApi(h.deps)(
      apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }),
    );
    expect(res.statusCode).toBe(201);
    const job = await converge('flow-c', running(0));
    const pod = job.pods.find((p) => p.groupRank === 0)!.name;
    const t = Date.now();
    const outcome = await makeLogs(h.deps)(
      logsEvent(pod, [
        { text: '[default0]:step 120 loss 2.0', timestamp: t },
        { text: '[default0]:step 130 loss 1.9', timestamp: t + 1 },
        { text: '[default0]:checkpoint saved', timestamp: t + 2 },
      ]),
    );
    expect(outcome.jobs).toEqual([expect.objectContaining({ linesEvaluated: 3 })]);
    expect((await load('flow-c')).progress.step).toBe(130);
  });
});

/** The real store, with the first `n` getJob calls held until all `n` arrived (forces a read-read-write-write race). */
function barrierStore(store: JobStore, n: number): JobStore {
  let waiting = 0;
  let release: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    release = resolve;
  });
  return Object.assign(Object.create(Object.getPrototypeOf(store)), store, {
    getJob: async (r: JobRef) => {
      const job = await store.getJob(r);
      if (waiting < n) {
        waiting++;
        if (waiting === n) release();
        await all;
      }
      return job;
    },
  });
}
