import { describe, expect, it } from 'vitest';
import { patternError } from '../../core/spec/pattern.ts';

describe('patternError', () => {
  it.each([
    '.*Loss:.*',
    '.*training_loss_step (\\d+(?:\\.\\d+)?).*',
    '.* (.+)TFLOPs.*',
    '.*RuntimeError.*out of memory.*',
    '.*step (?P<step>\\d+).*',
    '(?i).*nccl error.*',
    '^\\s*$',
  ])('accepts %s', (pattern) => {
    expect(patternError(pattern)).toBeUndefined();
  });

  it.each([
    ['(a)\\1', 'backreferences are not supported'],
    ['.*(?=TFLOPs)', 'lookahead/lookbehind is not supported'],
    ['(?<!x)y', 'lookahead/lookbehind is not supported'],
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
});
