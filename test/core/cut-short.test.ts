/**
 * A restart whose trigger ran out of time half-way through its agent calls (functions/shell/reconcile.ts
 * stops starting them near the Lambda time limit): the job is due at once, and the next trigger finishes
 * the restart from the record alone (level-triggered), every rank started exactly once at the new
 * generation.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../core/actions.ts';
import { given, makeSpec } from './dsl.ts';

/** The first `n` pods of an agent action, as a fan-out cut short after `n` calls makes them. */
const firstCalls = (action: Action, n: number): Action => {
  if (action.type === 'StopAgents') return { ...action, pods: action.pods.slice(0, n) };
  if (action.type === 'StartAgents') return { ...action, starts: action.starts.slice(0, n) };
  throw new Error(`firstCalls: not a fan-out: ${action.type}`);
};

describe('a restart cut short by the time limit', () => {
  it.each([
    ['the stops', 'StopAgents' as const],
    ['the starts', 'StartAgents' as const],
  ])(
    'is due at once after %s were cut short, and the next trigger starts every rank once at the new generation',
    (_, cutIn) => {
      const s = given(makeSpec({ replicas: 4 }));
      s.after(1000).bringUp();
      expect(s.job.phase).toBe('Running');
      // The crash's trigger, by hand: its actions go out until the cut, then the answers so far and the cut
      // are recorded.
      s.after(1000);
      let result = s.decideOnly(s.crash(1));
      const generation = s.job.generation;
      expect(generation).toBe(1);
      for (let round = 0; round < 4; round++) {
        const cut = result.actions.find((a) => a.type === cutIn);
        if (cut) {
          const answers = s.world.apply(
            [...result.actions.filter((a) => a.type !== cutIn), firstCalls(cut, 2)],
            s.now,
          );
          result = s.decideOnly(...answers, { type: 'AgentCallsCutShort', at: s.now });
          break;
        }
        result = s.decideOnly(...s.world.apply(result.actions, s.now));
      }
      expect(s.job.cutShortAt).toBe(s.now);
      expect(s.job.nextCheckAt).toBe(s.now);
      expect(s.job.phase).toBe('Restarting');

      // The sweep a moment later: the record alone says what is left.
      s.after(50).sweep();
      expect(s.job.phase).toBe('Running');
      expect(s.job.generation).toBe(generation);
      expect(s.job.cutShortAt).toBeUndefined();
      expect(s.job.nextCheckAt).toBeGreaterThan(s.now);
      const starts = s.actionsOf('StartAgents', s.world.log).flatMap((a) => a.starts);
      const atGeneration = starts.filter((x) => x.body.faultCount === generation).map((x) => x.body.rank);
      expect(atGeneration.sort()).toEqual([0, 1, 2, 3]);
    },
  );
});
