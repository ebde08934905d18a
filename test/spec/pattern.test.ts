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
});
