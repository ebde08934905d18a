/**
 * Prometheus text exposition format 0.0.4 for the local `/metrics` endpoint (when no remote-write URL is set).
 * Families are sorted by name, each with `# HELP`/`# TYPE` from `MetricHelp`; histogram series
 * (`_bucket`/`_sum`/`_count`) are grouped under their family with buckets in ascending `le` order.
 *
 * `PrometheusTextSink` is the pull counterpart of the remote-write sink: Prometheus scrapes it, so a push
 * has nothing to send, and a scrape reads the durable totals at that moment (never a stale copy).
 */
import type { Action } from '../../core/actions.ts';
import { MetricHelp, type MetricName, type MetricType } from '../../core/metrics.ts';
import type { CounterTotal, MetricSamples, MetricStore, MetricsSink } from '../../core/ports.ts';

/** Content-Type of the rendered text. */
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

const formatValue = (v: number): string =>
  Number.isNaN(v) ? 'NaN' : v === Number.POSITIVE_INFINITY ? '+Inf' : v === -Infinity ? '-Inf' : String(v);

/** Sorted `{a="1",b="2"}` (empty string for no labels). */
const formatLabels = (labels: Record<string, string>): string => {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
};

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

/** The family a series belongs to, and its type (catalog first; otherwise inferred from the name). */
function familyOf(
  name: string,
  fallback: MetricType | 'untyped',
): { family: string; type: MetricType | 'untyped' } {
  if (name in MetricHelp) return { family: name, type: MetricHelp[name as MetricName].type };
  const base = name.replace(HISTOGRAM_SUFFIX, '');
  if (base !== name && base in MetricHelp && MetricHelp[base as MetricName].type === 'histogram') {
    return { family: base, type: 'histogram' };
  }
  return { family: name, type: fallback };
}

const suffixRank = (name: string): number =>
  name.endsWith('_bucket') ? 0 : name.endsWith('_sum') ? 1 : name.endsWith('_count') ? 2 : 3;
const leValue = (labels: Record<string, string>): number =>
  labels.le === undefined ? 0 : labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);

/** Renders counter totals and gauges as Prometheus text (format 0.0.4), deterministic for equal input. */
export function renderPrometheusText(counters: CounterTotal[], gauges: CounterTotal[]): string {
  const families = new Map<string, { type: MetricType | 'untyped'; series: CounterTotal[] }>();
  const add = (s: CounterTotal, fallback: MetricType | 'untyped') => {
    const { family, type } = familyOf(s.name, fallback);
    const entry = families.get(family) ?? { type, series: [] };
    entry.series.push(s);
    families.set(family, entry);
  };
  for (const c of counters) add(c, c.name.endsWith('_total') ? 'counter' : 'untyped');
  for (const g of gauges) add(g, 'gauge');

  const lines: string[] = [];
  for (const family of [...families.keys()].sort()) {
    const { type, series } = families.get(family)!;
    const help = family in MetricHelp ? MetricHelp[family as MetricName].help : undefined;
    if (help) lines.push(`# HELP ${family} ${escapeHelp(help)}`);
    lines.push(`# TYPE ${family} ${type}`);
    const sorted = series
      .map((s) => {
        const { le: _le, ...rest } = s.labels;
        return { s, group: formatLabels(rest) };
      })
      .sort(
        (a, b) =>
          a.group.localeCompare(b.group) ||
          suffixRank(a.s.name) - suffixRank(b.s.name) ||
          leValue(a.s.labels) - leValue(b.s.labels),
      );
    for (const { s } of sorted) lines.push(`${s.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The local plane's metrics sink: served as text at `GET /metrics`, scraped rather than pushed. */
export class PrometheusTextSink implements MetricsSink {
  constructor(private readonly store: Pick<MetricStore, 'readCounters' | 'readGauges'>) {}

  async recordDecision(_actions: readonly Action[], _at: number): Promise<void> {}

  async push(_samples: MetricSamples): Promise<void> {}

  /** The durable counter totals and latest-value gauges, rendered (text exposition format 0.0.4). */
  async scrape(): Promise<string> {
    const [counters, gauges] = await Promise.all([this.store.readCounters(), this.store.readGauges()]);
    return renderPrometheusText(counters, gauges);
  }
}
