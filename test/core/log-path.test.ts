/**
 * What decide believes from the log path: claims that would move a job (COMPLETED, FAULTED, a crashed
 * worker) are confirmed with the agent's `/status` before they count, and silence the log path itself
 * caused (agents report in, no worker line arrives) holds hang verdicts instead of restarting.
 */
import { describe, expect, it } from 'vitest';
import type { AgentRecord } from '../../core/agent-protocol.ts';
import { AGENTS_HEARD_WITHIN_MS, LOGS_NOT_ARRIVING_AFTER_MS } from '../../core/decide/log-path.ts';
import { decide } from '../../core/decide.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { given, makeSpec, rule, type Scenario, type SpecOptions } from './dsl.ts';

const running = (o: SpecOptions = {}): Scenario => given(makeSpec(o)).after(1000).bringUp();
const withRules: SpecOptions = { runPolicy: { logMonitoringConfiguration: [rule('JobHang')] } };

/** A record as it arrives from the log path, without touching the simulated agent (it may be forged). */
const record = (
  s: Scenario,
  rank: number,
  fields: Partial<AgentRecord> & Pick<AgentRecord, 'kind' | 'state'>,
): Observation =>
  ({
    type: 'AgentRecord',
    pod: s.slot(rank).name,
    at: s.now,
    record: { trainkeeper: 'agent/v1', ts: '', generation: s.job.generation, ...fields },
  }) as Observation;

const hang = (s: Scenario): Observation => {
  const f: RuleFinding = {
    rule: 'JobHang',
    verdict: 'HANGING',
    reason: 'LogHang_JobHang',
    stream: 'job',
    at: s.now,
    generation: s.job.generation,
  };
  return { type: 'RuleFindings', findings: [f], ruleState: { generation: s.job.generation } };
};

const heartbeat = (s: Scenario, rank: number) => record(s, rank, { kind: 'heartbeat', state: 'RUNNING' });

describe('state-changing agent records are confirmed with /status', () => {
  it.each<[string, (s: Scenario) => Observation]>([
    [
      'a FAULTED state record',
      (s) => record(s, 1, { kind: 'state', state: 'FAULTED', reason: 'WorkerCrash' }),
    ],
    ['a COMPLETED state record', (s) => record(s, 1, { kind: 'state', state: 'COMPLETED' })],
    ['a heartbeat claiming FAULTED', (s) => record(s, 1, { kind: 'heartbeat', state: 'FAULTED' })],
    [
      'a worker-exit record with a signal',
      (s) =>
        record(s, 1, {
          kind: 'worker-exit',
          state: 'RUNNING',
          localRank: 0,
          exitCode: null,
          signal: 'SIGKILL',
        }),
    ],
  ])('%s changes nothing by itself and asks the agent of that pod', (_name, make) => {
    const s = running();
    const r = s.after(1000).decideOnly(make(s));
    expect(r.changed).toBe(false);
    expect(s.job.phase).toBe('Running');
    expect(s.actionsOf('PollAgents')).toEqual([{ type: 'PollAgents', pods: [s.slot(1).name] }]);
  });

  it('keeps a job running when the agent answers RUNNING to a forged FAULTED and COMPLETED', () => {
    const s = running();
    s.after(1000).observe(
      record(s, 0, { kind: 'state', state: 'COMPLETED' }),
      record(s, 1, { kind: 'state', state: 'FAULTED', reason: 'WorkerCrash' }),
    );
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(0);
    expect(s.job.restartCount).toBe(0);
    expect(s.actionsOf('PollAgents')[0]?.pods.sort()).toEqual([s.slot(0).name, s.slot(1).name].sort());
  });

  it('succeeds the job when every agent confirms COMPLETED', () => {
    const s = running();
    s.after(1000).observe(...s.allCompleted());
    expect(s.job.phase).toBe('Succeeded');
  });

  it('asks nothing for a heartbeat or for a record of an older generation', () => {
    const s = running();
    s.after(1000).decideOnly(
      heartbeat(s, 0),
      record(s, 1, { kind: 'state', state: 'FAULTED', generation: s.job.generation - 1 }),
    );
    expect(s.actionsOf('PollAgents')).toEqual([]);
  });

  it('dates a confirmed fault from when the agent says it entered FAULTED, not from the poll', () => {
    const s = running();
    const pod = s.slot(1).name;
    s.after(1000);
    const entered = s.now - 300;
    s.decideOnly({
      type: 'AgentPolled',
      pod,
      status: {
        status: 'faulted',
        faultCount: 0,
        reason: 'WorkerCrash',
        transitions: { FAULTED: new Date(entered).toISOString() },
      },
      at: s.now,
    });
    expect(s.job.remediations.at(-1)).toMatchObject({ reason: 'WorkerCrash', faultAt: entered });
  });
});

describe('a crash is blamed on the pod whose worker failed first, whichever confirmation arrives first', () => {
  /** Rank 1's worker crashes at `t`; rank 0's workers then lose the connection and its agent faults 7 ms later. */
  const crashThenPeer = (s: Scenario, t: number) => ({
    crasher: s.agentAnswer(s.slot(1).name, 'FAULTED', {
      reason: 'WorkerCrash',
      message: 'local rank 0 (global rank 2) exited with code 3',
      enteredAt: t,
    }),
    peer: s.agentAnswer(s.slot(0).name, 'FAULTED', {
      reason: 'WorkerCrash',
      message: 'local rank 0 (global rank 0) exited with code 1: Connection reset by peer',
      enteredAt: t + 7,
    }),
  });

  it.each<[string, (o: ReturnType<typeof crashThenPeer>) => Observation[]]>([
    ["the peer's confirmation first", (o) => [o.peer, o.crasher]],
    ["the crasher's confirmation first", (o) => [o.crasher, o.peer]],
  ])('given both agents FAULTED, when decide reads %s, then only the crasher is blamed', (_name, order) => {
    const s = running({ restartPolicy: { numRestartBeforeFullJobRestart: 5 } });
    const crasher = s.slot(1);
    s.after(1000);
    s.observe(...order(crashThenPeer(s, s.now - 200)));
    expect(s.job.generation).toBe(1);
    expect(s.job.remediations).toHaveLength(1);
    expect(s.job.remediations[0]).toMatchObject({
      level: 'process',
      reason: 'WorkerCrash',
      faultAt: s.now - 200,
      pods: [crasher.name],
      ranks: [1],
      nodes: [crasher.nodeName],
    });
    expect(s.job.nodeFaults).toEqual({ [crasher.nodeName as string]: 1 });
    expect(s.job.latestFaultyPodInstanceList?.faultyPodList).toEqual([crasher.name]);
  });

  it("given only the peer's agent FAULTED, when decide reads it, then the peer is blamed (nothing earlier exists)", () => {
    const s = running();
    const peer = s.slot(0);
    s.after(1000);
    s.observe(crashThenPeer(s, s.now - 200).peer);
    expect(s.job.remediations[0]).toMatchObject({ pods: [peer.name], ranks: [0], nodes: [peer.nodeName] });
  });

  it('given two agents FAULTED at the same time, when decide reads both, then both are blamed', () => {
    const s = running();
    s.after(1000);
    const t = s.now - 200;
    s.observe(
      s.agentAnswer(s.slot(0).name, 'FAULTED', { reason: 'WorkerCrash', enteredAt: t }),
      s.agentAnswer(s.slot(1).name, 'FAULTED', { reason: 'WorkerCrash', enteredAt: t }),
    );
    expect(s.job.remediations[0]?.pods).toEqual([s.slot(0).name, s.slot(1).name].sort());
  });
});

describe('the blind-log guard', () => {
  it('holds a hang verdict while the agents report in and no worker line arrived, and says so', () => {
    const s = running(withRules);
    s.after(5000).observe(heartbeat(s, 0), hang(s));
    expect(s.job.phase).toBe('Running');
    expect(s.job.generation).toBe(0);
    expect(s.job.restartCount).toBe(0);
    const c = s.job.conditions.find((x) => x.type === 'LogsNotArriving');
    expect(c).toMatchObject({ status: 'True', reason: 'LogsNotArriving' });
    expect(c?.message).toContain('JobHang');
    expect(c?.message).toContain('subscription filter');
    expect(s.events()).toContain('LogsNotArriving');
  });

  it('restarts on the same hang verdict once worker lines of this run have arrived', () => {
    const s = running(withRules);
    s.after(1000).observe({ type: 'WorkerLinesArrived', at: s.now });
    s.after(5000).observe(heartbeat(s, 0), hang(s));
    expect(s.job.restartCount).toBe(1);
    expect(s.job.conditions.find((x) => x.type === 'LogsNotArriving')).toBeUndefined();
  });

  it('clears the condition when worker lines arrive, and a later hang restarts', () => {
    const s = running(withRules);
    s.after(5000).observe(heartbeat(s, 0), hang(s));
    s.after(1000).observe({ type: 'WorkerLinesArrived', at: s.now });
    expect(s.job.conditions.find((x) => x.type === 'LogsNotArriving')).toMatchObject({
      status: 'False',
      reason: 'LogsArriving',
    });
    expect(s.events()).toContain('LogsArriving');
    s.after(5000).observe(hang(s));
    expect(s.job.restartCount).toBe(1);
  });

  it('raises the condition without a verdict once the run has been blind for a while', () => {
    const s = running(withRules);
    s.after(LOGS_NOT_ARRIVING_AFTER_MS / 2).observe(heartbeat(s, 0));
    expect(s.job.conditions.find((x) => x.type === 'LogsNotArriving')).toBeUndefined();
    s.after(LOGS_NOT_ARRIVING_AFTER_MS).observe(heartbeat(s, 1));
    expect(s.job.conditions.find((x) => x.type === 'LogsNotArriving')?.status).toBe('True');
    // Raised once: the next blind decide emits no second event.
    const r = decide(s.job, [heartbeat(s, 0)], s.now + 1000);
    expect(r.actions.filter((a) => a.type === 'RecordEvent')).toEqual([]);
  });

  it('does not hold a hang verdict when the agents have not been heard from for long', () => {
    const s = running(withRules);
    s.after(AGENTS_HEARD_WITHIN_MS + 1000).decideOnly(hang(s));
    expect(s.job.phase).toBe('Restarting');
    expect(s.job.remediations.at(-1)?.reason).toBe('LogHang_JobHang');
  });

  it('never raises it for a job without log rules', () => {
    const s = running();
    s.after(2 * LOGS_NOT_ARRIVING_AFTER_MS).observe(heartbeat(s, 0), hang(s));
    expect(s.job.conditions.find((x) => x.type === 'LogsNotArriving')).toBeUndefined();
  });
});
