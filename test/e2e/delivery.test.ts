import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TransientError } from '../../core/errors.ts';
import { POD_LABELS } from '../../core/observations.ts';
import type { Cluster } from '../../core/ports.ts';
import { type LogsOutcome, makeHandler } from '../../functions/logs.ts';
import { type CloudWatchLogsEvent, LogShipper } from '../../local/shipper.ts';
import { eventually, requestRetrying } from './eventually.ts';
import { type E2E, type JobDoc, jobManifest, useControlPlane } from './harness.ts';

const e2e = useControlPlane();

/** A fault the trainer never prints by itself: only the payloads this file builds carry it. */
const INJECTED = { name: 'InjectedFault', logPattern: '.*INJECTED FAULT.*', faultOnMatch: true };
const LOG_GROUP = '/aws/containerinsights/trainkeeper-local/application';

/**
 * What the local shipper (Fluent Bit + subscription filter stand-in) delivers for these lines of rank 0's
 * pod: the real gzip+base64 subscription payload, one per flush.
 */
async function shippedPayload(
  job: JobDoc,
  lines: { text: string; at: number }[],
): Promise<CloudWatchLogsEvent> {
  const captured: CloudWatchLogsEvent[] = [];
  const shipper = new LogShipper({
    logGroup: LOG_GROUP,
    deliver: async (payload) => {
      captured.push(payload);
    },
  });
  const pod = job.status.pods.find((p) => p.rank === 0)!;
  for (const { text, at } of lines) {
    shipper.accept({
      namespace: job.metadata.namespace,
      pod: pod.name,
      container: 'pytorch',
      ...(pod.node ? { node: pod.node } : {}),
      labels: { [POD_LABELS.job]: job.metadata.name },
      stream: 'stdout',
      line: text,
      timestamp: at,
    });
  }
  await shipper.flush();
  await shipper.stop();
  expect(captured).toHaveLength(1);
  return captured[0]!;
}

/** The fault line followed by an ordinary line, in order and reversed (a later, reordered delivery). */
async function faultPayloads(
  job: JobDoc,
): Promise<{ inOrder: CloudWatchLogsEvent; reversed: CloudWatchLogsEvent }> {
  const at = Date.now();
  const fault = { text: '[default0]:[rank 0] INJECTED FAULT: NCCL watchdog timeout', at };
  // Not a step line: a made-up step would move the job's progress past the trainer's real steps.
  const step = {
    text: '[default0]:[rank 0] NCCL INFO comm 0x5a1c rank 0 nranks 4 - Init COMPLETE',
    at: at + 1,
  };
  return {
    inOrder: await shippedPayload(job, [fault, step]),
    reversed: await shippedPayload(job, [step, fault]),
  };
}

type LogsHandler = ReturnType<typeof makeHandler>;

/**
 * Delivers a payload as Lambda's asynchronous invocation does: a retryable failure (the handler throws a
 * TransientError, e.g. its writes kept losing to the job's other writers) is retried with the same payload.
 */
async function deliver(logs: LogsHandler, payload: CloudWatchLogsEvent): Promise<LogsOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await logs(payload);
    } catch (err) {
      if (!(err instanceof TransientError) || attempt >= 6) throw err;
      await sleep(200 * attempt);
    }
  }
}

const recovered = (generation: number) => (j: JobDoc) =>
  j.status.phase === 'Running' &&
  j.status.generation === generation &&
  j.status.remediations.every((r) => r.restartLatencyMs !== null);

async function startJob(t: E2E, name: string): Promise<JobDoc> {
  const manifest = jobManifest(t.plane, { name, steps: 400, stepTime: 0.25, rules: [INJECTED] });
  expect((await t.submit(manifest)).status).toBe(201);
  return t.waitForTraining(name, 3);
}

describe('log delivery at least once', () => {
  // Other suites may load the two shared cores heavily; these scenarios wait on several restarts.
  it('turns a fault delivered twice at once, again later and reordered into exactly one process-level restart', {
    timeout: 120_000,
  }, async () => {
    const t = e2e();
    const before = await startJob(t, 'dup');
    const logs = makeHandler(t.plane.deps);
    const { inOrder, reversed } = await faultPayloads(before);

    // The same batch twice at the same moment (a Lambda retry racing the first attempt).
    const [a, b] = await Promise.all([deliver(logs, inOrder), deliver(logs, inOrder)]);
    expect([a.jobs[0]?.status, b.jobs[0]?.status]).toEqual(
      expect.arrayContaining([expect.stringMatching(/^(reconciled|duplicate)$/)]),
    );
    const restarted = await t.job('dup');
    expect(restarted.status.remediations.map((r) => [r.generation, r.reason, r.level])).toEqual([
      [before.status.generation + 1, 'LogFault_InjectedFault', 'process'],
    ]);
    expect(restarted.status.generation).toBe(before.status.generation + 1);

    // Once the first delivery is marked, a replay is recognised as such.
    expect((await deliver(logs, inOrder)).jobs).toEqual([expect.objectContaining({ status: 'duplicate' })]);
    // The same lines in another order form another batch; they are older than the new generation's run.
    expect((await deliver(logs, reversed)).jobs).toEqual([expect.objectContaining({ status: 'reconciled' })]);

    const after = await t.waitFor('dup', 'the restart recovered', recovered(before.status.generation + 1));
    // Late again, after the recovery: still the old generation's lines.
    await deliver(logs, reversed);
    await t.waitForTraining('dup', 3);
    const settled = await t.job('dup');
    expect(settled.status.generation).toBe(after.status.generation);
    expect(settled.status.restartCount).toBe(1);
    expect(settled.status.processRestartCount).toBe(1);
    expect(settled.status.remediations).toHaveLength(1);
    expect(settled.status.pods.map((p) => p.name).sort()).toEqual(
      before.status.pods.map((p) => p.name).sort(),
    );

    const faults = (await t.events('dup')).filter((e) => e.lifecycle === 'FaultDetected');
    expect(faults.map((e) => e.reason)).toEqual(['LogFault_InjectedFault']);
    await eventually(
      () => t.metrics(),
      (m) => expect(m).toMatch(/hyperpod_training_operator_jobs_restarted_total(\{[^}]*\})? 1\b/),
    );
    // Free the nodes and the shared cores for the next scenario.
    expect((await requestRetrying(`${t.api}/jobs/default/dup`, { method: 'DELETE' })).status).toBe(202);
    await eventually(
      () => t.kubePods('dup'),
      (pods) => expect(pods).toEqual([]),
      30_000,
    );
  });

  it('converges a restart whose handler crashed after the state write: the next sweep finishes it in the next generation, once', {
    timeout: 120_000,
  }, async () => {
    const t = e2e();
    const before = await startJob(t, 'crash-after-write');

    // The logs handler dies right after its write, at its first agent call (as a Lambda timing out would).
    let thrown = 0;
    const cluster = new Proxy(t.plane.deps.cluster, {
      get(target, prop, receiver) {
        if (prop === 'stopAgents' && thrown === 0) {
          return async () => {
            thrown += 1;
            throw new TransientError('injected: the handler crashed after writing the restart');
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) satisfies Cluster;
    const logs = makeHandler({ ...t.plane.deps, cluster });
    const { inOrder } = await faultPayloads(before);

    // Its write may also lose to the job's other writers and be retried: deliver until it crashed once.
    for (let attempt = 1; thrown === 0 && attempt <= 6; attempt++) {
      const failure = await logs(inOrder).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(TransientError);
    }
    expect(thrown).toBe(1);
    const written = await t.job('crash-after-write');
    expect(written.status.generation).toBe(before.status.generation + 1);
    expect(written.status.remediations.map((r) => r.reason)).toEqual(['LogFault_InjectedFault']);

    // The platform's retry of the batch finds the job restarting already: no second restart.
    await deliver(makeHandler(t.plane.deps), inOrder);
    await t.plane.sweep();
    const after = await t.waitFor(
      'crash-after-write',
      'converged by the sweep',
      recovered(before.status.generation + 1),
    );
    expect(after.status.restartCount).toBe(1);
    expect(after.status.remediations).toHaveLength(1);
    expect(after.status.remediations[0]!.level).toBe('process');
    expect(
      after.status.pods
        .filter((p) => p.rank !== null)
        .every((p) => p.agentGeneration === after.status.generation),
    ).toBe(true);
    expect(after.status.pods.map((p) => p.name).sort()).toEqual(before.status.pods.map((p) => p.name).sort());
    const lifecycle = (await t.events('crash-after-write')).map((e) => e.lifecycle).filter(Boolean);
    expect(lifecycle.filter((l) => l === 'RestartStarted')).toHaveLength(1);
    expect(lifecycle.filter((l) => l === 'RestartCompleted')).toHaveLength(1);
    // Training goes on in the new generation.
    await t.waitForTraining('crash-after-write', 3);
    expect((await t.job('crash-after-write')).status.generation).toBe(after.status.generation);
  });
});
