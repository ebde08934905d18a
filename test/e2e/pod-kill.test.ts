import { describe, expect, it } from 'vitest';
import { jobManifest, useControlPlane } from './harness.ts';
import {
  checkpointDir,
  lifecycleUntil,
  metricValue,
  RECOVERED_AND_SUCCEEDED,
  rankPods,
  waitNoPods,
  waitNoProcessesWith,
} from './scenario-helpers.ts';

const e2e = useControlPlane();

describe('a killed pod (deleted with grace period 0, as an eviction does)', () => {
  it('is replaced by a new pod, every rank restarts with the new rendezvous, and the job succeeds', async () => {
    const t = e2e();
    const name = 'podkill';
    // 0.3 s per step keeps the job's status in step with training on a busy machine (see slow.test.ts).
    expect((await t.submit(jobManifest(t.plane, { name, steps: 60, stepTime: 0.3 }))).status).toBe(201);
    const before = await t.waitForTraining(name, 5);
    const [pod0, pod1] = rankPods(before);

    // Rank 2 lives in the pod of group rank 1.
    const hit = await t.chaos(name, 'kill-pod', { rank: 2 });
    expect(hit.pod).toBe(pod1!.name);
    const after = await t.waitFor(
      name,
      'a recovered pod replacement',
      (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
      90_000,
    );
    const remediation = after.status.remediations[0]!;
    expect(remediation.level).toBe('pod');
    // Whichever the control plane saw first: the pod's deletion, its agent gone from the proxy, or — as the
    // killed pod's workers die with it — the surviving ranks' workers failing at the next all-reduce. The
    // restart that follows finds the pod gone and escalates to a replacement: one remediation, level pod.
    expect(remediation.reason).toMatch(/^(PodMissing|PodFailed|AgentUnreachable|WorkerCrash)$/);
    expect(remediation.pods).toContain(pod1!.name);
    expect(after.status.generation).toBe(before.status.generation + 1);

    // The surviving pod stays; group rank 1 is a new pod; every rank agent runs the new generation.
    const ranks = rankPods(after);
    expect(ranks.map((p) => p.rank)).toEqual([0, 1]);
    expect(ranks[0]!.name).toBe(pod0!.name);
    expect(ranks[1]!.name).not.toBe(pod1!.name);
    expect(ranks.every((p) => p.agentGeneration === after.status.generation)).toBe(true);
    // The rendezvous the agents were started with: rank 0's address, distinct pod IPs.
    expect(after.status.masterAddr).toBe(ranks[0]!.ip);
    expect(new Set(ranks.map((p) => p.ip)).size).toBe(2);
    // Kubernetes agrees: exactly the job's pods, the killed one gone.
    const kube = await t.kubePods(name);
    expect(kube.map((p) => p.name).sort()).toEqual(ranks.map((p) => p.name).sort());
    expect(kube.every((p) => p.phase === 'Running')).toBe(true);

    const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations.map((r) => r.level)).toEqual(['pod']);
    expect(done.status.processRestartCount).toBe(1);
    expect(done.status.restartStatus.fullJobRestartCount).toBe(0);
    const timeline = await lifecycleUntil(t, name, 'JobSucceeded');
    expect(timeline).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));
    // One restart in all; its level label is the level it started at (a restart begun at process level for
    // the peers' crash, then escalated when the pod was found gone, stays counted as one restart).
    expect(metricValue(await t.metrics(), 'trainkeeper_restarts_total')).toBe(1);
    expect(await waitNoPods(t, name)).toEqual([]);
    expect(await waitNoProcessesWith(checkpointDir(t, name))).toEqual([]);
  }, 150_000);
});
