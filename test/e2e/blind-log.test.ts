/**
 * A subscription filter that drops worker lines, end to end: the plane's shipper writes the stock Container
 * Insights records (Labels Off) and applies the `labels` mode's pattern (`?"trainkeeper.dev/job"
 * ?"agent/v1"`, stacks/log-filter.ts), which with Labels Off passes agent records only — the fault issue 14
 * found on AWS. A job with a short recurring rule must not be restarted for the silence this causes: the
 * control plane raises LogsNotArriving, says what to fix, and the job still finishes.
 */
import { describe, expect, it } from 'vitest';
import { LABELS_FILTER_PATTERN } from '../../stacks/log-filter.ts';
import { jobManifest, useControlPlane } from './harness.ts';

const e2e = useControlPlane({ logFilterPattern: LABELS_FILTER_PATTERN });

describe('a subscription filter that drops worker lines', () => {
  it('raises LogsNotArriving and holds the recurring rule instead of restarting, and the job succeeds', async () => {
    const t = e2e();
    // A start cut-off (the first step line within 3 s) and a recurring frequency (then every 2 s): with no
    // worker line arriving, the cut-off's hang verdict comes 3 s into the run and would restart the job.
    const beat = {
      name: 'Beat',
      logPattern: '.*step \\d+/\\d+.*',
      expectedStartCutOffInSeconds: 3,
      expectedRecurringFrequencyInSeconds: 2,
    };
    // 15 s of training: five times the cut-off, without one worker line reaching the rules.
    const manifest = jobManifest(t.plane, { name: 'blind', steps: 150, stepTime: 0.1, rules: [beat] });
    expect((await t.submit(manifest)).status).toBe(201);
    const raised = await t.waitFor(
      'blind',
      'LogsNotArriving',
      (j) => j.status.conditions.some((c) => c.type === 'LogsNotArriving' && c.status === 'True'),
      60_000,
    );
    const condition = raised.status.conditions.find((c) => c.type === 'LogsNotArriving')!;
    expect(condition.message).toContain('subscription filter');
    expect(condition.message).toContain('Beat');
    const done = await t.waitFor('blind', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations).toEqual([]);
    expect(done.status.generation).toBe(0);
    const events = await t.events('blind');
    expect(events.filter((e) => e.reason === 'LogsNotArriving')).toHaveLength(1);
    expect(events.some((e) => e.lifecycle === 'FaultDetected')).toBe(false);
  }, 150_000);
});
