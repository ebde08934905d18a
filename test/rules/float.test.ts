import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSimpleFloat, SIMPLE_FLOAT } from '../../rules/engine.ts';

describe('isSimpleFloat', () => {
  it.each([
    ['12', true],
    ['3.5', true],
    ['7.', true],
    ['2.5E+00', true],
    ['1e5', true],
    ['1.e-3', true],
    ['', false],
    ['.5', false],
    ['1e', false],
    ['1e+', false],
    ['+1', false],
    ['1.2.3', false],
    [' 1', false],
    ['1_000', false],
    ['inf', false],
  ])('reads %j as simple: %s', (text, expected) => {
    expect(isSimpleFloat(text)).toBe(expected);
    expect(SIMPLE_FLOAT.test(text)).toBe(expected);
  });

  it('accepts exactly the strings the SIMPLE_FLOAT regex accepts', () => {
    const text = fc.string({
      unit: fc.constantFrom('0', '7', '.', 'e', 'E', '+', '-', ' ', 'x'),
      maxLength: 8,
    });
    fc.assert(
      fc.property(text, (t) => {
        expect(isSimpleFloat(t)).toBe(SIMPLE_FLOAT.test(t));
      }),
      { numRuns: 3000 },
    );
  });
});
