/**
 * Elastic training end to end on the local plane: a real PyTorch DDP job (gloo, CPU) on 3 nodes with
 * `elasticPolicy` 2..3. A node fault leaves no room for a replacement, so after
 * `faultyScaleDownTimeoutInSeconds` every rank restarts at world size 2; the node is healed, and after
 * `scalingTimeoutInSeconds` the control plane adds a pod, raises the elastic event (the trainer polls
 * HyperPod's `elastic_event_detected()`, served by the agent's shim), and restarts every rank at world
 * size 3. The trainer's checkpoint ledger proves no step was lost or repeated across 3 → 2 → 3.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type JobDoc, jobManifest, useControlPlane } from './harness.ts';
import { checkpointDir, podLog, rankPods } from './scenario-helpers.ts';
import { hasTorch, TORCH_PY, warnWithoutTorch } from './torch.ts';

warnWithoutTorch('the elastic end-to-end scenario');

const e2e = useControlPlane({ nodes: 3 });
const STEPS = 90;

/** The job document with the elastic fields (core/api/documents.ts). */
type ElasticDoc = JobDoc & {
  status: JobDoc['status'] & {
    worldSize: number;
    elasticScalingStatus?: {
      currentReplicas: number;
      targetReplicas: number;
      allowedSizes: number[];
      capacity?: number;
      scalingCount: number;
      events: {
        direction: string;
        from: number;
        to: number;
        reason: string;
        outcome: string;
        durationMs: number;
      }[];
    };
  };
};

const world = (j: JobDoc) => (j as ElasticDoc).status.worldSize;
const elastic = (j: JobDoc) => (j as ElasticDoc).status.elasticScalingStatus;

describe.skipIf(!hasTorch)('elastic training (real DDP, gloo, CPU) on the local plane', () => {
  it('shrinks 3 → 2 after a node fault with no spare and grows back 2 → 3 when the node heals, without losing or repeating a step', async () => {
    const t = e2e();
    const name = 'elastic';
    const ckpt = checkpointDir(t, name);
    const manifest = parse(
      jobManifest(t.plane, {
        name,
        replicas: 3,
        nproc: 1,
        runPolicy: { cleanPodPolicy: 'None' },
        command: [
          'hyperpodrun',
          '--nproc-per-node=1',
          '--shutdown-signal=SIGTERM',
          '--shutdown-timeout=5',
          '--python',
          TORCH_PY,
          'examples/trainers/elastic_trainer.py',
          `--steps=${STEPS}`,
          '--step-time=0.25',
          `--checkpoint-dir=${ckpt}`,
        ],
      }),
    );
    manifest.spec.replicaSpecs[0].maxReplicas = 3;
    manifest.spec.elasticPolicy = {
      minReplicas: 2,
      maxReplicas: 3,
      replicaIncrementStep: 1,
      faultyScaleDownTimeoutInSeconds: 2,
      scalingTimeoutInSeconds: 3,
      gracefulShutdownTimeoutInSeconds: 30,
    };
    expect((await t.submit(stringify(manifest))).status).toBe(201);

    const atThree = await t.waitFor(
      name,
      'training at world size 3',
      (j) => j.status.phase === 'Running' && world(j) === 3 && (j.status.progress.step ?? 0) >= 5,
      120_000,
    );
    expect(elastic(atThree)).toMatchObject({
      currentReplicas: 3,
      targetReplicas: 3,
      allowedSizes: [2, 3],
      capacity: 3,
    });

    // Rank 2's node fails; the cluster has no other node: after 2 s the job continues at 2.
    const fault = await t.chaos(name, 'node-fault', { rank: 2 });
    const atTwo = await t.waitFor(
      name,
      'training at world size 2',
      (j) =>
        j.status.phase === 'Running' &&
        world(j) === 2 &&
        (j.status.progress.step ?? 0) >= (atThree.status.progress.step ?? 0) + 5,
      120_000,
    );
    expect(elastic(atTwo)?.events.at(-1)).toMatchObject({
      direction: 'down',
      from: 3,
      to: 2,
      reason: 'NodeFault',
      outcome: 'Completed',
    });
    expect(atTwo.status.remediations.at(-1)).toMatchObject({ reason: 'NodeFault' });
    expect(rankPods(atTwo).every((p) => p.node !== fault.node)).toBe(true);

    // The node is healthy again: after 3 s a pod is added, the elastic event drains the ranks, all restart at 3.
    await t.chaos(name, 'node-heal', { node: fault.node! });
    const back = await t.waitFor(
      name,
      'training at world size 3 again',
      (j) => j.status.phase === 'Running' && world(j) === 3 && (elastic(j)?.events.length ?? 0) >= 2,
      120_000,
    );
    const up = elastic(back)?.events.at(-1);
    expect(up).toMatchObject({
      direction: 'up',
      from: 2,
      to: 3,
      reason: 'CapacityAvailable',
      outcome: 'Completed',
    });
    expect(
      rankPods(back)
        .map((p) => p.rank)
        .sort(),
    ).toEqual([0, 1, 2]);
    // Scaling restarts are not faults: the one remediation is the node fault's.
    expect(back.status.remediations).toHaveLength(1);
    expect(back.status.processRestartCount).toBe(atTwo.status.processRestartCount);

    const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 180_000);
    expect(elastic(done)?.scalingCount).toBe(2);

    // The committed steps: 1..STEPS, each once, at world sizes 3, then 2, then 3.
    expect(existsSync(join(ckpt, 'latest.pt'))).toBe(true);
    const logs = await Promise.all(rankPods(done).map((p) => podLog(t, p.name)));
    const finals = new Set(
      logs.flatMap((l) => [...l.matchAll(/final step=\d+ ledger=(\S+)/g)].map((m) => m[1])),
    );
    expect(finals.size).toBe(1);
    const [steps, sizes] = [...finals][0]!.split('@');
    expect(JSON.parse(steps!)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(sizes).toBe('3->2->3');
    expect(logs.join('\n')).toMatch(/elastic event: checkpointed step \d+ at world size 2/);

    // Measured figures (printed, not asserted: tests do not assert wall-clock times).
    console.info(
      `elastic e2e: ${elastic(done)
        ?.events.map((e) => `${e.direction} ${e.from}→${e.to} (${e.reason}) ${e.durationMs} ms`)
        .join(
          '; ',
        )}; node-fault remediation ${done.status.remediations[0]?.restartLatencyMs} ms after detection`,
    );
    const events = await t.events(name);
    expect(events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['NodeFault', 'ScaledDown', 'ScaledUp']),
    );
    expect(await t.metrics()).toMatch(/trainkeeper_elastic_scaling_events_total\{[^}]*direction="up"/);
  }, 480_000);
});
