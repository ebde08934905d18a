import { describe, expect, it } from 'vitest';
import { INPROCESS_REASONS } from '../../core/agent-protocol.ts';
import { INPROCESS_RESEND_MS } from '../../core/decide/inprocess.ts';
import { Metric } from '../../core/metrics.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { given, makeSpec, type Scenario, type SpecOptions } from './dsl.ts';

/** A running 2-pod job that opted in to in-process restarts (unless told otherwise). */
const running = (o: SpecOptions = {}): Scenario =>
  given(makeSpec({ ...o, trainkeeper: { inProcessRestart: true, ...o.trainkeeper } }))
    .after(1000)
    .bringUp();

const finding = (s: Scenario, rank: number): Observation => {
  const f: RuleFinding = {
    rule: 'LossSpike',
    verdict: 'FAULTED',
    reason: 'LogFault_LossSpike',
    stream: `${s.slot(rank).name}/0`,
    rank,
    at: s.now - 50,
    generation: s.job.generation,
  };
  return { type: 'RuleFindings', findings: [f], ruleState: { generation: s.job.generation } };
};

describe('rung 0: in-process restart', () => {
  it('sends /inprocess-restart to every rank at generation + 1 on a new port, stops nothing, keeps the pods', () => {
    const s = running();
    const pods = s.job.pods.map((p) => p.name);
    const port0 = s.job.masterPort;
    const t = s.now + 10_000;
    s.at(t).decideOnly(s.crash(1));
    expect(s.job.generation).toBe(1);
    expect(s.job.phase).toBe('Restarting');
    expect(s.actionsOf('StopAgents')).toEqual([]);
    expect(s.actionsOf('StartAgents')).toEqual([]);
    const [restart, ...more] = s.actionsOf('RestartInProcess');
    expect(more).toEqual([]);
    expect(restart!.generation).toBe(1);
    expect(restart!.starts.map((x) => [x.pod, x.body.rank, x.body.nnodes, x.body.faultCount])).toEqual([
      [pods[0], 0, 2, 1],
      [pods[1], 1, 2, 1],
    ]);
    expect(restart!.starts[0]!.body.master_port).not.toBe(port0);
    expect(restart!.starts.every((x) => x.body.master_addr === s.slot(0).ip)).toBe(true);
    expect(s.job.startedGeneration).toBe(1);
    expect(s.actionsOf('IncrementCounter').map((a) => [a.name, a.labels])).toEqual([
      [Metric.jobsRestarted, {}],
      [Metric.restarts, { level: 'inprocess', reason: 'WorkerCrash' }],
    ]);
    expect(s.job.remediations.at(-1)).toMatchObject({
      reason: 'WorkerCrash',
      level: 'inprocess',
      ranks: [1],
    });

    // The agents' workers re-enter: RUNNING at generation 1 is the recovery, labelled inprocess.
    s.after(400).decideOnly(
      ...pods.map((pod) => ({
        type: 'AgentPolled' as const,
        pod,
        status: { status: 'running', faultCount: 1, reason: INPROCESS_REASONS.restarted },
        at: s.now,
      })),
    );
    expect(s.job.phase).toBe('Running');
    expect(s.job.pods.map((p) => p.name)).toEqual(pods);
    expect(s.events()).toEqual(['RestartCompleted']);
    expect(s.actionsOf('ObserveLatency').map((a) => [a.name, a.labels, a.seconds])).toEqual([
      [Metric.restartLatency, { level: 'inprocess' }, 0.4],
    ]);
    expect(s.job.remediations.at(-1)).toMatchObject({ level: 'inprocess', recoveredAt: s.now });
  });

  it('counts as a process-level restart: restartCount, the window and processRestartCount', () => {
    const s = running({ restartPolicy: { numRestartBeforeFullJobRestart: 5, evalPeriodSeconds: 3600 } });
    s.after(5000).observe(s.crash(0));
    expect(s.job.phase).toBe('Running');
    expect(s.job.remediations.map((r) => r.level)).toEqual(['inprocess']);
    expect(s.job.restartCount).toBe(1);
    expect(s.job.processRestartCount).toBe(1);
    expect(s.job.restartStatus.restartCount).toBe(1);
    expect(s.job.restartTimes).toEqual([s.now]);
    expect(s.livePods()).toEqual(s.job.pods.map((p) => p.name).sort());
  });

  it('restarts a log-rule fault in place too', () => {
    const s = running();
    s.after(5000).observe(finding(s, 1));
    expect(s.job.remediations.at(-1)).toMatchObject({ reason: 'LogFault_LossSpike', level: 'inprocess' });
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(1);
  });

  it('escalates an InProcessRestartTimeout to a process-level restart at the next generation', () => {
    const s = running();
    s.world.onInProcessRestart = 'timeout';
    s.after(5000).observe(s.crash(1));
    // The agents gave up at generation 1: a process-level restart at 2 stops and starts them.
    expect(s.job.generation).toBe(2);
    expect(s.job.remediations.map((r) => [r.generation, r.level, r.reason])).toEqual([
      [1, 'inprocess', 'WorkerCrash'],
      [2, 'process', INPROCESS_REASONS.timeout],
    ]);
    expect(s.actionsOf('StopAgents').map((a) => a.generation)).toEqual([2]);
    expect(s.actionsOf('StartAgents').map((a) => a.generation)).toEqual([2]);
    expect(s.job.phase).toBe('Running');
    expect(s.job.processRestartCount).toBe(2);
  });

  it('restarts at process level a fault that arrives while an in-process restart is under way', () => {
    const s = running();
    s.world.onInProcessRestart = 'lost';
    s.after(5000).observe(s.crash(1));
    expect(s.job.phase).toBe('Restarting');
    expect(s.job.generation).toBe(1);
    // A rule hit of generation 1 before the agents re-entered: the in-process restart failed.
    s.world.onInProcessRestart = 'reenter';
    s.after(1000).observe(finding(s, 0));
    expect(s.job.remediations.map((r) => [r.generation, r.level])).toEqual([
      [1, 'inprocess'],
      [2, 'process'],
    ]);
    expect(s.job.phase).toBe('Running');
  });

  it('re-sends /inprocess-restart to ranks left on the old run only after INPROCESS_RESEND_MS', () => {
    const s = running();
    s.world.onInProcessRestart = 'lost';
    s.after(5000).observe(s.crash(1));
    expect(s.actionsOf('RestartInProcess')).toHaveLength(1);
    s.after(INPROCESS_RESEND_MS - 1).sweep();
    expect(s.actionsOf('RestartInProcess')).toEqual([]);
    s.world.onInProcessRestart = 'reenter';
    s.after(1).sweep();
    const resent = s.actionsOf('RestartInProcess');
    expect(resent.map((a) => a.starts.map((x) => x.body.faultCount))).toEqual([[1, 1]]);
    expect(resent[0]!.starts[0]!.body.master_port).toBe(s.job.masterPort);
    expect(s.job.phase).toBe('Running');
  });

  it('starts an agent that went idle during the restart (its container restarted) with /start at the new generation', () => {
    const s = running();
    s.world.onInProcessRestart = 'lost';
    s.after(5000).observe(s.crash(1));
    expect(s.job.phase).toBe('Restarting');
    s.after(1000).observe(s.agentAnswer(s.slot(1).name, 'READY', { generation: -1 }));
    expect(s.actionsOf('StopAgents')).toEqual([]);
    expect(s.actionsOf('StartAgents').map((a) => [a.generation, a.starts.map((x) => x.pod)])).toEqual([
      [1, [s.slot(1).name]],
    ]);
    expect(s.actionsOf('StartAgents')[0]!.starts[0]!.body.master_port).toBe(s.job.masterPort);
  });

  it('holds /inprocess-restart while restart backoff runs', () => {
    const backoff = { freeRestarts: 0, initialSeconds: 10, maxSeconds: 60, multiplier: 2 };
    const s = running({ trainkeeper: { inProcessRestart: true, restartBackoff: backoff } });
    s.after(5000).observe(s.crash(1));
    expect(s.job.backoffUntil).toBe(s.now + 10_000);
    expect(s.actionsOf('RestartInProcess')).toEqual([]);
    expect(s.actionsOf('StopAgents')).toEqual([]);
    s.at(s.job.backoffUntil!).sweep();
    expect(s.actionsOf('RestartInProcess').map((a) => a.generation)).toEqual([1]);
    expect(s.job.phase).toBe('Running');
  });
});

describe('when the ladder does not restart in place', () => {
  const levelOfFirstRestart = (s: Scenario) => s.job.remediations[0]?.level;

  it('a job that did not opt in restarts at process level', () => {
    const s = running({ trainkeeper: { inProcessRestart: false } });
    s.after(5000).observe(s.crash(1));
    expect(levelOfFirstRestart(s)).toBe('process');
    expect(s.actionsOf('RestartInProcess', s.history)).toEqual([]);
  });

  it('a pod fault replaces the pod', () => {
    const s = running();
    const node = s.slot(1).nodeName!;
    s.after(5000).observe(s.nodeHealth(node, 'UnschedulablePendingReplacement'));
    expect(levelOfFirstRestart(s)).toBe('pod');
  });

  it('a rank whose agent is not running the current generation (its container restarted) needs /start', () => {
    const s = running();
    const crash = s.crash(1);
    // Rank 0's agent went idle in the same batch: it has no run to restart in place.
    const idle = s.agentAnswer(s.slot(0).name, 'READY');
    s.after(5000).observe(crash, idle);
    expect(levelOfFirstRestart(s)).toBe('process');
  });

  it('a manual restart is the process-level restart the user asked for', () => {
    const s = running();
    s.after(5000).observe(s.command({ kind: 'Restart', level: 'process', by: 'alice' }));
    expect(levelOfFirstRestart(s)).toBe('process');
  });

  it('a full window escalates to a job restart before the in-process rung is looked at', () => {
    const s = running({ restartPolicy: { numRestartBeforeFullJobRestart: 1, evalPeriodSeconds: 3600 } });
    s.after(5000).observe(s.crash(1));
    s.after(5000).observe(s.crash(0));
    expect(s.job.remediations.map((r) => r.level)).toEqual(['inprocess', 'job']);
  });

  it('jobMaxRetryCount spent by in-process restarts fails the job', () => {
    const s = running({ runPolicy: { jobMaxRetryCount: 1 } });
    s.after(5000).observe(s.crash(1));
    s.after(5000).observe(s.crash(1));
    expect(s.job.phase).toBe('Failed');
    expect(s.job.conditions.at(-1)?.reason).toBe('MaxRetriesExceeded');
  });
});
