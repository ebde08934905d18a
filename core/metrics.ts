/**
 * The metric catalog, and the one mapping from decide's metric actions to what the durable store keeps
 * (`metricWritesForActions`). The seven `hyperpod_training_operator_jobs_*` names keep HyperPod's spelling
 * so existing dashboards work; everything else is `trainkeeper_*`. Counters are durable totals (DynamoDB
 * ADD) pushed as totals; labels are bounded (no pod names or ranks on counters).
 *
 * Latency observations → durable series. Lambdas are stateless, so a histogram is kept as plain counter
 * items in the store (`incrementCounters`): one per bucket (`<name>_bucket{le}`), plus `<name>_sum` and
 * `<name>_count`. Pushing those totals as-is is exactly a Prometheus histogram (cumulative buckets, `le`
 * label, `+Inf`), so `histogram_quantile(0.9, sum by (le) (rate(<name>_bucket[5m])))` works on AMP.
 *
 * The HyperPod latency metrics are gauges (latest value, seconds). Cardinality decision: gauges and
 * histograms carry only the catalog's bounded labels (`level` for restart latency, none for detection
 * latency); a `job`, pod or rank label is dropped. Per-job latencies live in the job's remediations, its
 * timeline and its EventBridge events; Prometheus series stay bounded no matter how many jobs run.
 *
 * Pure: the sinks that carry these series out (adapters/prometheus, adapters/aws/cloudwatch.ts) and the
 * store that keeps them (the `MetricStore` port) live outside core.
 */
import type { Action } from './actions.ts';
import type { CounterIncrement, CounterTotal } from './ports.ts';

/** Every metric name the control plane writes (dashboards and alarms depend on these spellings). */
export const Metric = {
  jobsCreated: 'hyperpod_training_operator_jobs_created_total',
  jobsDeleted: 'hyperpod_training_operator_jobs_deleted_total',
  jobsSuccessful: 'hyperpod_training_operator_jobs_successful_total',
  jobsFailed: 'hyperpod_training_operator_jobs_failed_total',
  jobsRestarted: 'hyperpod_training_operator_jobs_restarted_total',
  /** Gauge, seconds: detection → all agents RUNNING, for the latest restart of a job. */
  restartLatency: 'hyperpod_training_operator_jobs_restart_latency',
  /** Gauge, seconds: fault → detection, for the latest fault of a job. */
  faultDetectionLatency: 'hyperpod_training_operator_jobs_fault_detection_latency',

  /** Counter, labels {level, reason}. */
  restarts: 'trainkeeper_restarts_total',
  /** Counter, labels {rule, verdict}. */
  ruleFindings: 'trainkeeper_rule_findings_total',
  /** Gauge, labels {phase}. */
  jobsByPhase: 'trainkeeper_jobs',
  /** Counter. */
  logLinesEvaluated: 'trainkeeper_log_lines_evaluated_total',
  /** Counter, labels {kind}. */
  malformedEventsSkipped: 'trainkeeper_malformed_events_skipped_total',
  /** Counter. */
  reconcileConflicts: 'trainkeeper_reconcile_conflicts_total',
  /** Counter, labels {operation, code}. */
  kubernetesApiErrors: 'trainkeeper_kubernetes_api_errors_total',
  /** Histogram (seconds), labels {level}. */
  restartLatencySeconds: 'trainkeeper_restart_latency_seconds',
  /** Histogram (seconds). */
  detectionLatencySeconds: 'trainkeeper_fault_detection_latency_seconds',
  /** Counter, labels {direction, outcome}: elastic scalings (core/decide/elastic.ts). */
  elasticScalingEvents: 'trainkeeper_elastic_scaling_events_total',
  /** Histogram (seconds), labels {direction}: a scaling's start to every rank RUNNING at the new size. */
  elasticScalingSeconds: 'trainkeeper_elastic_scaling_duration_seconds',
  /** Counter (seconds): time elastic jobs ran below their largest allowed size. */
  elasticSecondsBelowMax: 'trainkeeper_elastic_seconds_below_max_total',
} as const;
export type MetricName = (typeof Metric)[keyof typeof Metric];

/** Histogram bucket upper bounds (seconds) for the latency histograms. */
export const LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600] as const;

/** Prometheus metric type of a catalog entry (histograms expand to `_bucket`/`_sum`/`_count` series). */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * HELP text and TYPE of every catalog metric, for the text exposition (`/metrics`) and dashboards. Every
 * `Metric` value has exactly one entry (the type checker enforces it).
 */
export const MetricHelp: Record<MetricName, { type: MetricType; help: string }> = {
  [Metric.jobsCreated]: { type: 'counter', help: 'Total number of jobs created.' },
  [Metric.jobsDeleted]: { type: 'counter', help: 'Total number of deleted jobs.' },
  [Metric.jobsSuccessful]: { type: 'counter', help: 'Total number of completed jobs.' },
  [Metric.jobsFailed]: { type: 'counter', help: 'Total number of failed jobs.' },
  [Metric.jobsRestarted]: { type: 'counter', help: 'Total number of auto-restarted jobs.' },
  [Metric.restartLatency]: {
    type: 'gauge',
    help: 'Current job restart latency: seconds from fault detection to all agents RUNNING, latest restart.',
  },
  [Metric.faultDetectionLatency]: {
    type: 'gauge',
    help: 'Fault detection latency: seconds from the fault to its detection, latest fault.',
  },
  [Metric.restarts]: {
    type: 'counter',
    help: 'Restarts by level (inprocess, process, pod, job) and reason.',
  },
  [Metric.ruleFindings]: { type: 'counter', help: 'Log-rule findings by rule and verdict.' },
  [Metric.jobsByPhase]: { type: 'gauge', help: 'Jobs by phase.' },
  [Metric.logLinesEvaluated]: { type: 'counter', help: 'Log lines evaluated by the log rules.' },
  [Metric.malformedEventsSkipped]: {
    type: 'counter',
    help: 'Malformed inputs counted and skipped, by kind.',
  },
  [Metric.reconcileConflicts]: {
    type: 'counter',
    help: 'Job writes lost to a concurrent writer (re-decided).',
  },
  [Metric.kubernetesApiErrors]: { type: 'counter', help: 'Kubernetes API errors by operation and code.' },
  [Metric.restartLatencySeconds]: {
    type: 'histogram',
    help: 'Restart latency in seconds (detection to all agents RUNNING), by level.',
  },
  [Metric.detectionLatencySeconds]: { type: 'histogram', help: 'Fault detection latency in seconds.' },
  [Metric.elasticScalingEvents]: {
    type: 'counter',
    help: 'Elastic scalings by direction (up, down) and outcome (Completed, Aborted).',
  },
  [Metric.elasticScalingSeconds]: {
    type: 'histogram',
    help: 'Elastic scaling duration in seconds (start to every rank running at the new size), by direction.',
  },
  [Metric.elasticSecondsBelowMax]: {
    type: 'counter',
    help: 'Seconds elastic jobs spent below their largest allowed world size.',
  },
};

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
 * they are, `ObserveLatency` actions as histogram increments plus their latest gauge. The reconciler calls
 * `MetricStore.incrementCounters(increments)` and `MetricStore.setGauges(gauges, now)` after the job write
 * succeeded; other actions yield nothing.
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
