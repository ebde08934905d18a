import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../core/decide.ts';
import { isStarted, isTerminal } from '../../core/job.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { given, makeSpec, type Scenario, type SpecOptions } from './dsl.ts';

/** One step of a random history: something the world or a user does, at a time. */
type Step =
  | { kind: 'crash'; rank: number }
  | { kind: 'staleCrash'; rank: number }
  | { kind: 'finding'; rank: number; stale: boolean }
  | { kind: 'nodeFault'; rank: number }
  | { kind: 'podFail'; rank: number }
  | { kind: 'unreachable'; rank: number }
  | { kind: 'sweep' }
  | { kind: 'progress'; step: number }
  | { kind: 'complete' }
  | { kind: 'cancel' }
  | { kind: 'restart'; level: 'process' | 'job' }
  | { kind: 'suspend' }
  | { kind: 'resume' }
  | { kind: 'idle' };

const rank = fc.integer({ min: 0, max: 2 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: rank.map((r) => ({ kind: 'crash' as const, rank: r })) },
  { weight: 1, arbitrary: rank.map((r) => ({ kind: 'staleCrash' as const, rank: r })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('finding' as const), rank, stale: fc.boolean() }) },
  { weight: 2, arbitrary: rank.map((r) => ({ kind: 'nodeFault' as const, rank: r })) },
  { weight: 2, arbitrary: rank.map((r) => ({ kind: 'podFail' as const, rank: r })) },
  { weight: 2, arbitrary: rank.map((r) => ({ kind: 'unreachable' as const, rank: r })) },
  { weight: 4, arbitrary: fc.constant({ kind: 'sweep' as const }) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 0, max: 50 }).map((n) => ({ kind: 'progress' as const, step: n * 10 })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'complete' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'cancel' as const }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('process' as const, 'job' as const)
      .map((level) => ({ kind: 'restart' as const, level })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'suspend' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resume' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'idle' as const }) },
);

const specArb: fc.Arbitrary<SpecOptions> = fc.record({
  replicas: fc.integer({ min: 1, max: 3 }),
  spares: fc.integer({ min: 0, max: 1 }),
  runPolicy: fc.record(
    {
      jobMaxRetryCount: fc.integer({ min: 0, max: 4 }),
      faultDeadlineSeconds: fc.integer({ min: 30, max: 600 }),
    },
    { requiredKeys: [] },
  ),
  restartPolicy: fc.record(
    {
      numRestartBeforeFullJobRestart: fc.integer({ min: 0, max: 3 }),
      evalPeriodSeconds: fc.integer({ min: 10, max: 600 }),
      maxFullJobRestarts: fc.integer({ min: 0, max: 2 }),
      maxNumRepeatOffendersToAvoid: fc.integer({ min: 0, max: 2 }),
    },
    { requiredKeys: ['evalPeriodSeconds'] },
  ),
  trainkeeper: fc.record(
    {
      maxRestartsWithoutProgress: fc.integer({ min: 1, max: 4 }),
      restartBackoff: fc.record({
        freeRestarts: fc.integer({ min: 0, max: 2 }),
        initialSeconds: fc.integer({ min: 1, max: 20 }),
        maxSeconds: fc.integer({ min: 20, max: 120 }),
        multiplier: fc.constantFrom(1, 2, 3),
      }),
    },
    { requiredKeys: [] },
  ),
});

const historyArb = fc.tuple(
  specArb,
  fc.array(fc.tuple(stepArb, fc.integer({ min: 0, max: 40_000 })), { maxLength: 30 }),
);

/** The observation a step stands for, given the scenario's current state (undefined = nothing to say). */
const toObservation = (s: Scenario, step: Step): Observation | undefined => {
  const ranks = s.job.pods.filter((p) => p.groupRank !== null);
  const slot = 'rank' in step ? ranks[step.rank % ranks.length] : undefined;
  // Agents and the rule engine only speak for a generation once it was started (rules once Running).
  const started = isStarted(s.job);
  switch (step.kind) {
    case 'crash':
      return (
        slot &&
        s.agentStateOf(slot.name, 'FAULTED', {
          reason: 'WorkerCrash',
          message: 'exit 1',
          generation: started ? s.job.generation : s.job.generation - 1,
        })
      );
    case 'staleCrash':
      return (
        slot &&
        s.agentStateOf(slot.name, 'FAULTED', { reason: 'WorkerCrash', generation: s.job.generation - 1 })
      );
    case 'finding': {
      if (!slot) return undefined;
      const f: RuleFinding = {
        rule: 'Hang',
        verdict: 'HANGING',
        reason: 'LogHang_Hang',
        stream: `${slot.name}/0`,
        at: s.now,
        generation: step.stale || s.job.phase !== 'Running' ? s.job.generation - 1 : s.job.generation,
      };
      return { type: 'RuleFindings', findings: [f], ruleState: { generation: f.generation } };
    }
    case 'nodeFault':
      return slot?.nodeName ? s.nodeHealth(slot.nodeName, 'UnschedulablePendingReboot') : undefined;
    case 'podFail': {
      const pod = slot && s.world.pods.get(slot.name);
      if (!pod) return undefined;
      pod.phase = 'Failed';
      return s.world.observedPods(s.now);
    }
    case 'unreachable':
      return slot && { type: 'AgentPolled', pod: slot.name, status: null, at: s.now };
    case 'sweep':
      return s.world.observedPods(s.now);
    case 'progress':
      return { type: 'Progress', step: step.step, at: s.now };
    case 'complete':
      return undefined;
    case 'cancel':
      return s.command({ kind: 'Cancel', by: 'p' });
    case 'restart':
      return s.command({ kind: 'Restart', level: step.level, by: 'p' });
    case 'suspend':
      return s.command({ kind: 'Suspend', by: 'p' });
    case 'resume':
      return s.command({ kind: 'Resume', by: 'p' });
    case 'idle':
      return undefined;
  }
};

/** Runs a random history through decide + the simulated shell, calling `check` around every step. */
const run = (
  spec: SpecOptions,
  steps: [Step, number][],
  check: (before: Scenario['job'], s: Scenario, step: Step, obs: Observation[]) => void,
) => {
  const s = given(makeSpec(spec), { nodes: 6 });
  s.after(1000).bringUp();
  for (const [step, gap] of steps) {
    s.after(gap + 1);
    const obs =
      step.kind === 'complete'
        ? s.allCompleted()
        : [toObservation(s, step)].filter((o): o is Observation => !!o);
    const before = s.job;
    s.observe(...obs);
    check(before, s, step, obs);
    // Heal nodes now and then so the cluster does not run out of schedulable nodes.
    for (const n of s.world.nodes.values()) n.health = 'Schedulable';
  }
  return s;
};

describe('decide properties over random observation histories', () => {
  it('never lets a restart counter exceed its budget', () => {
    fc.assert(
      fc.property(historyArb, ([spec, steps]) => {
        run(spec, steps, (_b, s) => {
          const max = spec.runPolicy?.jobMaxRetryCount;
          if (max !== undefined) expect(s.job.processRestartCount).toBeLessThanOrEqual(max);
          const full = spec.restartPolicy?.maxFullJobRestarts;
          if (full !== undefined) expect(s.job.restartStatus.fullJobRestartCount).toBeLessThanOrEqual(full);
          const noProgress = spec.trainkeeper?.maxRestartsWithoutProgress;
          if (noProgress !== undefined)
            expect(s.job.progress.restartsWithoutProgress).toBeLessThanOrEqual(noProgress);
          expect(s.job.remediations.length).toBeLessThanOrEqual(50);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('never restarts or revives a Failed, Succeeded or Cancelled job', () => {
    fc.assert(
      fc.property(historyArb, ([spec, steps]) => {
        run(spec, steps, (before, s) => {
          if (!isTerminal(before.phase)) return;
          expect(s.job.phase).toBe(before.phase);
          expect(s.job.generation).toBe(before.generation);
          expect(s.job.restartCount).toBe(before.restartCount);
          expect(s.actions.filter((a) => a.type === 'StartAgents' || a.type === 'CreatePods')).toEqual([]);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('raises the generation by exactly one per restart (and one per resume), never otherwise', () => {
    fc.assert(
      fc.property(historyArb, ([spec, steps]) => {
        run(spec, steps, (before, s, step) => {
          const resumed = step.kind === 'resume' && before.phase === 'Suspended' ? 1 : 0;
          expect(s.job.generation - before.generation).toBe(
            s.job.restartCount - before.restartCount + resumed,
          );
          expect(s.job.restartCount - before.restartCount).toBeLessThanOrEqual(1);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('is idempotent (an observation replayed gives the state of one delivery) and deterministic', () => {
    fc.assert(
      fc.property(historyArb, ([spec, steps]) => {
        run(spec, steps, (before, s, _step, obs) => {
          const once = decide(before, obs, s.now);
          const again = decide(before, obs, s.now);
          expect(again).toEqual(once);
          const twice = decide(once.job, obs, s.now);
          expect(twice.job).toEqual(once.job);
          expect(twice.changed).toBe(false);
        });
      }),
      { numRuns: 150 },
    );
  });
});
