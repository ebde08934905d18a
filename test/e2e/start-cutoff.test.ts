import { describe, expect, it } from 'vitest';
import { eventually } from './eventually.ts';
import { jobManifest, useControlPlane } from './harness.ts';

const e2e = useControlPlane();

/** A start rule waiting for a line the simulated trainer never prints. */
const NEVER_STARTS = { name: 'ModelReady', logPattern: '.*MODEL READY.*', expectedStartCutOffInSeconds: 3 };

describe('a job whose start pattern never appears', () => {
  it('is restarted at process level for LogHang_<rule> after the cutoff, again after each restart, and fails when the retry budget is spent', {
    timeout: 120_000,
  }, async () => {
    const t = e2e();
    const manifest = jobManifest(t.plane, {
      name: 'cutoff',
      steps: 2000,
      stepTime: 0.25,
      rules: [NEVER_STARTS],
      runPolicy: { jobMaxRetryCount: 2 },
    });
    expect((await t.submit(manifest)).status).toBe(201);
    const running = await t.waitFor('cutoff', 'Running', (j) => j.status.phase === 'Running');
    const podsBefore = running.status.pods.map((p) => p.name).sort();

    const restarted = await t.waitFor(
      'cutoff',
      'the first restart',
      (j) => j.status.remediations.length >= 1,
    );
    const first = restarted.status.remediations[0]!;
    expect(first.reason).toBe('LogHang_ModelReady');
    expect(first.level).toBe('process');
    expect(first.generation).toBe(running.status.generation + 1);

    // The rule starts over with the new generation, and the cutoff hits again until the budget is spent.
    const failed = await t.waitFor('cutoff', 'Failed', (j) => j.status.phase === 'Failed', 60_000);
    expect(failed.status.remediations.map((r) => [r.reason, r.level])).toEqual([
      ['LogHang_ModelReady', 'process'],
      ['LogHang_ModelReady', 'process'],
    ]);
    expect(failed.status.processRestartCount).toBe(2);
    expect(failed.status.generation).toBe(running.status.generation + 2);
    const condition = failed.status.conditions.find((c) => c.type === 'Failed');
    expect(condition?.reason).toBe('MaxRetriesExceeded');
    expect(condition?.message).toContain('LogHang_ModelReady');
    // Process-level restarts keep the pods.
    expect(failed.status.remediations.every((r) => r.level === 'process')).toBe(true);
    expect(restarted.status.pods.map((p) => p.name).sort()).toEqual(podsBefore);

    const events = await t.events('cutoff');
    const lifecycle = events.map((e) => e.lifecycle).filter(Boolean);
    expect(lifecycle.filter((l) => l === 'RestartStarted')).toHaveLength(2);
    expect(lifecycle).toContain('JobFailed');
    // The third hang fails the job (its reason is in JobFailed's message) instead of restarting it.
    expect(events.filter((e) => e.lifecycle === 'FaultDetected').map((e) => e.reason)).toEqual([
      'LogHang_ModelReady',
      'LogHang_ModelReady',
    ]);
    expect(events.find((e) => e.lifecycle === 'JobFailed')?.message).toContain('LogHang_ModelReady');
    await eventually(
      () => t.metrics(),
      (metrics) => {
        expect(metrics).toMatch(/hyperpod_training_operator_jobs_failed_total(\{[^}]*\})? 1\b/);
        expect(metrics).toMatch(/hyperpod_training_operator_jobs_restarted_total(\{[^}]*\})? 2\b/);
        expect(metrics).toMatch(/trainkeeper_restarts_total\{level="process",reason="LogHang"\} 2\b/);
        // Each recovered restart is one latency observation (not one per metric name).
        expect(metrics).toMatch(/trainkeeper_restart_latency_seconds_count\{level="process"\} 2\b/);
        expect(metrics).toMatch(/trainkeeper_fault_detection_latency_seconds_count 2\b/);
      },
    );
  });
});
