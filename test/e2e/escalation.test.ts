import { describe, expect, it } from 'vitest';
import { eventually, requestRetrying } from './eventually.ts';
import { type E2E, type JobDoc, jobManifest, useControlPlane } from './harness.ts';

// Five nodes: a 2-pod job can be recreated while avoiding a repeat-offender node, and two 2-pod jobs fit at once.
// DynamoDB Local: the job record in head and parts, written in transactions, as on AWS (dynalite has no
// transactions and keeps one item per job).
const e2e = useControlPlane({ nodes: 5, dynamodb: 'local' });

/** Crashes global rank 2 (group rank 1) and waits until the restart it causes has recovered. */
async function crashAndRecover(t: E2E, name: string, restarts: number): Promise<JobDoc> {
  await t.chaos(name, 'crash', { rank: 2, exitCode: 3 });
  return t.waitFor(
    name,
    `restart ${restarts} recovered`,
    (j) =>
      j.status.phase === 'Running' &&
      j.status.remediations.length === restarts &&
      j.status.remediations.every((r) => r.restartLatencyMs !== null),
  );
}

/** The node `maxNumRepeatOffendersToAvoid: 1` avoids: most faults, ties broken by name (core/decide/ladder.ts). */
const worstNode = (nodeFaults: Record<string, number>): string =>
  Object.entries(nodeFaults).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];

async function crashUntilTerminal(t: E2E, name: string): Promise<JobDoc> {
  for (let i = 0; i < 10; i++) {
    const before = await t.waitForTraining(name, 3);
    await t.chaos(name, 'crash', { rank: 2, exitCode: 3 });
    const after = await t.waitFor(
      name,
      'the crash handled',
      (j) => j.status.phase === 'Failed' || j.status.generation > before.status.generation,
    );
    if (after.status.phase === 'Failed') return after;
  }
  throw new Error(`${name} never failed`);
}

// Several restarts per test: give the shared two cores room when other suites load them (each run prints
// its duration; unloaded, a test takes about 20 s).
const SLOW = { timeout: 120_000 };

describe('repeated worker crashes', () => {
  it(
    'escalate to a full job restart after numRestartBeforeFullJobRestart process restarts in the window, recreating every pod away from the worst node',
    SLOW,
    async () => {
      const t = e2e();
      const manifest = jobManifest(t.plane, {
        name: 'escalate',
        steps: 1000,
        stepTime: 0.25,
        runPolicy: {
          restartPolicy: {
            numRestartBeforeFullJobRestart: 2,
            evalPeriodSeconds: 3600,
            maxFullJobRestarts: 1,
            maxNumRepeatOffendersToAvoid: 1,
          },
        },
      });
      expect((await t.submit(manifest)).status).toBe(201);
      const first = await t.waitForTraining('escalate', 3);
      const podsBefore = first.status.pods.map((p) => p.name).sort();

      await crashAndRecover(t, 'escalate', 1);
      await t.waitForTraining('escalate', 3);
      const second = await crashAndRecover(t, 'escalate', 2);
      expect(second.status.remediations.map((r) => r.level)).toEqual(['process', 'process']);
      expect(second.status.pods.map((p) => p.name).sort()).toEqual(podsBefore);
      expect(second.status.restartStatus.restartCount).toBe(2);
      await t.waitForTraining('escalate', 3);

      const third = await crashAndRecover(t, 'escalate', 3);
      const full = third.status.remediations[2]!;
      expect(full.level).toBe('job');
      expect(full.reason).toMatch(/^(WorkerCrash|LogFault_)/);
      expect(third.status.generation).toBe(first.status.generation + 3);
      expect(third.status.restartStatus.fullJobRestartCount).toBe(1);
      expect(third.status.restartStatus.restartCount).toBe(0);
      expect(third.status.processRestartCount).toBe(2);
      expect(third.status.latestFaultyPodInstanceList?.restartType).toBe('JLR');

      // Every pod was recreated under a new name, and none sits on the node that faulted most.
      const ranked = third.status.pods.filter((p) => p.rank !== null);
      expect(ranked.map((p) => p.rank).sort()).toEqual([0, 1]);
      for (const pod of third.status.pods) expect(podsBefore).not.toContain(pod.name);
      const worst = worstNode(third.status.nodeFaults);
      expect(full.nodes).toContain(worst);
      expect(ranked.every((p) => p.node !== undefined && p.node !== worst)).toBe(true);
      const kube = await eventually(
        () => t.kubePods('escalate'),
        (pods) => expect(pods.map((p) => p.name).sort()).toEqual(third.status.pods.map((p) => p.name).sort()),
      );
      expect(kube.every((p) => p.phase === 'Running' && p.node !== worst)).toBe(true);
      expect(ranked.every((p) => p.agentGeneration === third.status.generation)).toBe(true);

      const events = await t.events('escalate');
      expect(events.filter((e) => e.lifecycle === 'RestartStarted').map((e) => e.message)).toEqual([
        expect.stringContaining('process level'),
        expect.stringContaining('process level'),
        expect.stringContaining('job level'),
      ]);
      await eventually(
        () => t.metrics(),
        (m) => expect(m).toMatch(/trainkeeper_restarts_total\{level="job",reason="[A-Za-z]+"\} 1\b/),
      );

      // Free the nodes for the next jobs.
      expect((await requestRetrying(`${t.api}/jobs/default/escalate`, { method: 'DELETE' })).status).toBe(
        202,
      );
      await eventually(
        () => t.kubePods('escalate'),
        (pods) => expect(pods).toEqual([]),
        30_000,
      );
    },
  );

  it(
    'fail the job with MaxFullJobRestartsExceeded once maxFullJobRestarts is spent, and with MaxRetriesExceeded once jobMaxRetryCount is spent',
    SLOW,
    async () => {
      const t = e2e();
      const fullSpent = jobManifest(t.plane, {
        name: 'no-full',
        steps: 1000,
        stepTime: 0.25,
        runPolicy: {
          jobMaxRetryCount: 20,
          restartPolicy: {
            numRestartBeforeFullJobRestart: 1,
            evalPeriodSeconds: 3600,
            maxFullJobRestarts: 0,
          },
        },
      });
      const retriesSpent = jobManifest(t.plane, {
        name: 'no-retry',
        steps: 1000,
        stepTime: 0.25,
        runPolicy: { jobMaxRetryCount: 1 },
      });
      expect((await t.submit(fullSpent)).status).toBe(201);
      expect((await t.submit(retriesSpent)).status).toBe(201);

      const [noFull, noRetry] = await Promise.all([
        crashUntilTerminal(t, 'no-full'),
        crashUntilTerminal(t, 'no-retry'),
      ]);

      // One process restart fills the window; the next crash asks for a full restart there is no budget for.
      expect(noFull.status.remediations.map((r) => r.level)).toEqual(['process']);
      expect(noFull.status.restartStatus.fullJobRestartCount).toBe(0);
      const fullCondition = noFull.status.conditions.find((c) => c.type === 'Failed');
      expect(fullCondition).toMatchObject({ status: 'True', reason: 'MaxFullJobRestartsExceeded' });
      expect(fullCondition?.message).toContain('0 of 0');

      // One process restart spends jobMaxRetryCount 1; the next crash fails the job.
      expect(noRetry.status.remediations.map((r) => r.level)).toEqual(['process']);
      expect(noRetry.status.processRestartCount).toBe(1);
      const retryCondition = noRetry.status.conditions.find((c) => c.type === 'Failed');
      expect(retryCondition).toMatchObject({ status: 'True', reason: 'MaxRetriesExceeded' });
      expect(retryCondition?.message).toContain('1 of 1');

      for (const name of ['no-full', 'no-retry']) {
        const lifecycle = (await t.events(name)).map((e) => e.lifecycle).filter(Boolean);
        expect(lifecycle.filter((l) => l === 'RestartStarted')).toHaveLength(1);
        expect(lifecycle.at(-1)).toBe('JobFailed');
        // cleanPodPolicy All: a failed job leaves no pods.
        await eventually(
          () => t.kubePods(name),
          (pods) => expect(pods).toEqual([]),
          30_000,
        );
      }
      await eventually(
        () => t.metrics(),
        (m) => expect(m).toMatch(/hyperpod_training_operator_jobs_failed_total(\{[^}]*\})? 2\b/),
      );
    },
  );
});
