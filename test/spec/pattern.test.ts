import { describe, expect, it } from 'vitest';
import { backtrackingPattern, captureGroups, patternError } from '../../core/spec/pattern.ts';

describe('patternError', () => {
  it.each([
    '.*Loss:.*',
    '.*training_loss_step (\\d+(?:\\.\\d+)?).*',
    '.* (.+)TFLOPs.*',
    '.*RuntimeError.*out of memory.*',
    '.*step (?P<step>\\d+).*',
    '(?i).*nccl error.*',
    '^\\s*$',
    '(a)\\1',
    '.*(?=TFLOPs)',
    '(?<!x)y',
    '(?<=step=)\\d+',
    '(?:(?!foo).)*bar',
  ])('accepts %s', (pattern) => {
    expect(patternError(pattern)).toBeUndefined();
  });

  it.each([
    ['(a+)+(?=b)', 'nested quantifiers'],
    ['(\\w+)\\1*', 'a repeated backreference'],
    ['(?<!x*)y', 'look-behind requires fixed-width pattern'],
    ['(?=x)(?i:y)', 'not supported with lookaround or backreferences'],
    ['\\2(a)(b)', 'cannot refer to an open group'],
    ['(?=x)\\q', 'bad escape \\q'],
    ['[abc', 'missing closing ]'],
    ['(abc', 'missing closing )'],
    ['a{2,1}', 'invalid repeat count'],
    ['*x', 'missing argument to repetition operator'],
  ])('rejects %s saying %s', (pattern, message) => {
    expect(patternError(pattern)).toContain(message);
  });

  it('drops the compiler prefix from the message', () => {
    expect(patternError('[')).not.toMatch(/^error parsing regexp/);
  });

  it('answers the same when asked again about a pattern (the analysis is kept per pattern)', () => {
    for (const pattern of ['(a|ab)+(?=x)', '(?<=ab)c(\\d+)', '(abc', '.*loss: (\\d+)']) {
      const first = [patternError(pattern), captureGroups(pattern)];
      const bt = patternError(pattern) === undefined ? backtrackingPattern(pattern) : undefined;
      expect([patternError(pattern), captureGroups(pattern)]).toEqual(first);
      if (bt) expect(backtrackingPattern(pattern)).toEqual(bt);
    }
    expect(patternError('(a|ab)+(?=x)')).toMatch(/^refused: /);
    expect(() => backtrackingPattern('(abc')).toThrow(/missing closing \)/);
    expect(() => backtrackingPattern('(abc')).toThrow(/missing closing \)/);
    expect(backtrackingPattern('(?<=ab)c(\\d+)')).toMatchObject({ groups: 1 });
  });
});
