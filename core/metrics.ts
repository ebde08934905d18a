/**
 * The metric catalog. The seven `hyperpod_training_operator_jobs_*` names keep HyperPod's spelling so
 * existing dashboards work; everything else is `trainkeeper_*`. Counters are durable totals (DynamoDB ADD)
 * pushed as totals; labels are bounded (no pod names or ranks on counters).
 */
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
  [Metric.restarts]: { type: 'counter', help: 'Restarts by level (process, pod, job) and reason.' },
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
};
