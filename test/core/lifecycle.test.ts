import { describe, expect, it } from 'vitest';
import { LIVENESS_GRANULARITY_MS, LIVENESS_MS, RANK_IPS_MAX_RANKS } from '../../core/decide/lifecycle.ts';
import { masterPortFor } from '../../core/decide/naming.ts';
import { decide, newJobRecord } from '../../core/decide.ts';
import { APPLIED_COMMANDS_KEPT } from '../../core/job.ts';
import { Metric } from '../../core/metrics.ts';
import type { Observation } from '../../core/observations.ts';
import type { CleanPodPolicy } from '../../core/spec/types.ts';
import { given, makeSpec, rule } from './dsl.ts';

const T0 = 1_000_000;

describe('newJobRecord', () => {
  it('creates a Pending version-1 record with a slot per replica index including spares and asks for service, pods, event and counter', () => {
    const { job, actions } = newJobRecord(makeSpec({ replicas: 3, spares: 1 }), {
      uid: 'u',
      submittedBy: 'alice',
      now: T0,
    });
    expect(job.version).toBe(1);
    expect(job.phase).toBe('Pending');
    expect(job.generation).toBe(0);
    expect(job.pods.map((p) => [p.name, p.groupRank])).toEqual([
      ['llama-pods-0-g0', 0],
      ['llama-pods-1-g0', 1],
      ['llama-pods-2-g0', 2],
      ['llama-pods-3-g0', null],
    ]);
    expect(actions.map((a) => a.type)).toEqual([
      'EnsureService',
      'CreatePods',
      'RecordEvent',
      'IncrementCounter',
    ]);
    const create = actions[1];
    expect(create?.type === 'CreatePods' && create.pods.map((p) => [p.generation, p.spare])).toEqual([
      [0, false],
      [0, false],
      [0, false],
      [0, true],
    ]);
    const event = actions[2];
    expect(event?.type === 'RecordEvent' && [event.event.lifecycle, event.event.reason]).toEqual([
      'JobSubmitted',
      'Created',
    ]);
    expect(actions[3]).toMatchObject({ name: Metric.jobsCreated, by: 1 });
    expect(job.conditions.map((c) => c.type)).toEqual(['Created']);
  });

  it('creates a Suspended record without pods when runPolicy.suspend is set', () => {
    const { job, actions } = newJobRecord(makeSpec({ runPolicy: { suspend: true } }), {
      uid: 'u',
      submittedBy: 'a',
      now: T0,
    });
    expect(job.phase).toBe('Suspended');
    expect(actions.map((a) => a.type)).toEqual(['EnsureService', 'RecordEvent', 'IncrementCounter']);
  });
});

describe('bring-up', () => {
  it('starts every rank at once with rank-0 rendezvous once all rank agents are READY, leaving spares unstarted', () => {
    const s = given(makeSpec({ replicas: 3, spares: 1 }));
    s.after(1000).bringUp();
    const start = s.actionsOf('StartAgents', s.history)[0]!;
    expect(start.generation).toBe(0);
    expect(start.starts.map((x) => x.body.rank)).toEqual([0, 1, 2]);
    const rank0Ip = s.slot(0).ip;
    for (const { body } of start.starts) {
      expect(body).toMatchObject({
        nnodes: 3,
        faultCount: 0,
        master_addr: rank0Ip,
        master_port: masterPortFor('uid-1', 0),
        spare: false,
      });
      expect(body.rankIps?.map((r) => r.rank)).toEqual([0, 1, 2]);
    }
    expect(start.starts.map((x) => x.pod)).not.toContain(s.job.pods[3]!.name);
    expect(s.job.phase).toBe('Running');
    expect(s.job.conditions.filter((c) => c.status === 'True').map((c) => c.type)).toEqual([
      'Created',
      'PodsRunning',
      'Running',
    ]);
    expect(s.job.startTime).toBe(s.now);
    expect(s.job.runningSince).toBe(s.now);
    expect(s.job.masterAddr).toBe(rank0Ip);
  });

  it('sends the rank → IP table up to RANK_IPS_MAX_RANKS ranks, and only the rendezvous above (N² bytes)', () => {
    for (const [replicas, table] of [
      [RANK_IPS_MAX_RANKS, true],
      [RANK_IPS_MAX_RANKS + 1, false],
    ] as const) {
      const s = given(makeSpec({ replicas }));
      s.after(1000).bringUp();
      const start = s.actionsOf('StartAgents', s.history)[0]!;
      expect(start.starts).toHaveLength(replicas);
      expect(start.starts.every((x) => x.body.master_addr === s.slot(0).ip)).toBe(true);
      expect(start.starts.every((x) => (x.body.rankIps?.length ?? 0) === (table ? replicas : 0))).toBe(true);
    }
  });

  it('waits without starting while one rank agent has not reported READY', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.world.unreachable.add('llama-pods-1-g0');
    s.after(1000).bringUp();
    expect(s.actionsOf('StartAgents', s.history)).toEqual([]);
    expect(s.job.phase).toBe('Pending');
    expect(s.actionsOf('PollAgents').flatMap((a) => a.pods)).toContain('llama-pods-1-g0');
  });

  it('re-sends CreatePods for a pod never seen by the cluster (the shell died after the write)', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.world.pods.delete('llama-pods-1-g0');
    s.after(1000).bringUp();
    expect(
      s
        .actionsOf('CreatePods', s.history)
        .at(-1)
        ?.pods.map((p) => p.name),
    ).toContain('llama-pods-1-g0');
  });

  it('is level-triggered: the same record and time give the same actions and no change', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.world.unreachable.add('llama-pods-1-g0');
    s.after(1000).bringUp();
    const a = decide(s.job, [], s.now);
    const b = decide(s.job, [], s.now);
    expect(a.changed).toBe(false);
    expect(a.job).toBe(s.job);
    expect(b.actions).toEqual(a.actions);
  });

  it('polls a Running job rank agent silent for 30 seconds and schedules the check through nextCheckAt', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.after(1000).bringUp();
    // The liveness deadline (now + 30 s = 1,031,000) rounded up to the next 5 s step.
    expect(s.now + LIVENESS_MS).toBe(1_031_000);
    expect(s.job.nextCheckAt).toBe(1_035_000);
    const quiet = decide(s.job, [], s.now + LIVENESS_MS - 1);
    expect(quiet.actions).toEqual([]);
    const due = decide(s.job, [], s.now + LIVENESS_MS);
    expect(due.actions).toEqual([{ type: 'PollAgents', pods: ['llama-pods-0-g0', 'llama-pods-1-g0'] }]);
    expect(due.changed).toBe(false);
  });

  it('polls the silent ranks of a Running job in rank order, whatever order the slots are in, and no spare', () => {
    const s = given(makeSpec({ replicas: 3, spares: 1 }));
    s.after(1000).bringUp();
    // Ranks 2 and 0 swapped in the record (an elastic relayout can leave slots out of rank order).
    const [a, b, c, spare] = s.job.pods;
    const job = { ...s.job, pods: [c!, b!, a!, spare!] };
    const due = decide(job, [], s.now + LIVENESS_MS);
    expect(due.actions).toEqual([
      { type: 'PollAgents', pods: ['llama-pods-0-g0', 'llama-pods-1-g0', 'llama-pods-2-g0'] },
    ]);
  });

  it('moves nextCheckAt at most once per LIVENESS_GRANULARITY_MS of heartbeats', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.after(1000).bringUp();
    expect(LIVENESS_GRANULARITY_MS).toBe(5_000);
    const beat = (at: number): Observation[] =>
      s.job.pods.map((p) => ({
        type: 'AgentRecord',
        pod: p.name,
        at,
        record: { trainkeeper: 'agent/v1', ts: '', generation: 0, state: 'RUNNING', kind: 'heartbeat' },
      }));
    const nextChecks: [number, number | undefined][] = [];
    for (const at of [1_002_000, 1_004_999, 1_005_000, 1_005_001, 1_009_000, 1_010_001]) {
      const out = decide(s.job, beat(at), at);
      expect(out.changed).toBe(true);
      s.job = out.job;
      nextChecks.push([at, s.job.nextCheckAt]);
    }
    // Each heartbeat moves lastSeenAt; the check moves only when a deadline crosses a 5 s step.
    expect(nextChecks).toEqual([
      [1_002_000, 1_035_000],
      [1_004_999, 1_035_000],
      [1_005_000, 1_035_000],
      [1_005_001, 1_040_000],
      [1_009_000, 1_040_000],
      [1_010_001, 1_045_000],
    ]);
  });

  it('schedules the liveness check by the least recently heard rank, never before its deadline', () => {
    const s = given(makeSpec({ replicas: 3 }));
    s.after(1000).bringUp();
    const beat = (rank: number, at: number): Observation => ({
      type: 'AgentRecord',
      pod: s.slot(rank).name,
      at,
      record: { trainkeeper: 'agent/v1', ts: '', generation: 0, state: 'RUNNING', kind: 'heartbeat' },
    });
    const out = decide(s.job, [beat(0, 1_020_000), beat(2, 1_012_345)], 1_020_000);
    // Rank 1 was last heard at bring-up (1,001,000): its deadline 1,031,000 rounds up to 1,035,000.
    expect(out.job.pods.map((p) => p.lastSeenAt)).toEqual([1_020_000, 1_001_000, 1_012_345]);
    expect(out.job.nextCheckAt).toBe(1_035_000);
    const later = decide(out.job, [beat(1, 1_020_000)], 1_020_000);
    // Now rank 2 (1,012,345 + 30 s = 1,042,345) is the first due: checked at 1,045,000, not before.
    expect(later.job.nextCheckAt).toBe(1_045_000);
  });
});

describe('success and cleanup', () => {
  it.each<[CleanPodPolicy, string[]]>([
    ['All', ['llama-pods-0-g0', 'llama-pods-1-g0', 'llama-pods-2-g0']],
    ['OnlyComplete', ['llama-pods-0-g0', 'llama-pods-1-g0']],
    ['None', []],
  ])('with cleanPodPolicy %s a completed job deletes %j', (policy, deleted) => {
    const s = given(makeSpec({ replicas: 2, spares: 1, runPolicy: { cleanPodPolicy: policy } }));
    s.after(1000).bringUp();
    s.after(60_000).observe(...s.allCompleted());
    expect(s.job.phase).toBe('Succeeded');
    expect(s.job.completionTime).toBe(s.now);
    expect(s.actionsOf('DeletePods').flatMap((a) => a.pods)).toEqual(deleted);
    expect(s.actionsOf('ShutdownAgents')).toHaveLength(1);
    expect(s.events()).toContain('JobSucceeded');
    expect(s.counters()[Metric.jobsSuccessful]).toBe(1);
  });

  it.each([
    [0, undefined],
    [-1, undefined],
  ])('keeps the finished record when ttlSecondsAfterFinished is %i', (ttl, next) => {
    const s = given(makeSpec({ runPolicy: { ttlSecondsAfterFinished: ttl } }));
    s.after(1000).bringUp();
    s.after(1000).observe(...s.allCompleted());
    expect(s.job.nextCheckAt).toBe(next);
    expect(decide(s.job, [], s.now + 10 ** 9).actions).toEqual([]);
  });

  it('deletes the finished record ttlSecondsAfterFinished after completion, not a millisecond before', () => {
    const s = given(makeSpec({ runPolicy: { ttlSecondsAfterFinished: 600 } }));
    s.after(1000).bringUp();
    s.after(1000).observe(...s.allCompleted());
    const done = s.job.completionTime!;
    expect(s.job.nextCheckAt).toBe(done + 600_000);
    expect(decide(s.job, [], done + 599_999).actions).toEqual([]);
    expect(decide(s.job, [], done + 600_000).actions).toEqual([{ type: 'DeleteJob' }]);
  });

  it('ignores every observation once finished: a late crash does not restart a succeeded job', () => {
    const s = given(makeSpec());
    s.after(1000).bringUp();
    s.after(1000).observe(...s.allCompleted());
    const r = decide(s.job, [s.crash(0)], s.now + 1);
    expect(r.changed).toBe(false);
    expect(r.job.phase).toBe('Succeeded');
  });
});

describe('deadlines', () => {
  it.each([['startupDeadlineSeconds', { startupDeadlineSeconds: 60 }, 'StartupDeadlineExceeded']])(
    'fails a job that never starts when %s passes, exactly at the deadline',
    (_name, runPolicy, reason) => {
      const s = given(makeSpec({ runPolicy }));
      s.world.unreachable.add('llama-pods-0-g0');
      s.at(T0 + 59_999).sweep();
      expect(s.job.phase).toBe('Pending');
      expect(s.job.nextCheckAt).toBeLessThanOrEqual(T0 + 60_000);
      s.at(T0 + 60_000).observe();
      expect(s.job.phase).toBe('Failed');
      expect(s.job.conditions.at(-1)).toMatchObject({ type: 'Failed', reason });
      expect(s.counters()[Metric.jobsFailed]).toBe(1);
    },
  );

  it('fails a running job when activeDeadlineSeconds from startTime passes', () => {
    const s = given(makeSpec({ runPolicy: { activeDeadlineSeconds: 3600 } }));
    s.after(1000).bringUp();
    const start = s.job.startTime!;
    s.at(start + 3_599_999).observe();
    expect(s.job.phase).toBe('Running');
    s.at(start + 3_600_000).observe();
    expect(s.job.phase).toBe('Failed');
    expect(s.job.conditions.at(-1)?.reason).toBe('ActiveDeadlineExceeded');
    expect(s.actionsOf('DeletePods').flatMap((a) => a.pods)).toEqual(['llama-pods-0-g0', 'llama-pods-1-g0']);
  });

  it('fails a job that stays Restarting longer than faultDeadlineSeconds', () => {
    const s = given(makeSpec({ runPolicy: { faultDeadlineSeconds: 120 } }));
    s.after(1000).bringUp();
    s.world.unreachable.add(s.slot(1).name);
    s.after(1000).observe(s.crash(0));
    expect(s.job.phase).toBe('Restarting');
    const since = s.job.phaseSince!;
    s.at(since + 119_999).observe();
    expect(s.job.phase).toBe('Restarting');
    s.at(since + 120_000).observe();
    expect(s.job.phase).toBe('Failed');
    expect(s.job.conditions.at(-1)?.reason).toBe('FaultDeadlineExceeded');
  });
});

describe('commands', () => {
  it('cancels a running job: agents shut down, pods deleted, JobCancelled, jobsDeleted counted', () => {
    const s = given(makeSpec());
    s.after(1000).bringUp();
    s.after(1000).observe(s.command({ kind: 'Cancel', by: 'bob' }));
    expect(s.job.phase).toBe('Cancelled');
    expect(s.actions.map((a) => a.type)).toEqual([
      'ShutdownAgents',
      'DeletePods',
      'RecordEvent',
      'IncrementCounter',
    ]);
    expect(s.events()).toEqual(['JobCancelled']);
    expect(s.counters()[Metric.jobsDeleted]).toBe(1);
    expect(s.livePods()).toEqual([]);
  });

  it('applies two different commands even when the second is dated at or before the first', () => {
    const s = given(makeSpec());
    s.after(1000).bringUp();
    s.after(10).observe(s.command({ kind: 'UpdateRules', rules: [rule('First')], by: 'bob' }));
    // A command re-decided after a lost write carries its own (earlier) time: it is still a new command.
    s.observe(s.command({ kind: 'UpdateRules', rules: [rule('Second')], by: 'carol' }, s.now - 5));
    expect(s.job.spec.runPolicy.logMonitoringConfiguration.map((r) => r.name)).toEqual(['Second']);
    const updates = s.actionsOf('RecordEvent', s.history).filter((a) => a.event.reason === 'RulesUpdated');
    expect(updates.map((a) => a.event.message)).toEqual([
      expect.stringContaining('bob'),
      expect.stringContaining('carol'),
    ]);
  });

  it('keeps a bounded list of applied command ids and still recognises the recent ones', () => {
    const s = given(makeSpec());
    s.after(1000).bringUp();
    const first = s.command({ kind: 'Suspend', by: 'kueue' });
    s.observe(first);
    for (let i = 0; i < 100; i++)
      s.observe(s.command({ kind: 'UpdateRules', rules: [rule(`R${i}`)], by: 'bob' }));
    expect(s.job.appliedCommands).toHaveLength(APPLIED_COMMANDS_KEPT);
    const last = s.command({ kind: 'Resume', by: 'kueue' });
    s.observe(last);
    const gen = s.job.generation;
    expect(decide(s.job, [last], s.now + 5).changed).toBe(false);
    expect(s.job.generation).toBe(gen);
  });

  it('treats a replayed command (same id) as a no-op', () => {
    const s = given(makeSpec());
    s.after(1000).bringUp();
    const restart = s.command({ kind: 'Restart', level: 'process', by: 'bob' });
    s.after(1000).observe(restart);
    const gen = s.job.generation;
    const r = decide(s.job, [restart], s.now + 5);
    expect(r.changed).toBe(false);
    expect(r.job.generation).toBe(gen);
  });

  it('suspends (pods deleted, phase Suspended) and resumes with fresh pods at a new generation', () => {
    const s = given(makeSpec({ replicas: 2 }));
    s.after(1000).bringUp();
    s.after(1000).observe(s.command({ kind: 'Suspend', by: 'kueue' }));
    expect(s.job.phase).toBe('Suspended');
    expect(s.livePods()).toEqual([]);
    expect(s.job.nextCheckAt).toBeUndefined();
    s.after(1000).observe(s.command({ kind: 'Resume', by: 'kueue' }));
    expect(s.job.generation).toBe(1);
    expect(s.job.pods.map((p) => p.name)).toEqual(['llama-pods-0-g1', 'llama-pods-1-g1']);
    s.after(1000).sweep();
    expect(s.job.phase).toBe('Running');
    expect(s.actionsOf('StartAgents').at(-1)?.generation).toBe(1);
  });

  it('replaces the log rules and clears the rule state on UpdateRules', () => {
    const s = given(makeSpec({ runPolicy: { logMonitoringConfiguration: [rule('Old')] } }));
    s.after(1000).bringUp();
    s.after(10).observe({ type: 'RuleStateAdvanced', ruleState: { generation: 0, rules: ['Old'] } });
    expect(s.job.ruleState).toEqual({ generation: 0, rules: ['Old'] });
    s.after(10).observe(s.command({ kind: 'UpdateRules', rules: [rule('New')], by: 'bob' }));
    expect(s.job.spec.runPolicy.logMonitoringConfiguration.map((r) => r.name)).toEqual(['New']);
    expect(s.job.ruleState).toBeUndefined();
    expect(s.job.phase).toBe('Running');
  });
});
