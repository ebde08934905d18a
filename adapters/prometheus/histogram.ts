/**
 * Latency observations → durable series. Lambdas are stateless, so a histogram is kept as plain counter items in
 * the store (`incrementCounters`): one per bucket (`<name>_bucket{le}`), plus `<name>_sum` and `<name>_count`.
 * Pushing those totals as-is is exactly a Prometheus histogram (cumulative buckets, `le` label, `+Inf`), so
 * `histogram_quantile(0.9, sum by (le) (rate(<name>_bucket[5m])))` works on AMP.
 *
 * The HyperPod latency metrics are gauges (latest value, seconds). Cardinality decision: gauges and histograms
 * carry only the catalog's bounded labels (`level` for restart latency, none for detection latency); a `job`,
 * pod or rank label is dropped. Per-job latencies live in the job's remediations, its timeline and its
 * EventBridge events; Prometheus series stay bounded no matter how many jobs run.
 */
import type { Action } from '../../core/actions.ts';
import { LATENCY_BUCKETS, Metric } from '../../core/metrics.ts';
import type { CounterIncrement, CounterTotal } from '../../core/ports.ts';

/** How one latency is recorded: its gauge, its histogram, and the labels both may carry. */
export interface LatencySeries {
  gauge: string;
  histogram: string;
  labels: readonly string[];
}

const restart: LatencySeries = {
  gauge: Metric.restartLatency,
  histogram: Metric.restartLatencySeconds,
  labels: ['level'],
};
const detection: LatencySeries = {
  gauge: Metric.faultDetectionLatency,
  histogram: Metric.detectionLatencySeconds,
  labels: [],
};

/** The latency pairs, looked up by either name (an `ObserveLatency` action may name the gauge or the histogram). */
export const LATENCY_SERIES: Readonly<Record<string, LatencySeries>> = {
  [restart.gauge]: restart,
  [restart.histogram]: restart,
  [detection.gauge]: detection,
  [detection.histogram]: detection,
};

/** Prometheus' spelling of a bucket bound (`0.1`, `1`, `+Inf`). */
export const formatLe = (bound: number): string =>
  bound === Number.POSITIVE_INFINITY ? '+Inf' : String(bound);

const clampSeconds = (seconds: number): number => {
  if (!Number.isFinite(seconds))
    throw new RangeError(`latency must be a finite number of seconds, got ${seconds}`);
  // Clock skew between a log line's time and ours can make a latency slightly negative: count it as 0.
  return Math.max(0, seconds);
};

/**
 * The counter increments that record one observation in histogram `name`: every bucket of `LATENCY_BUCKETS`
 * (+1 where `seconds ≤ le`, +0 elsewhere so every bucket series exists), `+Inf`, `_sum` and `_count`.
 */
export function latencyToIncrements(
  name: string,
  labels: Record<string, string>,
  seconds: number,
): CounterIncrement[] {
  const s = clampSeconds(seconds);
  const buckets = [...LATENCY_BUCKETS, Number.POSITIVE_INFINITY].map((le) => ({
    name: `${name}_bucket`,
    labels: { ...labels, le: formatLe(le) },
    by: s <= le ? 1 : 0,
  }));
  return [...buckets, { name: `${name}_sum`, labels, by: s }, { name: `${name}_count`, labels, by: 1 }];
}

/**
 * Turns an `ObserveLatency` action into what the store keeps: histogram increments and the latest gauge value,
 * both with only the allowed labels. Unknown names are recorded as a histogram of that name with no gauge.
 */
export function observeLatency(
  name: string,
  labels: Record<string, string>,
  seconds: number,
): { increments: CounterIncrement[]; gauge?: CounterTotal } {
  const series = LATENCY_SERIES[name];
  if (!series) return { increments: latencyToIncrements(name, labels, seconds) };
  const kept = Object.fromEntries(Object.entries(labels).filter(([k]) => series.labels.includes(k)));
  return {
    increments: latencyToIncrements(series.histogram, kept, seconds),
    gauge: { name: series.gauge, labels: kept, value: clampSeconds(seconds) },
  };
}

/**
 * Everything decide's metric actions write to the store, in one call's worth: `IncrementCounter` actions as
 * they are, `ObserveLatency` actions as histogram increments plus their latest gauge. Handlers call
 * `store.incrementCounters(increments)` and `store.setGauges?.(gauges, now)` after the job write succeeded.
 */
export function metricWritesForActions(actions: readonly Action[]): {
  increments: CounterIncrement[];
  gauges: CounterTotal[];
} {
  const increments: CounterIncrement[] = [];
  const gauges = new Map<string, CounterTotal>();
  for (const a of actions) {
    if (a.type === 'IncrementCounter') {
      increments.push({ name: a.name, labels: a.labels, by: a.by });
    } else if (a.type === 'ObserveLatency') {
      const observed = observeLatency(a.name, a.labels, a.seconds);
      increments.push(...observed.increments);
      // Several observations of one gauge in one batch: the last one is the latest.
      if (observed.gauge)
        gauges.set(JSON.stringify([observed.gauge.name, observed.gauge.labels]), observed.gauge);
    }
  }
  return { increments, gauges: [...gauges.values()] };
}
