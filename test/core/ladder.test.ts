import { describe, expect, it } from 'vitest';
import { decide } from '../../core/decide.ts';
import { Metric } from '../../core/metrics.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { given, makeSpec, type Scenario, type SpecOptions } from './dsl.ts';

const running = (o: SpecOptions = {}): Scenario => given(makeSpec(o)).after(1000).bringUp();

const finding = (s: Scenario, rank: number, generation = s.job.generation): Observation => {
  const f: RuleFinding = {
    rule: 'JobHang',
    verdict: 'HANGING',
    reason: 'LogHang_JobHang',
    stream: `${s.slot(rank).name}/0`,
    rank,
    at: s.now - 5000,
    generation,
  };
  return { type: 'RuleFindings', findings: [f], ruleState: { generation } };
};

/** Crash rank 0 and let the shell loop bring the job back (the world answers instantly). */
const crashAndRecover = (s: Scenario, at: number): Scenario => s.at(at).observe(s.crash(0)).sweep();

describe('rung 1: process-level restart', () => {
  it('stops every rank agent, then starts all at generation + 1 on a new port, keeping the pods', () => {
    const s = running({ replicas: 2 });
    const pods = s.job.pods.map((p) => p.name);
    const port0 = s.job.masterPort;
    const t = s.now + 10_000;
    const r = s.at(t).decideOnly(s.crash(1));
    expect(r.job.generation).toBe(1);
    expect(r.job.phase).toBe('Restarting');
    expect(s.events()).toEqual(['FaultDetected', 'RestartStarted']);
    expect(s.actionsOf('StopAgents')).toEqual([{ type: 'StopAgents', pods, generation: 1 }]);
    expect(s.actionsOf('IncrementCounter').map((a) => [a.name, a.labels])).toEqual([
      [Metric.jobsRestarted, {}],
      [Metric.restarts, { level: 'process', reason: 'WorkerCrash' }],
    ]);
    expect(s.job.remediations.at(-1)).toMatchObject({
      reason: 'WorkerCrash',
      level: 'process',
      detectedAt: t,
      ranks: [1],
    });

    s.after(700).decideOnly(
      ...pods.map((pod) => ({
        type: 'AgentPolled' as const,
        pod,
        status: { status: 'ready', faultCount: 0 },
        at: s.now,
      })),
    );
    const start = s.actionsOf('StartAgents')[0]!;
    expect(start.generation).toBe(1);
    expect(start.starts[0]!.body.master_port).not.toBe(port0);
    expect(start.starts.map((x) => x.body.faultCount)).toEqual([1, 1]);

    s.after(1300).decideOnly(
      ...pods.map((pod) => ({
        type: 'AgentPolled' as const,
        pod,
        status: { status: 'running', faultCount: 1 },
        at: s.now,
      })),
    );
    expect(s.job.phase).toBe('Running');
    expect(s.job.pods.map((p) => p.name)).toEqual(pods);
    expect(s.job.conditions.find((c) => c.type === 'Running')?.message).toBe(
      'The fault of reason WorkerCrash was remediated in 2000 milliseconds.',
    );
    expect(s.events()).toEqual(['RestartCompleted']);
    expect(s.actionsOf('ObserveLatency').map((a) => [a.name, a.seconds])).toEqual([
      [Metric.restartLatency, 2],
    ]);
    expect(s.job.remediations.at(-1)?.recoveredAt).toBe(s.now);
    expect(s.job.restartCount).toBe(1);
    expect(s.job.processRestartCount).toBe(1);
  });

  it('restarts on a rule finding of the current generation, labelling the metric with the reason family', () => {
    const s = running();
    s.after(10_000).observe(finding(s, 0));
    expect(s.job.generation).toBe(1);
    expect(s.job.remediations.at(-1)).toMatchObject({ reason: 'LogHang_JobHang', faultAt: s.now - 5000 });
    expect(s.actionsOf('IncrementCounter').find((a) => a.name === Metric.restarts)?.labels).toEqual({
      level: 'process',
      reason: 'LogHang',
    });
    expect(s.actionsOf('ObserveLatency').find((a) => a.name === Metric.faultDetectionLatency)?.seconds).toBe(
      5,
    );
    expect(s.actionsOf('IncrementCounter').filter((a) => a.name === Metric.ruleFindings)).toEqual([
      expect.objectContaining({ labels: { rule: 'JobHang', verdict: 'HANGING' }, by: 1 }),
    ]);
  });

  it('counts no rule finding of an older generation', () => {
    const s = running();
    s.after(10_000).observe(finding(s, 0, s.job.generation - 1));
    expect(s.actionsOf('IncrementCounter').filter((a) => a.name === Metric.ruleFindings)).toEqual([]);
  });

  it("turns a worker-exit record with a non-zero code into a /status call, and the agent's FAULTED answer into one WorkerCrash restart", () => {
    const s = running();
    const pod = s.slot(1).name;
    const exit: Observation = {
      type: 'AgentRecord',
      pod,
      at: s.now + 5,
      record: {
        trainkeeper: 'agent/v1',
        ts: '',
        generation: 0,
        state: 'RUNNING',
        kind: 'worker-exit',
        localRank: 3,
        exitCode: 137,
        signal: null,
      },
    };
    s.after(5).decideOnly(exit);
    expect(s.job.phase).toBe('Running');
    expect(s.actionsOf('PollAgents')).toEqual([{ type: 'PollAgents', pods: [pod] }]);
    s.decideOnly(
      s.agentAnswer(pod, 'FAULTED', {
        reason: 'WorkerCrash',
        message: 'local rank 3 (global rank 3) exited with code 137',
      }),
    );
    expect(s.job.generation).toBe(1);
    expect(s.job.restartCount).toBe(1);
    expect(s.job.remediations.at(-1)?.message).toBe('local rank 3 (global rank 3) exited with code 137');
  });
});

describe('stale and duplicate inputs are no-ops', () => {
  it.each<[string, (s: Scenario) => Observation]>([
    ['a FAULTED record of the previous generation', (s) => s.crash(0, 0)],
    [
      'a heartbeat from a pod no longer in a slot',
      (s) => ({
        type: 'AgentRecord',
        pod: 'llama-pods-0-g99',
        at: s.now,
        record: { trainkeeper: 'agent/v1', ts: '', generation: 1, state: 'RUNNING', kind: 'heartbeat' },
      }),
    ],
    ['a progress report that does not advance the step', () => ({ type: 'Progress', step: 1, at: 1 })],
  ])('%s leaves the job unchanged', (_name, make) => {
    const s = running();
    s.after(1000).observe({ type: 'Progress', step: 5, at: s.now }, s.crash(0));
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(1);
    const r = decide(s.job, [make(s)], s.now + 1);
    expect(r.changed).toBe(false);
    expect(r.job.generation).toBe(1);
  });

  it('ignores the same rule finding delivered again after the restart it caused', () => {
    const s = running();
    const hang = finding(s.after(1000), 0);
    s.observe(hang);
    expect(s.job.generation).toBe(1);
    const r = decide(s.job, [hang], s.now + 1);
    expect(r.changed).toBe(false);
    expect(r.job.restartCount).toBe(1);
  });

  it('ignores a crash reported while stopping (FAULTED of the generation being stopped)', () => {
    const s = running();
    s.after(1000).decideOnly(s.crash(0));
    expect(s.job.generation).toBe(1);
    const r = s.after(100).decideOnly(s.crash(1, 0));
    expect(r.changed).toBe(false);
    expect(s.job.restartCount).toBe(1);
    expect(s.actionsOf('StopAgents')).toHaveLength(1);
  });
});

describe('rung 2: pod replacement', () => {
  it('replaces a failed pod with a new one named from the new generation, away from its node, then restarts all', () => {
    const s = running({ replicas: 2 });
    const bad = s.slot(1);
    s.world.pods.get(bad.name)!.phase = 'Failed';
    s.after(1000).decideOnly(s.world.observedPods(s.now));
    expect(s.job.generation).toBe(1);
    expect(s.slot(1).name).toBe('llama-pods-1-g1');
    expect(s.slot(1).avoidNodes).toEqual([bad.nodeName]);
    expect(s.actionsOf('DeletePods')).toEqual([{ type: 'DeletePods', pods: [bad.name] }]);
    expect(s.actionsOf('CreatePods')[0]?.pods).toEqual([
      {
        name: 'llama-pods-1-g1',
        replica: 'pods',
        index: 1,
        generation: 1,
        spare: false,
        avoidNodes: [bad.nodeName],
      },
    ]);
    expect(s.actionsOf('StopAgents')[0]?.pods).toEqual([s.slot(0).name]);
    expect(s.job.remediations.at(-1)).toMatchObject({ reason: 'PodFailed', level: 'pod' });
    s.world.apply(s.actions, s.now);
    s.after(5000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(s.world.pods.get('llama-pods-1-g1')?.node).not.toBe(bad.nodeName);
  });

  it('force-deletes the pod of a node turned unhealthy and reports NodeFault with the node name', () => {
    const s = running({ replicas: 2 });
    const node = s.slot(0).nodeName!;
    s.after(1000).decideOnly(s.nodeHealth(node, 'UnschedulablePendingReboot'));
    const fault = s.actionsOf('RecordEvent').find((a) => a.event.lifecycle === 'FaultDetected')!;
    expect(fault.event).toMatchObject({
      type: 'Warning',
      reason: 'NodeFault',
      message: `Found unhealthy node ${node}`,
    });
    expect(s.actionsOf('DeletePods')[0]).toMatchObject({ force: true, gracePeriodSeconds: 0 });
    expect(s.job.latestFaultyPodInstanceList).toEqual({
      restartType: 'PLR',
      faultyInstanceIdList: [s.world.nodes.get(node)!.instanceId],
      faultyPodList: ['llama-pods-0-g0'],
      faultyRankList: [0],
    });
    expect(s.job.nodeFaults).toEqual({ [node]: 1 });
  });

  it('promotes a READY spare into the faulty rank and creates a new spare in its place', () => {
    const s = running({ replicas: 2, spares: 1 });
    const spare = s.job.pods[2]!;
    expect(spare.agent?.state).toBe('READY');
    const node = s.slot(1).nodeName!;
    s.after(1000).decideOnly(s.nodeHealth(node, 'Unschedulable'));
    expect(s.slot(1).name).toBe(spare.name);
    expect(s.job.pods[1]).toMatchObject({
      name: 'llama-pods-1-g1',
      groupRank: null,
      spare: true,
      avoidNodes: [node],
    });
    expect(s.actionsOf('CreatePods')[0]?.pods.map((p) => [p.name, p.spare])).toEqual([
      ['llama-pods-1-g1', true],
    ]);
    s.world.apply(s.actions, s.now);
    s.after(1000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(
      s
        .actionsOf('StartAgents')
        .at(-1)
        ?.starts.map((x) => [x.pod, x.body.rank]),
    ).toEqual([
      [s.job.pods[0]!.name, 0],
      [spare.name, 1],
    ]);
  });

  it.each([
    [1, 'Running'],
    [2, 'Restarting'],
  ])('an agent unreachable on %i consecutive poll(s) leaves the job %s', (polls, phase) => {
    const s = running();
    const pod = s.slot(1).name;
    for (let i = 1; i <= polls; i++)
      s.at(s.now + 1000).decideOnly({ type: 'AgentPolled', pod, status: null, at: s.now });
    expect(s.job.phase).toBe(phase);
    if (polls === 2) expect(s.job.remediations.at(-1)?.reason).toBe('AgentUnreachable');
  });

  it('replaces a rank pod whose node fails during a process-level restart inside the same generation', () => {
    const s = running({ replicas: 2 });
    s.world.unreachable.add(s.slot(0).name);
    s.after(1000).observe(s.crash(0));
    expect(s.job.phase).toBe('Restarting');
    const node = s.slot(1).nodeName!;
    s.after(1000).observe(s.nodeHealth(node, 'UnschedulablePendingReplacement'));
    expect(s.job.generation).toBe(1);
    expect(s.job.restartCount).toBe(1);
    expect(s.slot(1).name).toBe('llama-pods-1-g1');
    expect(s.job.remediations.at(-1)?.level).toBe('pod');
    expect(s.job.remediations.at(-1)?.nodes).toContain(node);
    s.world.unreachable.clear();
    s.after(1000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(s.actionsOf('StartAgents').at(-1)?.generation).toBe(1);
  });

  it('leaves nothing running when cancelled mid-restart with cleanPodPolicy All', () => {
    const s = running({ replicas: 2, spares: 1 });
    s.world.unreachable.add(s.slot(0).name);
    s.after(1000).observe(s.nodeHealth(s.slot(1).nodeName!, 'Unschedulable'));
    expect(s.job.phase).toBe('Restarting');
    s.after(1000).observe(s.command({ kind: 'Cancel', by: 'bob' }));
    expect(s.job.phase).toBe('Cancelled');
    expect(s.livePods()).toEqual([]);
  });
});

describe('rung 3: full job restart and the sliding window', () => {
  const P = 3600_000;
  it.each([
    ['just inside the window', -1, 'job'],
    ['exactly at the window boundary', 0, 'process'],
    ['just outside the window', 1, 'process'],
  ])(
    'a third fault %s (%i ms from the first restart + evalPeriod) escalates to %s level',
    (_name, delta, level) => {
      const s = running({ restartPolicy: { numRestartBeforeFullJobRestart: 2, evalPeriodSeconds: 3600 } });
      const first = s.now + 10_000;
      crashAndRecover(s, first);
      crashAndRecover(s, first + 1000);
      expect(s.job.restartStatus.restartCount).toBe(2);
      crashAndRecover(s, first + P + delta);
      expect(s.job.remediations.at(-1)?.level).toBe(level);
      expect(s.job.generation).toBe(3);
      expect(s.job.phase).toBe('Running');
    },
  );

  it('recreates every pod on a full restart, avoiding the repeat-offender nodes', () => {
    const s = running({
      replicas: 2,
      restartPolicy: {
        numRestartBeforeFullJobRestart: 2,
        maxNumRepeatOffendersToAvoid: 1,
        evalPeriodSeconds: 3600,
      },
    });
    const offender = s.slot(0).nodeName!;
    crashAndRecover(s, s.now + 1000);
    crashAndRecover(s, s.now + 1000);
    const old = s.job.pods.map((p) => p.name);
    s.after(1000).observe(s.crash(0));
    expect(s.job.remediations.at(-1)?.level).toBe('job');
    expect(s.job.latestFaultyPodInstanceList?.restartType).toBe('JLR');
    expect(s.actionsOf('DeletePods')[0]?.pods).toEqual(old);
    expect(s.job.pods.map((p) => p.name)).toEqual(['llama-pods-0-g3', 'llama-pods-1-g3']);
    expect(s.job.pods.every((p) => p.avoidNodes?.includes(offender))).toBe(true);
    expect(s.job.restartStatus).toMatchObject({ fullJobRestartCount: 1, restartCount: 0 });
    s.after(1000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(s.job.pods.map((p) => p.nodeName)).not.toContain(offender);
  });
});

describe('rung 4: budgets', () => {
  it('fails with MaxFullJobRestartsExceeded when the full-restart budget is exactly spent', () => {
    const s = running({
      restartPolicy: { numRestartBeforeFullJobRestart: 0, maxFullJobRestarts: 1, evalPeriodSeconds: 60 },
    });
    crashAndRecover(s, s.now + 1000);
    expect(s.job.remediations.at(-1)?.level).toBe('job');
    expect(s.job.phase).toBe('Running');
    crashAndRecover(s, s.now + 1000);
    expect(s.job.phase).toBe('Failed');
    expect(s.job.conditions.at(-1)?.reason).toBe('MaxFullJobRestartsExceeded');
    expect(s.job.restartStatus.fullJobRestartCount).toBe(1);
    expect(s.counters()[Metric.jobsFailed]).toBe(1);
  });

  it('fails with MaxRetriesExceeded when jobMaxRetryCount is exactly spent', () => {
    const s = running({ runPolicy: { jobMaxRetryCount: 2 } });
    crashAndRecover(s, s.now + 1000);
    crashAndRecover(s, s.now + 1000);
    expect(s.job.phase).toBe('Running');
    expect(s.job.processRestartCount).toBe(2);
    crashAndRecover(s, s.now + 1000);
    expect(s.job.phase).toBe('Failed');
    expect(s.job.conditions.at(-1)?.reason).toBe('MaxRetriesExceeded');
    expect(s.job.processRestartCount).toBe(2);
    expect(s.livePods()).toEqual([]);
  });

  it('lets a manual restart through a spent budget without counting it', () => {
    const s = running({ runPolicy: { jobMaxRetryCount: 0 } });
    s.after(1000).observe(s.command({ kind: 'Restart', level: 'process', by: 'bob' }));
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(1);
    expect(s.job.processRestartCount).toBe(0);
    expect(s.job.restartCount).toBe(1);
  });

  it('fails with NoProgress after maxRestartsWithoutProgress restarts without a new step, and not when steps advance', () => {
    const stuck = running({ trainkeeper: { maxRestartsWithoutProgress: 2 } });
    crashAndRecover(stuck, stuck.now + 1000);
    crashAndRecover(stuck, stuck.now + 1000);
    crashAndRecover(stuck, stuck.now + 1000);
    expect(stuck.job.phase).toBe('Failed');
    expect(stuck.job.conditions.at(-1)?.reason).toBe('NoProgress');

    const moving = running({ trainkeeper: { maxRestartsWithoutProgress: 2 } });
    for (let step = 1; step <= 4; step++) {
      moving.after(1000).observe({ type: 'Progress', step: step * 100, at: moving.now });
      crashAndRecover(moving, moving.now + 1000);
    }
    expect(moving.job.phase).toBe('Running');
    expect(moving.job.generation).toBe(4);
  });

  it('keeps the remediation list bounded to the last 50', () => {
    const s = running();
    for (let i = 0; i < 55; i++)
      s.after(1000).observe(s.command({ kind: 'Restart', level: 'process', by: 'bob' }));
    expect(s.job.generation).toBe(55);
    expect(s.job.remediations).toHaveLength(50);
    expect(s.job.remediations[0]?.generation).toBe(6);
  });
});

describe('restart backoff', () => {
  const backoff = { freeRestarts: 1, initialSeconds: 10, maxSeconds: 60, multiplier: 2 };

  it('waits initial × multiplier^k after the free restarts, holding the start until backoffUntil', () => {
    const s = running({ trainkeeper: { restartBackoff: backoff } });
    crashAndRecover(s, s.now + 1000);
    expect(s.job.backoffUntil).toBeUndefined();
    expect(s.job.phase).toBe('Running');

    const t2 = s.now + 1000;
    s.at(t2).observe(s.crash(0));
    expect(s.job.backoffUntil).toBe(t2 + 10_000);
    expect(s.job.nextCheckAt).toBe(t2 + 10_000);
    expect(s.job.phase).toBe('Restarting');
    expect(s.actionsOf('StopAgents')).toHaveLength(1);
    expect(s.actionsOf('StartAgents')).toEqual([]);
    s.at(t2 + 9_999).observe();
    expect(s.actionsOf('StartAgents')).toEqual([]);
    s.at(t2 + 10_000).observe();
    expect(s.job.phase).toBe('Running');

    const t3 = s.now + 1000;
    crashAndRecover(s, t3);
    expect(s.job.backoffUntil).toBe(t3 + 20_000);
  });

  it('caps the wait at maxSeconds and resets the streak after the job ran for maxSeconds', () => {
    const s = running({ trainkeeper: { restartBackoff: backoff } });
    for (let i = 0; i < 5; i++) {
      crashAndRecover(s, s.now + 1000);
      if (s.job.backoffUntil !== undefined) s.at(s.job.backoffUntil).observe();
    }
    expect(s.job.restartStreak).toBe(5);
    const t = s.now + 1000;
    crashAndRecover(s, t);
    expect(s.job.backoffUntil).toBe(t + 60_000);
    s.at(t + 60_000).observe();
    expect(s.job.phase).toBe('Running');
    crashAndRecover(s, t + 60_000 + 60_000);
    expect(s.job.restartStreak).toBe(1);
    expect(s.job.backoffUntil).toBeUndefined();
  });
});

describe('pod news from the sweep', () => {
  it.each<[string, (s: Scenario) => void, string]>([
    ['deleted by someone else (deletionTimestamp we did not ask for)', () => {}, 'PodMissing'],
    ['gone from the pod list', (s) => s.world.pods.delete(s.slot(1).name), 'PodMissing'],
    ['Failed', (s) => (s.world.pods.get(s.slot(1).name)!.phase = 'Failed'), 'PodFailed'],
    ['Unknown (node lost)', (s) => (s.world.pods.get(s.slot(1).name)!.phase = 'Unknown'), 'PodFailed'],
  ])('a rank pod %s triggers a pod replacement with reason %s', (name, mutate, reason) => {
    const s = running({ replicas: 2 });
    mutate(s);
    const obs = s.world.observedPods(s.now + 1000);
    if (name.startsWith('deleted') && obs.type === 'PodsObserved') {
      obs.pods = obs.pods.map((p) =>
        p.name === s.slot(1).name ? { ...p, deletionTimestamp: s.now + 500 } : p,
      );
    }
    s.after(1000).decideOnly(obs);
    expect(s.job.remediations.at(-1)).toMatchObject({ reason, level: 'pod', ranks: [1] });
    expect(s.slot(1).name).toBe('llama-pods-1-g1');
  });

  it('does not call a pod missing that the cluster has never listed yet (it may still be being created)', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.world.pods.delete('llama-pods-1-g0');
    const r = s.after(1000).decideOnly(s.world.observedPods(s.now));
    expect(r.job.remediations).toEqual([]);
    expect(r.job.phase).toBe('Pending');
  });

  it('deletes stray pods of the job that hold no slot', () => {
    const s = running({ replicas: 1 });
    const obs = s.world.observedPods(s.now + 1);
    if (obs.type === 'PodsObserved') obs.pods.push({ ...obs.pods[0]!, name: 'llama-pods-0-g7' });
    s.after(1).decideOnly(obs);
    expect(s.actions).toEqual([{ type: 'DeletePods', pods: ['llama-pods-0-g7'] }]);
    expect(s.lastChanged).toBe(false);
  });

  it('replaces a failed spare pod without restarting the job', () => {
    const s = running({ replicas: 1, spares: 1 });
    const spare = s.job.pods[1]!;
    s.world.pods.get(spare.name)!.phase = 'Failed';
    s.after(1000).observe(s.world.observedPods(s.now));
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(0);
    expect(s.job.pods[1]!.name).toBe('llama-pods-1-g1');
    expect(s.actionsOf('DeletePods')[0]?.pods).toEqual([spare.name]);
    expect(s.actionsOf('CreatePods')[0]?.pods.map((p) => p.name)).toEqual(['llama-pods-1-g1']);
  });
});

describe('manual restarts', () => {
  it('restarts the whole job on Restart level job: all pods recreated at the new generation, not counted in the budget', () => {
    const s = running({ replicas: 2, restartPolicy: { maxFullJobRestarts: 0, evalPeriodSeconds: 60 } });
    s.after(1000).observe(s.command({ kind: 'Restart', level: 'job', by: 'bob' }));
    expect(s.job.generation).toBe(1);
    expect(s.job.latestFaultyPodInstanceList?.restartType).toBe('JLR');
    expect(s.actionsOf('DeletePods')[0]?.pods).toEqual(['llama-pods-0-g0', 'llama-pods-1-g0']);
    expect(s.job.restartStatus.fullJobRestartCount).toBe(0);
    s.after(1000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(s.job.remediations.at(-1)).toMatchObject({
      reason: 'ManualRestart',
      level: 'job',
      recoveredAt: s.now,
    });
  });
});

describe('agent lost its workers', () => {
  it('restarts when a rank agent reports READY while the job is running (its container restarted)', () => {
    const s = running();
    const pod = s.slot(1).name;
    s.after(5000).decideOnly(s.agentState(1, 'READY', { generation: -1 }));
    expect(s.job.phase).toBe('Running');
    expect(s.actionsOf('PollAgents')).toEqual([{ type: 'PollAgents', pods: [pod] }]);
    s.decideOnly(s.agentAnswer(pod, 'READY', { generation: -1 }));
    expect(s.job.phase).toBe('Restarting');
    expect(s.job.remediations.at(-1)?.reason).toBe('WorkerFault');
  });
});

describe('node health from the sweep', () => {
  it.each([
    ['its health label says UnschedulablePendingReplacement', 'UnschedulablePendingReplacement', true],
    ['it is NotReady', 'Schedulable', false],
  ])('replaces the pod on a node when %s', (_name, health, ready) => {
    const s = running({ replicas: 2 });
    const node = s.world.nodes.get(s.slot(0).nodeName!)!;
    node.health = health;
    node.ready = ready;
    s.after(1000).decideOnly(s.world.observedPods(s.now));
    expect(s.job.remediations.at(-1)).toMatchObject({
      reason: 'NodeFault',
      nodes: [node.name],
      level: 'pod',
    });
    expect(s.actionsOf('DeletePods')[0]).toMatchObject({ pods: ['llama-pods-0-g0'], force: true });
  });

  it('ignores node health news for a node that hosts none of the job pods', () => {
    const s = running({ replicas: 2 });
    const r = decide(s.job, [s.nodeHealth('node-7', 'UnschedulablePendingReboot')], s.now + 1);
    expect(r.changed).toBe(false);
  });
});

describe('progress', () => {
  it('takes the training step from agent heartbeats and resets the no-progress count', () => {
    const s = running({ trainkeeper: { maxRestartsWithoutProgress: 5 } });
    crashAndRecover(s, s.now + 1000);
    expect(s.job.progress.restartsWithoutProgress).toBe(1);
    s.after(1000).observe({
      type: 'AgentRecord',
      pod: s.slot(0).name,
      at: s.now,
      record: {
        trainkeeper: 'agent/v1',
        ts: '',
        generation: 1,
        state: 'RUNNING',
        kind: 'heartbeat',
        progress: { ckpt: { progressData: 's3://b/ckpt-120', progressCount: 120 } },
      },
    });
    expect(s.job.progress).toEqual({ step: 120, at: s.now, restartsWithoutProgress: 0 });
  });

  const heartbeat = (s: Scenario, generation: number, progress: Record<string, unknown>): Observation => ({
    type: 'AgentRecord',
    pod: s.slot(0).name,
    at: s.now,
    record: { trainkeeper: 'agent/v1', ts: '', generation, state: 'RUNNING', kind: 'heartbeat', progress },
  });

  it('takes the training step from a heartbeat that reports {step}', () => {
    const s = running();
    s.after(1000).observe(heartbeat(s, 0, { step: 300 }));
    expect(s.job.progress).toEqual({ step: 300, at: s.now, restartsWithoutProgress: 0 });
  });

  it('counts the progress of a late heartbeat of an older generation, since steps only move forward', () => {
    const s = running({ trainkeeper: { maxRestartsWithoutProgress: 5 } });
    crashAndRecover(s, s.now + 1000);
    expect(s.job.generation).toBe(1);
    s.after(1000).observe(heartbeat(s, 0, { step: 40 }));
    expect(s.job.progress).toEqual({ step: 40, at: s.now, restartsWithoutProgress: 0 });
    s.after(1000).observe(heartbeat(s, 1, { step: 39 }));
    expect(s.job.progress.step).toBe(40);
  });

  it('takes the training step from a polled /status answer', () => {
    const s = running();
    s.after(1000).decideOnly({
      type: 'AgentPolled',
      pod: s.slot(1).name,
      at: s.now,
      status: { status: 'running', faultCount: 0, progress: { ckpt: { progressCount: '77' } } },
    });
    expect(s.job.progress.step).toBe(77);
  });
});

describe('suspend and cancel mid-restart', () => {
  it('clears a pending backoff when suspended during a restart and ignores agent news while suspended', () => {
    const s = running({
      trainkeeper: { restartBackoff: { freeRestarts: 0, initialSeconds: 60, maxSeconds: 60, multiplier: 1 } },
    });
    s.after(1000).observe(s.crash(0));
    expect(s.job.backoffUntil).toBeDefined();
    s.after(1000).observe(s.command({ kind: 'Suspend', by: 'kueue' }));
    expect(s.job.phase).toBe('Suspended');
    expect(s.job.backoffUntil).toBeUndefined();
    expect(s.livePods()).toEqual([]);
    const r = decide(s.job, [s.crash(0), s.world.observedPods(s.now + 1)], s.now + 1);
    expect(r.changed).toBe(false);
    expect(r.actions).toEqual([]);
  });

  it('with cleanPodPolicy None, a cancel mid-restart shuts the agents down but deletes no pod', () => {
    const s = running({ runPolicy: { cleanPodPolicy: 'None' } });
    s.world.unreachable.add(s.slot(1).name);
    s.after(1000).observe(s.crash(0));
    s.after(1000).observe(s.command({ kind: 'Cancel', by: 'bob' }));
    expect(s.job.phase).toBe('Cancelled');
    expect(s.actionsOf('DeletePods')).toEqual([]);
    expect(s.actionsOf('ShutdownAgents')[0]?.pods).toEqual(['llama-pods-0-g0', 'llama-pods-1-g0']);
  });
});

describe('races between triggers', () => {
  it('does not call a pod missing from a pod list taken before the pod was first seen', () => {
    const s = running({ replicas: 2 });
    const old = s.world.observedPods(s.slot(1).podObservedAt! - 1);
    if (old.type === 'PodsObserved') old.pods = old.pods.filter((p) => p.name !== s.slot(1).name);
    const r = decide(s.job, [old], s.now + 1000);
    expect(r.job.remediations).toEqual([]);
    expect(r.job.phase).toBe('Running');
  });
});

describe('fault events', () => {
  it('reports each distinct symptom of one batch as its own FaultDetected event but restarts once', () => {
    const s = running({ replicas: 3 });
    const nodes = [s.slot(0).nodeName!, s.slot(2).nodeName!];
    s.after(1000).decideOnly(...nodes.map((n) => s.nodeHealth(n, 'UnschedulablePendingReboot')));
    expect(s.job.generation).toBe(1);
    expect(
      s
        .actionsOf('RecordEvent')
        .filter((a) => a.event.lifecycle === 'FaultDetected')
        .map((a) => a.event.message),
    ).toEqual(nodes.map((n) => `Found unhealthy node ${n}`));
    expect(s.job.latestFaultyPodInstanceList?.faultyRankList).toEqual([0, 2]);
    expect(s.actionsOf('DeletePods')[0]?.pods).toEqual(['llama-pods-0-g0', 'llama-pods-2-g0']);
  });

  it('ignores a FAULTED report from an idle spare', () => {
    const s = running({ replicas: 1, spares: 1 });
    const r = s
      .after(10)
      .decideOnly(s.agentStateOf(s.job.pods[1]!.name, 'FAULTED', { reason: 'WorkerCrash' }));
    expect(r.job.generation).toBe(0);
    expect(r.job.phase).toBe('Running');
  });

  it('reports the window as the restarts still in it and the oldest one as the current evaluation period', () => {
    const s = running({ restartPolicy: { numRestartBeforeFullJobRestart: 5, evalPeriodSeconds: 10 } });
    const t1 = s.now + 1000;
    crashAndRecover(s, t1);
    crashAndRecover(s, t1 + 4000);
    expect(s.job.restartStatus).toMatchObject({ restartCount: 2, currentEvalPeriod: t1 });
    crashAndRecover(s, t1 + 12_000);
    expect(s.job.restartStatus).toMatchObject({ restartCount: 2, currentEvalPeriod: t1 + 4000 });
  });
});
