/**
 * The whole product with the log path the stage setting `logDelivery: {kinesis}` deploys: the shipper puts
 * each stream's subscription payload on a shard of a data stream stand-in, and the `logs` handler is
 * invoked with a shard's batch of records (many streams, several pods) at a time (local/shipper.ts). The
 * job comes up on its agents' records, a worker crash is recovered in place, and the job succeeds.
 */
import { describe, expect, it } from 'vitest';
import { jobManifest, useControlPlane } from './harness.ts';
import { RECOVERED_AND_SUCCEEDED } from './scenario-helpers.ts';

const e2e = useControlPlane({ logDelivery: 'kinesis' });

describe('logs delivered through a Kinesis data stream', () => {
  it('bring a job up, recover a worker crash by a process-level restart and see the job succeed', async () => {
    const t = e2e();
    expect((await t.submit(jobManifest(t.plane, { name: 'kin', steps: 80 }))).status).toBe(201);
    const before = await t.waitForTraining('kin');

    await t.chaos('kin', 'crash', { rank: 1, exitCode: 3 });
    const after = await t.waitFor(
      'kin',
      'a recovered process-level restart',
      (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
    );
    expect(after.status.remediations[0]?.level).toBe('process');
    expect(after.status.generation).toBe(before.status.generation + 1);

    const done = await t.waitFor('kin', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations).toHaveLength(1);
    const reasons = (await t.events('kin')).map((e) => e.lifecycle).filter(Boolean);
    expect(reasons).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));
  });
});
