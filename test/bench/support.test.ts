import { describe, expect, it } from 'vitest';
import { markdownTable, median, ms, percentile } from '../../bench/support.ts';

describe('bench percentiles (nearest rank)', () => {
  it.each([
    [[5], 0.5, 5],
    [[3, 1, 2], 0.5, 2],
    [[1, 2, 3, 4], 0.5, 2],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9],
    [[10, 20, 30], 1, 30],
    [[10, 20, 30], 0, 10],
  ])('percentile(%j, %d) is %d, always a measured value', (xs, p, expected) => {
    expect(percentile(xs, p)).toBe(expected);
  });

  it('has no percentile of an empty sample and refuses p outside 0..1', () => {
    expect(percentile([], 0.5)).toBeUndefined();
    expect(median([])).toBeUndefined();
    expect(() => percentile([1], 1.5)).toThrow(/0\.\.1/);
  });
});

describe('bench tables', () => {
  it('pads columns, right-aligns headers marked with > and keeps Markdown table syntax', () => {
    expect(
      markdownTable(
        ['level', '>p50'],
        [
          ['process', '667 ms'],
          ['job', '3,976 ms'],
        ],
      ),
    ).toBe(
      [
        '| level   |      p50 |',
        '|---------|---------:|',
        '| process |   667 ms |',
        '| job     | 3,976 ms |',
      ].join('\n'),
    );
  });

  it('refuses a row whose cell count differs from the header', () => {
    expect(() => markdownTable(['a', 'b'], [['1']])).toThrow(/rows\[0\] has 1 cells/);
  });

  it('formats milliseconds with thousands separators and a dash for a missing figure', () => {
    expect(ms(1234.4)).toBe('1,234 ms');
    expect(ms(undefined)).toBe('–');
  });
});
