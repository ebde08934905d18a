import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedSizes, elasticNextCheckAt, replicaCounts } from '../../core/decide/elastic.ts';
import { Metric } from '../../core/metrics.ts';
import type { ElasticPolicy, JobSpec } from '../../core/spec/types.ts';
import { given, makeSpec, type Scenario } from './dsl.ts';

/** An elastic spec: one replica spec of `replicas` pods (cap `maxReplicas`) and the given policy. */
const elasticSpec = (
  policy: ElasticPolicy,
  o: { replicas?: number; maxReplicas?: number; spares?: number } = {},
): JobSpec => {
  const spec = makeSpec({ replicas: o.replicas ?? 3, spares: o.spares ?? 0 });
  const replica = spec.replicaSpecs[0]!;
  if (o.maxReplicas !== undefined) replica.maxReplicas = o.maxReplicas;
  return { ...spec, elasticPolicy: policy };
};

const POLICY: ElasticPolicy = {
  minReplicas: 2,
  maxReplicas: 3,
  replicaIncrementStep: 1,
  faultyScaleDownTimeoutInSeconds: 60,
  scalingTimeoutInSeconds: 120,
  gracefulShutdownTimeoutInSeconds: 30,
};

/** A scenario on `nodes` nodes that hold one training pod each. */
const on = (spec: JobSpec, nodes: number): Scenario => {
  const s = given(spec, { nodes });
  s.world.exclusive = true;
  return s;
};

/** The sweep of the elastic shell: the job's pods and nodes, and every node of the cluster. */
const sweep = (s: Scenario): Scenario => s.observe(s.world.observedPods(s.now), s.world.observedNodes(s.now));

const ranks = (s: Scenario): number => s.job.pods.filter((p) => p.groupRank !== null).length;
const starts = (s: Scenario) => s.actionsOf('StartAgents').flatMap((a) => a.starts);

/** Running at the largest size that fits `nodes` nodes. */
const runningOn = (nodes: number, policy: ElasticPolicy = POLICY, spec?: JobSpec): Scenario => {
  const s = on(spec ?? elasticSpec(policy), nodes);
  sweep(s.after(1000));
  sweep(s.after(1000));
  expect(s.job.phase).toBe('Running');
  return s;
};

describe('allowed sizes', () => {
  it.each<[string, ElasticPolicy, { replicas?: number; maxReplicas?: number }, number[]]>([
    [
      'min + N·step up to max',
      { minReplicas: 2, maxReplicas: 8, replicaIncrementStep: 2 },
      { maxReplicas: 8 },
      [2, 4, 6, 8],
    ],
    [
      'a step that overshoots max stops below it',
      { minReplicas: 1, maxReplicas: 6, replicaIncrementStep: 2 },
      { maxReplicas: 6 },
      [1, 3, 5],
    ],
    [
      'discrete values as given',
      { minReplicas: 2, maxReplicas: 8, replicaDiscreteValues: [2, 4, 8] },
      { maxReplicas: 8 },
      [2, 4, 8],
    ],
    [
      'capped by the replica spec maxReplicas',
      { minReplicas: 2, maxReplicas: 8, replicaIncrementStep: 1 },
      { replicas: 2, maxReplicas: 4 },
      [2, 3, 4],
    ],
    [
      'capped by replicas when no spec says maxReplicas',
      { minReplicas: 1, maxReplicas: 8 },
      { replicas: 3 },
      [1, 2, 3],
    ],
    [
      'discrete values above the cap are dropped',
      { minReplicas: 2, maxReplicas: 8, replicaDiscreteValues: [2, 4, 8] },
      { maxReplicas: 4 },
      [2, 4],
    ],
  ])('%s', (_name, policy, o, sizes) => {
    expect(allowedSizes(elasticSpec(policy, o))).toEqual(sizes);
  });

  it('a job without elasticPolicy has no allowed sizes (it is not elastic)', () => {
    expect(allowedSizes(makeSpec())).toBeUndefined();
  });

  it("HyperPod's two-spec pattern fills the fixed base spec first, then the elastic spec", () => {
    const spec = makeSpec({ replicas: 2 });
    const base = spec.replicaSpecs[0]!;
    spec.replicaSpecs = [
      { ...base, name: 'base' },
      { ...base, name: 'elastic', replicas: 0, maxReplicas: 4 },
    ];
    spec.elasticPolicy = { minReplicas: 2, maxReplicas: 6 };
    expect(allowedSizes(spec)).toEqual([2, 3, 4, 5, 6]);
    expect(replicaCounts(spec, 2)).toEqual([2, 0]);
    expect(replicaCounts(spec, 5)).toEqual([2, 3]);
  });
});

describe('first placement', () => {
  it('starts at the largest allowed size when the capacity holds it', () => {
    const s = runningOn(4);
    expect(ranks(s)).toBe(3);
    expect(s.job.elastic).toMatchObject({ currentReplicas: 3, desiredReplicas: 3, capacity: 4 });
  });

  it('starts at the largest allowed size that fits, deleting the pod that found no node', () => {
    const s = on(elasticSpec(POLICY), 2);
    expect(s.actionsOf('CreatePods')[0]!.pods).toHaveLength(3);
    sweep(s.after(1000));
    expect(s.actionsOf('DeletePods').flatMap((a) => a.pods)).toHaveLength(1);
    sweep(s.after(1000));
    expect(s.job.phase).toBe('Running');
    expect(ranks(s)).toBe(2);
    expect(starts(s).length === 0 || starts(s).every((x) => x.body.nnodes === 2)).toBe(true);
    expect(s.job.elastic).toMatchObject({ currentReplicas: 2, desiredReplicas: 2, capacity: 2 });
    expect(s.job.restartCount).toBe(0);
  });

  it('with discrete sizes, picks the largest listed size that fits, not the capacity', () => {
    const policy: ElasticPolicy = { ...POLICY, maxReplicas: 4, replicaDiscreteValues: [2, 4] };
    delete policy.replicaIncrementStep;
    const s = runningOn(3, policy, elasticSpec(policy, { replicas: 4 }));
    expect(ranks(s)).toBe(2);
    expect(s.job.elastic?.allowedSizes).toEqual([2, 4]);
  });
});

describe('scale down on a fault with no capacity', () => {
  /** Running at 3 on 3 nodes; rank 2's node turns unhealthy and no other node is free. */
  const faultOnFullCluster = () => {
    const s = runningOn(3);
    const node = s.slot(2).nodeName!;
    s.after(10_000);
    s.world.nodes.get(node)!.health = 'UnschedulablePendingReboot';
    sweep(s);
    expect(s.job.phase).toBe('Restarting');
    return { s, node, faultAt: s.now };
  };

  it('waits faultyScaleDownTimeoutInSeconds for a replacement, then restarts all ranks at the next smaller size', () => {
    const { s, faultAt } = faultOnFullCluster();
    expect(elasticNextCheckAt(s.job)).toEqual([faultAt + 60_000]);
    expect(s.job.nextCheckAt).toBeLessThanOrEqual(faultAt + 60_000);
    expect(s.job.elastic?.desiredReplicas).toBe(2);

    sweep(s.at(faultAt + 30_000));
    expect(s.job.phase).toBe('Restarting');
    expect(ranks(s)).toBe(3);

    sweep(s.at(faultAt + 60_000));
    expect(s.job.phase).toBe('Running');
    expect(ranks(s)).toBe(2);
    expect(s.job.pods.map((p) => p.groupRank).sort()).toEqual([0, 1]);
    expect(starts(s).map((x) => x.body.nnodes)).toEqual([2, 2]);
    expect(starts(s).map((x) => x.body.rankIps?.length)).toEqual([2, 2]);
    expect(s.events()).toContain('ScaledDown');
    expect(s.job.elastic).toMatchObject({ currentReplicas: 2, desiredReplicas: 2, scalingCount: 1 });
    expect(s.job.elastic?.events.at(-1)).toMatchObject({
      direction: 'down',
      from: 3,
      to: 2,
      reason: 'NodeFault',
    });
    // The remediation of the node fault closes when the smaller job runs.
    expect(s.job.remediations.at(-1)).toMatchObject({ reason: 'NodeFault', recoveredAt: s.now });
    expect(s.job.conditions.find((c) => c.type === 'Running')?.message).toMatch(/NodeFault was remediated/);
  });

  it('does not shrink when a replacement node turns up inside the timeout', () => {
    const { s, node, faultAt } = faultOnFullCluster();
    s.at(faultAt + 30_000);
    s.world.nodes.get(node)!.health = 'Schedulable';
    sweep(s);
    sweep(s.after(1000));
    expect(s.job.phase).toBe('Running');
    expect(ranks(s)).toBe(3);
    expect(s.job.elastic).toMatchObject({ currentReplicas: 3, desiredReplicas: 3, scalingCount: 0 });
    expect(s.job.elastic?.shrinkWaitSince).toBeUndefined();
    sweep(s.at(faultAt + 120_000));
    expect(s.events(s.history)).not.toContain('ScaledDown');
  });

  it('never goes below minReplicas: with room for fewer, the job waits on the ordinary ladder', () => {
    const s = runningOn(2);
    const node = s.slot(1).nodeName!;
    s.after(10_000);
    s.world.nodes.get(node)!.health = 'UnschedulablePendingReboot';
    sweep(s);
    const faultAt = s.now;
    sweep(s.at(faultAt + 600_000));
    expect(s.job.phase).toBe('Restarting');
    expect(ranks(s)).toBe(2);
    expect(s.events(s.history)).not.toContain('ScaledDown');
    // Capacity back: the ordinary recovery finishes at the same size.
    s.world.nodes.get(node)!.health = 'Schedulable';
    sweep(s.after(1000));
    sweep(s.after(1000));
    expect(s.job.phase).toBe('Running');
    expect(ranks(s)).toBe(2);
  });

  it('counts the fault once by the ladder and the scaling restart in no budget', () => {
    const { s, faultAt } = faultOnFullCluster();
    const before = { restartCount: s.job.restartCount, processRestartCount: s.job.processRestartCount };
    sweep(s.at(faultAt + 60_000));
    expect(s.job.restartCount).toBe(before.restartCount);
    expect(s.job.processRestartCount).toBe(before.processRestartCount);
    expect(s.job.restartTimes ?? []).toEqual([]);
    expect(s.counters()[Metric.jobsRestarted]).toBe(1);
    expect(s.counters()[Metric.elasticScalingEvents]).toBe(1);
  });
});

describe('scale up when capacity appears', () => {
  /** Running at 2 on 2 nodes; a third node joins. */
  const nodeJoins = () => {
    const s = runningOn(2);
    s.after(10_000);
    s.world.nodes.set('node-new', {
      name: 'node-new',
      health: 'Schedulable',
      ready: true,
      instanceId: 'i-new',
    });
    sweep(s);
    return { s, joinedAt: s.now };
  };

  it('waits scalingTimeoutInSeconds, creates the extra pod, raises the elastic event, then restarts every rank at the new size', () => {
    const { s, joinedAt } = nodeJoins();
    expect(s.job.elastic).toMatchObject({ currentReplicas: 2, desiredReplicas: 3, growFitsSince: joinedAt });
    expect(elasticNextCheckAt(s.job)).toEqual([joinedAt + 120_000]);
    const generation = s.job.generation;

    sweep(s.at(joinedAt + 119_000));
    expect(s.actionsOf('CreatePods')).toEqual([]);

    sweep(s.at(joinedAt + 120_000));
    const created = s.actionsOf('CreatePods').flatMap((a) => a.pods);
    expect(created).toHaveLength(1);
    expect(created[0]!.spare).toBe(false);
    expect(s.job.elastic?.scaling).toMatchObject({ stage: 'CreatingPods', from: 2, to: 3 });
    expect(ranks(s)).toBe(2);
    // The next sweep sees the joining pod up and its agent READY.
    sweep(s.after(1000));
    const signal = s.actionsOf('SignalElasticEvent', s.history)[0];
    expect(signal).toMatchObject({ generation, targetReplicas: 3 });
    expect(signal?.pods).toHaveLength(2);
    // The workers checkpointed and exited (COMPLETED): that is the drain, not the job's success.
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(generation + 1);
    expect(ranks(s)).toBe(3);
    expect(s.job.pods.map((p) => p.groupRank).sort()).toEqual([0, 1, 2]);
    expect(starts(s).map((x) => x.body.nnodes)).toEqual([3, 3, 3]);
    expect(new Set(starts(s).map((x) => x.body.rank))).toEqual(new Set([0, 1, 2]));
    expect(s.actionsOf('StopAgents').flatMap((a) => a.pods)).toHaveLength(2);
    expect(s.events(s.history)).toContain('ScaledUp');
    // The job's status (its last True condition) stays Running through a scaling.
    expect(s.job.conditions.filter((c) => c.status === 'True').at(-1)?.type).toBe('Running');
    expect(s.job.elastic).toMatchObject({ currentReplicas: 3, desiredReplicas: 3, scalingCount: 1 });
    expect(s.job.elastic?.events.at(-1)).toMatchObject({
      direction: 'up',
      from: 2,
      to: 3,
      outcome: 'Completed',
    });
  });

  it('keeps the budgets as they were: a scaling restart is not a fault', () => {
    const { s, joinedAt } = nodeJoins();
    sweep(s.at(joinedAt + 120_000));
    sweep(s.after(1000));
    expect(ranks(s)).toBe(3);
    expect(s.job.restartCount).toBe(0);
    expect(s.job.processRestartCount).toBe(0);
    expect(s.job.progress.restartsWithoutProgress).toBe(0);
    expect(s.job.restartStreak ?? 0).toBe(0);
    expect(s.counters()[Metric.jobsRestarted]).toBeUndefined();
    expect(s.counters()[Metric.elasticSecondsBelowMax]).toBeGreaterThan(0);
  });

  it('damps flapping: capacity that goes away inside the timeout restarts the clock', () => {
    const { s, joinedAt } = nodeJoins();
    s.at(joinedAt + 60_000);
    s.world.nodes.get('node-new')!.health = 'Unschedulable';
    sweep(s);
    expect(s.job.elastic?.growFitsSince).toBeUndefined();
    expect(s.job.elastic?.desiredReplicas).toBe(2);
    s.at(joinedAt + 70_000);
    s.world.nodes.get('node-new')!.health = 'Schedulable';
    sweep(s);
    sweep(s.at(joinedAt + 120_000));
    expect(s.actionsOf('CreatePods', s.history).slice(-1)[0]?.pods.length ?? 0).not.toBe(1);
    expect(ranks(s)).toBe(2);
    sweep(s.at(joinedAt + 190_000));
    sweep(s.after(1000));
    expect(s.job.generation).toBe(1);
    expect(ranks(s)).toBe(3);
  });

  it('restarts at the new size after gracefulShutdownTimeoutInSeconds when the workers ignore the event', () => {
    const { s, joinedAt } = nodeJoins();
    s.world.onElasticEvent = 'ignore';
    sweep(s.at(joinedAt + 120_000));
    sweep(s.after(1000));
    expect(s.job.elastic?.scaling?.stage).toBe('Draining');
    expect(elasticNextCheckAt(s.job)).toEqual([s.now + 30_000]);
    sweep(s.after(29_000));
    expect(s.job.elastic?.scaling?.stage).toBe('Draining');
    sweep(s.after(1000));
    expect(s.job.phase).toBe('Running');
    expect(ranks(s)).toBe(3);
    expect(starts(s).map((x) => x.body.nnodes)).toEqual([3, 3, 3]);
  });

  it('a worker crash while draining is the drain, not a fault', () => {
    const { s, joinedAt } = nodeJoins();
    s.world.onElasticEvent = 'ignore';
    sweep(s.at(joinedAt + 120_000));
    sweep(s.after(1000));
    expect(s.job.elastic?.scaling?.stage).toBe('Draining');
    s.after(1000).observe(s.crash(0));
    expect(s.job.restartCount).toBe(0);
    expect(s.job.elastic?.scaling?.stage).toBe('Draining');
  });

  it('waits out scaleUpSnoozeTimeInSeconds after a restart before growing', () => {
    const spec = elasticSpec(POLICY);
    spec.runPolicy.restartPolicy = { evalPeriodSeconds: 3600, scaleUpSnoozeTimeInSeconds: 600 };
    const s = runningOn(2, POLICY, spec);
    const runningSince = s.job.runningSince!;
    s.world.nodes.set('node-new', {
      name: 'node-new',
      health: 'Schedulable',
      ready: true,
      instanceId: 'i-new',
    });
    sweep(s.after(1000));
    expect(elasticNextCheckAt(s.job)).toEqual([runningSince + 600_000]);
    sweep(s.at(runningSince + 599_000));
    expect(s.job.elastic?.scaling).toBeUndefined();
    sweep(s.at(runningSince + 600_000));
    sweep(s.after(1000));
    expect(ranks(s)).toBe(3);
  });
});

describe('jobs without elasticPolicy', () => {
  it('keep their size whatever the capacity says', () => {
    const s = given(makeSpec({ replicas: 2 }), { nodes: 4 });
    sweep(s.after(1000));
    expect(s.job.elastic).toBeUndefined();
    s.world.nodes.set('extra', { name: 'extra', health: 'Schedulable', ready: true, instanceId: 'i-x' });
    sweep(s.after(600_000));
    expect(ranks(s)).toBe(2);
    expect(s.job.phase).toBe('Running');
  });
});

describe('property: the world size', () => {
  type Step = { kind: 'down' | 'up'; node: number } | { kind: 'wait'; seconds: number };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant('down' as const), node: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant('up' as const), node: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant('wait' as const), seconds: fc.integer({ min: 1, max: 200 }) }),
  );

  it('is always an allowed size ≥ minReplicas and, once Running, never exceeds the schedulable capacity', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ElasticPolicy>(
          { ...POLICY, maxReplicas: 4 },
          { ...POLICY, minReplicas: 1, maxReplicas: 4, replicaIncrementStep: 2 },
          { minReplicas: 2, maxReplicas: 4, replicaDiscreteValues: [2, 4], scalingTimeoutInSeconds: 30 },
        ),
        fc.array(stepArb, { maxLength: 25 }),
        (policy, steps) => {
          const s = on(elasticSpec(policy, { replicas: 4 }), 5);
          const sizes = allowedSizes(s.job.spec)!;
          sweep(s.after(1000));
          for (const step of steps) {
            if (step.kind === 'wait') s.after(step.seconds * 1000);
            else {
              s.after(1000);
              s.world.nodes.get(`node-${step.node}`)!.health =
                step.kind === 'down' ? 'UnschedulablePendingReboot' : 'Schedulable';
            }
            sweep(s);
            const n = ranks(s);
            expect(sizes).toContain(n);
            expect(n).toBeGreaterThanOrEqual(sizes[0]!);
            expect(sizes).toContain(s.job.elastic!.currentReplicas);
            const capacity = [...s.world.nodes.values()].filter((x) => x.health === 'Schedulable').length;
            if (s.job.phase === 'Running' && capacity >= sizes[0]!) expect(n).toBeLessThanOrEqual(capacity);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('pod names', () => {
  it('never reuses the name of a pod removed by a resize (it may still be terminating)', () => {
    const s = on(elasticSpec(POLICY), 2);
    sweep(s.after(1000));
    const removed = s.actionsOf('DeletePods', s.history).flatMap((a) => a.pods);
    expect(removed).toHaveLength(1);
    sweep(s.after(1000));
    s.world.nodes.set('node-new', {
      name: 'node-new',
      health: 'Schedulable',
      ready: true,
      instanceId: 'i-new',
    });
    sweep(s.after(1000));
    sweep(s.after(120_000));
    const created = [...new Set(s.actionsOf('CreatePods').flatMap((a) => a.pods.map((p) => p.name)))];
    expect(created).toHaveLength(1);
    expect(removed).not.toContain(created[0]);
  });
});
