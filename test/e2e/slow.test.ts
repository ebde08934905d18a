import { describe, expect, it } from 'vitest';
import { type E2E, jobManifest, useControlPlane } from './harness.ts';
import {
  expectNothingLeft,
  lifecycleUntil,
  metricValue,
  RECOVERED_AND_SUCCEEDED,
  rankPods,
} from './scenario-helpers.ts';

const e2e = useControlPlane();

/**
 * The demo's loss-spike rule. Threshold 3 because the trainer logs the all-reduced loss: one rank's ×10
 * spike lifts the mean of 4 ranks to ≈ 3.25× (loss ≈ 2 → ≈ 6.5), well above 3 and well above the normal
 * loss (≤ 2.6), on every rank's line.
 */
const LOSS_SPIKE = {
  name: 'LossSpike',
  logPattern: '.*Loss: (\\d+(?:\\.\\d+)?).*',
  operator: 'gt',
  metricThreshold: 3,
  metricEvaluationDataPoints: 3,
};

/**
 * The demo's throughput rule: per-rank samples/s below 100 over 5 data points. A rank logs its nominal
 * throughput, 256 / 4 ranks / 0.3 s ≈ 213 samples/s, and 5 % of that (≈ 11) while slowed.
 */
const LOW_THROUGHPUT = {
  name: 'LowThroughput',
  logPattern: '.* (\\d+(?:\\.\\d+)?) samples/s.*',
  operator: 'lt',
  metricThreshold: 100,
  metricEvaluationDataPoints: 5,
};

/**
 * Injects `fault` into a training job carrying only `rule`, and checks the whole path: one finding under
 * `LogSlow_<rule>`, one process-level restart in the same pods, success, timeline, metrics, nothing left.
 */
async function slowScenario(
  t: E2E,
  name: string,
  rule: Record<string, unknown> & { name: string },
  fault: 'spike' | 'slow',
  steps: number,
): Promise<void> {
  expect(
    (await t.submit(jobManifest(t.plane, { name, steps: 60, stepTime: 0.3, rules: [rule] }))).status,
  ).toBe(201);
  // 0.3 s per step: fewer, fuller log batches, so the job's status keeps up with training on a busy
  // machine (at 0.1 s, every container's 150 ms flush reconciles the job and the status lagged whole runs).
  const before = await t.waitForTraining(name, 5);
  expect(before.status.remediations).toEqual([]);
  const pods = rankPods(before).map((p) => p.name);

  await t.chaos(name, fault, { rank: 1, steps });
  const after = await t.waitFor(
    name,
    `a recovered restart after the ${fault}`,
    (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
  );
  const reason = `LogSlow_${rule.name}`;
  expect(after.status.remediations.map((r) => [r.reason, r.level])).toEqual([[reason, 'process']]);
  expect(JSON.stringify(after.status.remediations[0])).toContain(rule.name);
  expect(after.status.generation).toBe(before.status.generation + 1);
  expect(rankPods(after).map((p) => p.name)).toEqual(pods);
  expect(rankPods(after).every((p) => p.agentGeneration === after.status.generation)).toBe(true);

  const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 90_000);
  expect(done.status.remediations.map((r) => r.reason)).toEqual([reason]);
  expect(done.status.processRestartCount).toBe(1);
  expect(done.status.restartStatus.fullJobRestartCount).toBe(0);
  // The last step lines may land just after the COMPLETED records; progress went on past the restart.
  expect(done.status.progress.step).toBeGreaterThan(after.status.progress.step ?? 0);

  const timeline = await lifecycleUntil(t, name, 'JobSucceeded');
  // One restart; every stream that turned SLOW in that generation is its own FaultDetected (with the spike,
  // every rank logs the spiked all-reduced loss, so several may land in one batch).
  expect(timeline.filter((e) => e === 'RestartStarted')).toHaveLength(1);
  const faults = (await t.events(name)).filter((e) => e.lifecycle === 'FaultDetected');
  expect(faults.length).toBeGreaterThanOrEqual(1);
  expect(faults.every((e) => e.reason === reason && e.generation === after.status.generation)).toBe(true);
  expect(timeline).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));
  await expectNothingLeft(t, name);
}

describe('slow-training rules (a metric over N data points)', () => {
  it('a loss spike over 3 data points is found as LogSlow_LossSpike and restarted at process level; the job succeeds', async () => {
    const t = e2e();
    await slowScenario(t, 'spike', LOSS_SPIKE, 'spike', 6);
    expect(
      metricValue(await t.metrics(), 'trainkeeper_restarts_total', { level: 'process', reason: 'LogSlow' }),
    ).toBe(1);
  }, 120_000);

  it('low throughput over 5 data points (a straggling rank) is found as LogSlow_LowThroughput and restarted at process level; the job succeeds', async () => {
    const t = e2e();
    await slowScenario(t, 'straggler', LOW_THROUGHPUT, 'slow', 10);
    // Both scenarios so far: two slow-rule restarts, both process level.
    expect(
      metricValue(await t.metrics(), 'trainkeeper_restarts_total', { level: 'process', reason: 'LogSlow' }),
    ).toBe(2);
    expect(metricValue(await t.metrics(), 'hyperpod_training_operator_jobs_successful_total')).toBe(2);
  }, 120_000);
});
