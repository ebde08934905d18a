import { describe, expect, it } from 'vitest';
import { isStarted, isTerminal, JOB_PHASES, sameJson } from '../../core/job.ts';

describe('sameJson', () => {
  it.each([
    [
      'objects whose keys come in another order (a spec read back from DynamoDB)',
      { a: 1, b: { c: [1, 2] } },
      { b: { c: [1, 2] }, a: 1 },
    ],
    ['an object with an undefined key and one without it', { a: 1, b: undefined }, { a: 1 }],
    ['equal nested arrays of objects', [{ x: 'y' }, null], [{ x: 'y' }, null]],
  ])('holds for %s', (_, a, b) => {
    expect(sameJson(a, b)).toBe(true);
    expect(sameJson(b, a)).toBe(true);
  });

  it.each([
    ['arrays in another order', [1, 2], [2, 1]],
    ['an array and an object with index keys', [1], { 0: 1 }],
    ['a missing key and a null one', { a: null }, {}],
    ['different leaf values', { a: { b: 1 } }, { a: { b: '1' } }],
  ])('does not hold for %s', (_, a, b) => {
    expect(sameJson(a, b)).toBe(false);
    expect(sameJson(b, a)).toBe(false);
  });
});

describe('job phases', () => {
  it('lists the terminal phases among all phases, last', () => {
    expect(JOB_PHASES.filter(isTerminal)).toEqual(['Succeeded', 'Failed', 'Cancelled']);
    expect(JOB_PHASES.slice(-3)).toEqual(['Succeeded', 'Failed', 'Cancelled']);
  });

  it('counts a generation as started only once its agents were sent /start', () => {
    expect(isStarted({ generation: 2, startedGeneration: 1 })).toBe(false);
    expect(isStarted({ generation: 2, startedGeneration: 2 })).toBe(true);
    expect(isStarted({ generation: 0 })).toBe(false);
  });
});
