import { describe, expect, it } from 'vitest';
import { jobManifest, useControlPlane } from './harness.ts';
import {
  checkpointDir,
  lifecycleUntil,
  metricValue,
  podLog,
  RECOVERED_AND_SUCCEEDED,
  rankPods,
  waitNoPods,
  waitNoProcessesWith,
} from './scenario-helpers.ts';

const e2e = useControlPlane();

/**
 * HyperPod's hang rule: a loss line is expected every 10 s from any rank. Not shorter: the log path (shipper
 * → logs handler, one reconcile per batch under per-job write contention) lags by seconds on a loaded
 * machine, and the quiet between the last step and the COMPLETED records landing must not read as a hang.
 */
const HANG_RULE = { name: 'JobHang', logPattern: '.*Loss: .*', expectedRecurringFrequencyInSeconds: 10 };

describe('a hung rank (it stops logging; its peers block in the all-reduce)', () => {
  it('is found by the hang rule, restarted at process level in the same pods, resumes from its checkpoint and the job succeeds', async () => {
    const t = e2e();
    const name = 'hang';
    expect(
      (
        await t.submit(
          jobManifest(t.plane, { name, steps: 60, stepTime: 0.2, checkpointEvery: 10, rules: [HANG_RULE] }),
        )
      ).status,
    ).toBe(201);
    const before = await t.waitForTraining(name, 22);
    const podsBefore = rankPods(before).map((p) => p.name);

    await t.chaos(name, 'hang', { rank: 1 });
    const after = await t.waitFor(
      name,
      'a recovered restart after the hang',
      (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
      90_000,
    );
    const remediation = after.status.remediations[0]!;
    expect(remediation.reason).toBe('LogHang_JobHang');
    expect(remediation.level).toBe('process');
    expect(after.status.generation).toBe(before.status.generation + 1);
    expect(rankPods(after).map((p) => p.name)).toEqual(podsBefore);
    expect(rankPods(after).every((p) => p.agentGeneration === after.status.generation)).toBe(true);

    // The restarted generation resumed from the last checkpoint the first one finalized (not from step 0):
    // rank 0's pod log (one agent, both generations of workers) through the Kubernetes API.
    await t.waitForTraining(name, 5);
    const log = await podLog(t, podsBefore[0]!);
    const saved = [...log.matchAll(/Saved checkpoint step (\d+)/g)].map((m) => Number(m[1]));
    const resumed = [...log.matchAll(/Resuming from checkpoint step (\d+)/g)].map((m) => Number(m[1]));
    expect(resumed.at(-1)).toBeGreaterThanOrEqual(20);
    expect(saved).toContain(resumed.at(-1));

    const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations.map((r) => [r.reason, r.level])).toEqual([
      ['LogHang_JobHang', 'process'],
    ]);
    expect(done.status.processRestartCount).toBe(1);
    expect(done.status.restartStatus.fullJobRestartCount).toBe(0);
    expect(done.status.progress.step).toBeGreaterThan(after.status.progress.step ?? 0);

    const timeline = await lifecycleUntil(t, name, 'JobSucceeded');
    expect(timeline).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));
    expect(timeline.indexOf('FaultDetected')).toBeLessThan(timeline.indexOf('RestartCompleted'));
    const metrics = await t.metrics();
    expect(metricValue(metrics, 'trainkeeper_restarts_total', { level: 'process', reason: 'LogHang' })).toBe(
      1,
    );

    // Succeeded with cleanPodPolicy All: pods gone, no process of the job survives (the hung rank included).
    expect(await waitNoProcessesWith(checkpointDir(t, name))).toEqual([]);
    expect(await waitNoPods(t, name)).toEqual([]);
  }, 120_000);
});
