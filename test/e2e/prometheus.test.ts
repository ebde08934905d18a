import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalControlPlane } from '../../local/control-plane.ts';
import { hasPrometheus, type LocalPrometheus, startPrometheus } from '../support/prometheus.ts';
import { E2E, jobManifest } from './harness.ts';

// The local control plane remote-writes its metrics to Debian's Prometheus (as the Lambdas do to Amazon
// Managed Prometheus): the HyperPod metric names must arrive with the values the job's history implies.
const available = hasPrometheus();
if (!available)
  console.warn('SKIPPED: prometheus is not installed (apt-get install prometheus); .ci/run installs it');

describe.skipIf(!available)('metrics remote-written by the local control plane', () => {
  let prometheus: LocalPrometheus;
  let t: E2E;
  beforeAll(async () => {
    prometheus = await startPrometheus();
    t = new E2E(await startLocalControlPlane({ nodes: 3, prometheusUrl: prometheus.writeUrl }));
  }, 120_000);
  afterAll(async () => {
    await t?.plane.stop();
    await prometheus?.stop();
  }, 120_000);

  const value = async (expr: string): Promise<number | undefined> => {
    const res = await prometheus.query(expr);
    const sample = res.data?.result?.[0]?.value?.[1];
    return sample === undefined ? undefined : Number(sample);
  };

  it('carries created, restarted and successful job counts and the restart latency to Prometheus', async () => {
    expect((await t.submit(jobManifest(t.plane, { name: 'metrics', steps: 60 }))).status).toBe(201);
    await t.waitForTraining('metrics');
    await t.chaos('metrics', 'crash', { rank: 0 });
    await t.waitFor('metrics', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    await t.plane.sweep(); // a sweep pushes the totals again

    await expect
      .poll(() => value('hyperpod_training_operator_jobs_created_total'), { timeout: 20_000 })
      .toBe(1);
    await expect
      .poll(() => value('hyperpod_training_operator_jobs_restarted_total'), { timeout: 20_000 })
      .toBe(1);
    await expect
      .poll(() => value('hyperpod_training_operator_jobs_successful_total'), { timeout: 20_000 })
      .toBe(1);
    expect(await value('hyperpod_training_operator_jobs_restart_latency')).toBeGreaterThan(0);
    expect(await value('sum(trainkeeper_restarts_total{level="process"})')).toBe(1);
    expect(await value('sum(trainkeeper_log_lines_evaluated_total)')).toBeGreaterThan(100);
  });
});
