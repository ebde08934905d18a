import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { eventually, requestRetrying } from './eventually.ts';
import { jobManifest, STEP_RULE, useControlPlane } from './harness.ts';

const e2e = useControlPlane();

/** Command lines of live processes that mention `needle` (the job's checkpoint dir is on every trainer's). */
const processesMentioning = (needle: string): string[] =>
  execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(needle));

describe('a running job', () => {
  it('takes up rules replaced through PUT …/rules: a new faultOnMatch rule on a periodic line restarts the job', {
    timeout: 120_000,
  }, async () => {
    const t = e2e();
    expect(
      (
        await t.submit(
          jobManifest(t.plane, { name: 'rules', steps: 400, stepTime: 0.25, checkpointEvery: 5 }),
        )
      ).status,
    ).toBe(201);
    await t.waitForTraining('rules', 12);
    // Checkpoints were saved already and nothing cared: the rule does not exist yet.
    expect((await t.job('rules')).status.remediations).toEqual([]);

    const rule = { name: 'CheckpointSaved', logPattern: '.*Saved checkpoint.*', faultOnMatch: true };
    const res = await requestRetrying(`${t.api}/jobs/default/rules/rules`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([rule, STEP_RULE]),
    });
    expect(res.status).toBe(200);

    const restarted = await t.waitFor(
      'rules',
      'a restart by the new rule',
      (j) => j.status.remediations.length >= 1,
    );
    const first = restarted.status.remediations[0]!;
    expect(first.reason).toBe('LogFault_CheckpointSaved');
    expect(first.level).toBe('process');
    const rules = (restarted.spec.runPolicy as { logMonitoringConfiguration: { name: string }[] })
      .logMonitoringConfiguration;
    expect(rules.map((r) => r.name)).toContain('CheckpointSaved');
    const faults = (await t.events('rules')).filter((e) => e.lifecycle === 'FaultDetected');
    expect(faults[0]?.reason).toBe('LogFault_CheckpointSaved');

    // The rule keeps firing at every checkpoint; cancelling ends it.
    expect((await requestRetrying(`${t.api}/jobs/default/rules`, { method: 'DELETE' })).status).toBe(202);
    await t.waitFor('rules', 'Cancelled', (j) => j.status.phase === 'Cancelled');
    await eventually(
      () => t.kubePods('rules'),
      (pods) => expect(pods).toEqual([]),
      30_000,
    );
  });

  it('cancelled in the middle of a restart ends Cancelled with no pod in the API server and no trainer or agent process left', {
    timeout: 120_000,
  }, async () => {
    const t = e2e();
    const checkpointDir = `${t.plane.dataDir}/checkpoints/default/cancel-me`;
    const manifest = jobManifest(t.plane, {
      name: 'cancel-me',
      steps: 400,
      stepTime: 0.25,
      // A long backoff before the restart's /start: the job is certainly mid-restart when the DELETE lands.
      trainkeeper: { restartBackoff: { freeRestarts: 0, initialSeconds: 60, maxSeconds: 60, multiplier: 1 } },
    });
    expect((await t.submit(manifest)).status).toBe(201);
    const before = await t.waitForTraining('cancel-me', 3);
    expect(processesMentioning(checkpointDir).length).toBeGreaterThan(0);

    await t.chaos('cancel-me', 'crash', { rank: 1, exitCode: 3 });
    const restarting = await t.waitFor('cancel-me', 'Restarting', (j) => j.status.phase === 'Restarting');
    expect(restarting.status.generation).toBe(before.status.generation + 1);

    const res = await requestRetrying(`${t.api}/jobs/default/cancel-me`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { status: { phase: string } }).status.phase).toBe('Cancelled');

    const cancelled = await t.waitFor('cancel-me', 'Cancelled', (j) => j.status.phase === 'Cancelled');
    expect(cancelled.status.conditions.find((c) => c.type === 'Cancelled')).toMatchObject({
      status: 'True',
      reason: 'Cancelled',
    });
    // The restart never completed, and nothing restarted it after the cancel.
    expect(cancelled.status.remediations).toHaveLength(1);
    expect(cancelled.status.remediations[0]!.restartLatencyMs).toBeNull();
    await eventually(
      () => t.kubePods('cancel-me'),
      (pods) => expect(pods).toEqual([]),
      30_000,
    );
    await eventually(
      async () => processesMentioning(checkpointDir),
      (procs) => expect(procs).toEqual([]),
      30_000,
    );
    const lifecycle = (await t.events('cancel-me')).map((e) => e.lifecycle).filter(Boolean);
    expect(lifecycle).toEqual(expect.arrayContaining(['FaultDetected', 'RestartStarted', 'JobCancelled']));
    expect(lifecycle).not.toContain('RestartCompleted');
    expect(lifecycle.at(-1)).toBe('JobCancelled');
    // A sweep after the cancel changes nothing.
    await t.plane.sweep();
    expect((await t.job('cancel-me')).status.phase).toBe('Cancelled');
    await eventually(
      () => t.metrics(),
      (m) => expect(m).toMatch(/hyperpod_training_operator_jobs_deleted_total(\{[^}]*\})? 2\b/),
    );
  });
});
