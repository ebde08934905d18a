/**
 * Small helpers every bench shares: a Markdown table printer (so figures paste straight into
 * docs/benchmarks.md), percentiles and the machine-load line. Benches print figures; nothing here asserts.
 */
import { cpus, loadavg } from 'node:os';

/**
 * Renders rows as a Markdown table with padded columns. Every row must have one cell per header; a
 * header starting with `>` is right-aligned (the `>` is dropped), as numbers read best that way.
 */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  for (const [i, r] of rows.entries()) {
    if (r.length !== header.length)
      throw new Error(`markdownTable: rows[${i}] has ${r.length} cells, the header ${header.length}`);
  }
  const right = header.map((h) => h.startsWith('>'));
  const head = header.map((h) => (h.startsWith('>') ? h.slice(1) : h));
  const widths = head.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/** Prints `markdownTable(header, rows)` to stdout. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(markdownTable(header, rows));
}

/**
 * The nearest-rank percentile (`p` in 0..1) of `xs`: always one of the measured values, never an
 * interpolation. `undefined` for an empty sample.
 */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  if (!(p >= 0 && p <= 1)) throw new Error(`percentile: p must be within 0..1, got ${p}`);
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/** The median (nearest-rank p50). */
export const median = (xs: readonly number[]): number | undefined => percentile(xs, 0.5);

/** `1,234 ms`, or `–` when there is no figure. */
export const ms = (n: number | undefined): string =>
  n === undefined ? '–' : `${Math.round(n).toLocaleString('en-US')} ms`;

/** The machine's load, printed with every bench: the machine is shared, and load explains the spread. */
export const loadLine = (): string =>
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')} (1/5/15 min) on ${cpus().length} cores`;
