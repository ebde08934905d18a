/**
 * Elastic jobs through the real handlers: the sweep lists the nodes (capacity) for elastic jobs, the job
 * is placed at the largest size that fits, and when capacity returns it grows through the real agents'
 * `POST /elastic-event` (pods/proxy) and a restart of every rank at the new size. Assertions are on the
 * stored job and the cluster.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../core/job.ts';
import { NODE_HEALTH_LABEL } from '../../core/observations.ts';
import { makeHandler as makeApi } from '../../functions/api.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, NODES, startHarness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

const load = async (name: string): Promise<JobRecord> => {
  const job = await h.store.getJob({ namespace: NAMESPACE, name });
  if (!job) throw new Error(`job ${name} is missing`);
  return job;
};

const setHealth = (node: string, health: string) =>
  h.kube.store.mutate('nodes', undefined, node, (n) => {
    n.metadata.labels = { ...(n.metadata.labels ?? {}), [NODE_HEALTH_LABEL]: health };
  });

/** Plays kubelet + sweep until `done(job)` holds (bounded). */
async function converge(name: string, what: string, done: (job: JobRecord) => boolean): Promise<JobRecord> {
  const sweep = makeSweep(h.deps);
  let job = await load(name);
  for (let i = 0; i < 120 && !done(job); i++) {
    await h.kubelet();
    await sweep({}).catch(() => undefined);
    job = await load(name);
    if (!done(job)) await sleep(100);
  }
  if (!done(job))
    throw new Error(
      `job ${name}: no ${what}: phase ${job.phase}, ${JSON.stringify(job.elastic)} ${JSON.stringify(job.pods)}`,
    );
  return job;
}

const ranks = (job: JobRecord) => job.pods.filter((p) => p.groupRank !== null);

describe('an elastic job through the sweep', () => {
  it('starts at the size the schedulable nodes hold, then grows through the elastic event when nodes return', async () => {
    setHealth(NODES[2]!, 'Unschedulable');
    setHealth(NODES[3]!, 'UnschedulablePendingReboot');
    const text = manifest('elastic-a', NAMESPACE, (m) => {
      const spec = m.spec as Record<string, unknown> & { replicaSpecs: Record<string, unknown>[] };
      spec.nprocPerNode = 1;
      spec.trainkeeper = { presets: [] };
      spec.replicaSpecs[0]!.replicas = 4;
      spec.replicaSpecs[0]!.maxReplicas = 4;
      spec.elasticPolicy = {
        minReplicas: 2,
        maxReplicas: 4,
        replicaIncrementStep: 2,
        scalingTimeoutInSeconds: 1,
        gracefulShutdownTimeoutInSeconds: 1,
      };
    });
    const res = await makeApi(h.deps)(
      apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }),
    );
    expect(res.statusCode).toBe(201);

    const placed = await converge('elastic-a', 'Running at 2', (j) => j.phase === 'Running');
    expect(placed.elastic).toMatchObject({ allowedSizes: [2, 4], capacity: 2, currentReplicas: 2 });
    expect(ranks(placed)).toHaveLength(2);
    await h.kubelet();
    expect(h.kube.store.list('pods').filter((p) => p.metadata.name.startsWith('elastic-a'))).toHaveLength(2);

    setHealth(NODES[2]!, 'Schedulable');
    setHealth(NODES[3]!, 'Schedulable');
    const grown = await converge(
      'elastic-a',
      'Running at 4',
      (j) => j.phase === 'Running' && ranks(j).length === 4 && j.elastic?.scaling === undefined,
    );
    expect(grown.elastic).toMatchObject({
      capacity: 4,
      currentReplicas: 4,
      desiredReplicas: 4,
      scalingCount: 1,
    });
    expect(grown.elastic?.events.at(-1)).toMatchObject({
      direction: 'up',
      from: 2,
      to: 4,
      outcome: 'Completed',
    });
    expect(
      ranks(grown)
        .map((p) => p.groupRank)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    expect(
      ranks(grown).every((p) => p.agent?.state === 'RUNNING' && p.agent.generation === grown.generation),
    ).toBe(true);
    expect(grown.generation).toBe(placed.generation + 1);
    expect(grown.restartCount).toBe(0);
    // The agents that ran at size 2 got the elastic event through pods/proxy.
    const first = ranks(placed).map((p) => p.name);
    for (const pod of first) {
      expect(h.agents.get(`${NAMESPACE}/${pod}`)?.stderr).toMatch(
        /elastic event for generation 0: world size changes to 4/,
      );
    }
  }, 120_000);
});
