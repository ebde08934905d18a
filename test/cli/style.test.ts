import { describe, expect, it } from 'vitest';
import { colorsEnabled } from '../../cli/style.ts';

describe('colorsEnabled', () => {
  it.each([
    ['a terminal', { isTTY: true }, {}, true],
    ['a pipe or a file', { isTTY: false }, {}, false],
    ['a pipe on a CI machine (picocolors alone would colour it)', {}, { CI: 'true' }, false],
    ['a terminal with NO_COLOR set', { isTTY: true }, { NO_COLOR: '1' }, false],
    ['a terminal with an empty NO_COLOR (the convention: unset)', { isTTY: true }, { NO_COLOR: '' }, true],
    ['a pipe with FORCE_COLOR', { isTTY: false }, { FORCE_COLOR: '1' }, true],
    ['a dumb terminal', { isTTY: true }, { TERM: 'dumb' }, false],
  ])('colours %s: %s', (_what, stream, env, expected) => {
    expect(colorsEnabled(stream, env)).toBe(expected);
  });
});
