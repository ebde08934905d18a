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
