import { describe, expect, it } from 'vitest';
import { jobManifest, useControlPlane } from './harness.ts';
import { RECOVERED_AND_SUCCEEDED } from './scenario-helpers.ts';

const e2e = useControlPlane();

describe('a worker crash', () => {
  it('is recovered by a process-level restart in the same pods, one generation later, and the job succeeds', async () => {
    const t = e2e();
    expect((await t.submit(jobManifest(t.plane, { name: 'crash', steps: 80 }))).status).toBe(201);
    const before = await t.waitForTraining('crash');
    const podsBefore = before.status.pods.map((p) => p.name).sort();

    await t.chaos('crash', 'crash', { rank: 1, exitCode: 3 });
    const after = await t.waitFor(
      'crash',
      'a recovered process-level restart',
      (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
    );
    const remediation = after.status.remediations[0]!;
    expect(remediation.level).toBe('process');
    expect(remediation.reason).toMatch(/^(WorkerCrash|LogFault_)/);
    expect(after.status.generation).toBe(before.status.generation + 1);
    expect(after.status.pods.map((p) => p.name).sort()).toEqual(podsBefore);
    expect(
      after.status.pods
        .filter((p) => p.rank !== null)
        .every((p) => p.agentGeneration === after.status.generation),
    ).toBe(true);

    const done = await t.waitFor('crash', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations).toHaveLength(1);
    expect(done.status.processRestartCount).toBe(1);
    const reasons = (await t.events('crash')).map((e) => e.lifecycle).filter(Boolean);
    expect(reasons).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));
    expect(await t.metrics()).toMatch(/hyperpod_training_operator_jobs_restarted_total(\{[^}]*\})? 1\b/);
  });
});
