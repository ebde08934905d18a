/**
 * The normalized, typed form of a `HyperPodPyTorchJob` manifest (sagemaker.amazonaws.com/v1).
 *
 * Produced only by `parseJobManifest` (core/spec/parse.ts); everything downstream (decide, the rule
 * engine, the pod builder, the API) consumes this shape and never the raw manifest. Defaults are already
 * applied: a field typed without `?` is always present. Field names follow the CRD (hyperpod-spec §2–3)
 * so that status and docs read the same; TrainKeeper's own extensions live under `trainkeeper` (job) and
 * `ranks`/`scope` (rules).
 */

/** `spec.nprocPerNode`: `auto`/`gpu`/`cpu` are resolved by the agent on the node; an integer is fixed. */
export type NprocPerNode = number | 'auto' | 'gpu' | 'cpu';

export type MetricOperator = 'gt' | 'gteq' | 'lt' | 'lteq' | 'eq';

/** One entry of `runPolicy.logMonitoringConfiguration` (hyperpod-spec §3.1), plus TrainKeeper extensions. */
export interface LogRule {
  name: string;
  /**
   * Anchored at line start (Python `re.match` semantics). Python `re` syntax; lookaround and
   * backreferences are accepted when the pattern is backtrack-safe (core/spec/pattern.ts).
   */
  logPattern: string;
  stopPattern?: string;
  expectedStartCutOffInSeconds?: number;
  expectedRecurringFrequencyInSeconds?: number;
  /** May be fractional (HyperPod only takes integers). */
  metricThreshold?: number;
  operator?: MetricOperator;
  /** Consecutive SLOW data points (per stream) before the rule reports SLOW. Default 1. */
  metricEvaluationDataPoints: number;
  /** Default false. */
  faultOnMatch: boolean;
  /** Extension: global ranks whose lines this rule reads. Absent = every rank. */
  ranks?: number[];
  /**
   * Extension: `job` (default) — time-based checks are job-wide, a match on any monitored stream counts as
   * progress; `stream` — each stream keeps its own start/recurring timers (catches one silent rank).
   */
  scope: 'job' | 'stream';
  /** Where the rule came from: the manifest, or a preset (`rules/presets/<preset>.ts`). */
  source: { kind: 'user' } | { kind: 'preset'; preset: string };
}

/**
 * A log rule as written, before `parseLogRules` (core/spec/log-rules.ts) checks it and applies the
 * defaults: the shape of the rule presets (rules/presets/*.ts). Manifests and API bodies arrive untyped.
 */
export type LogRuleInput = Pick<LogRule, 'name' | 'logPattern'> &
  Partial<Omit<LogRule, 'name' | 'logPattern' | 'source'>>;

export interface RestartPolicy {
  numRestartBeforeFullJobRestart?: number;
  /** Required by the CRD when `restartPolicy` is present. */
  evalPeriodSeconds: number;
  maxFullJobRestarts?: number;
  maxNumRepeatOffendersToAvoid?: number;
  /** Default 0. Accepted; only meaningful for elastic jobs. */
  scaleUpSnoozeTimeInSeconds: number;
}

export type CleanPodPolicy = 'All' | 'OnlyComplete' | 'None';

export interface RunPolicy {
  /** Caps process-level restarts over the job's life. Absent = unlimited. */
  jobMaxRetryCount?: number;
  restartPolicy?: RestartPolicy;
  /** Default `All`. */
  cleanPodPolicy: CleanPodPolicy;
  /** Default 0 (delete right away); -1 keeps the finished job forever. */
  ttlSecondsAfterFinished: number;
  activeDeadlineSeconds?: number;
  startupDeadlineSeconds?: number;
  faultDeadlineSeconds?: number;
  /** Default false. */
  suspend: boolean;
  workloadMode?: string;
  /** User rules only; presets are added by `effectiveRules` (rules/presets). Default []. */
  logMonitoringConfiguration: LogRule[];
}

/** A Kubernetes PodTemplateSpec, kept as given (validated for the fields we act on). */
export interface PodTemplateSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: Array<Record<string, unknown> & { name: string; command?: string[]; args?: string[] }>;
    [key: string]: unknown;
  };
}

export interface ReplicaSpec {
  name: string;
  /** Default 0. Pods that hold a rank. */
  replicas: number;
  /** Default 0. Extra pods that wait READY to replace a faulty one. */
  spares: number;
  maxReplicas?: number;
  template: PodTemplateSpec;
}

/** Exponential backoff between consecutive restarts (extension). */
export interface RestartBackoff {
  /** Restarts in a row with no backoff before backoff starts. Default 2. */
  freeRestarts: number;
  /** Default 10. */
  initialSeconds: number;
  /** Default 300. */
  maxSeconds: number;
  /** Default 2. */
  multiplier: number;
}

/** `spec.trainkeeper`: TrainKeeper's own options, all optional in the manifest. */
export interface TrainKeeperOptions {
  /** Preset names to apply; default every preset. `[]` opts out. */
  presets: string[];
  /** Absent = no backoff (the operator's behaviour). */
  restartBackoff?: RestartBackoff;
  /**
   * Fail with reason `NoProgress` after this many consecutive restarts that saw no new training progress.
   * Absent = guard off.
   */
  maxRestartsWithoutProgress?: number;
  /** Name of a rule whose captured metric is the training step (progress). Else the agent's `progress`. */
  progressRule?: string;
  /**
   * Opt-in to the in-process restart tier (HyperPod's `in_process_restart`, below process-level restart on
   * the ladder): on a worker crash or a log-rule fault, with every rank pod healthy, the agents replace only
   * the dead workers and the live ones re-enter the training function in place (core/decide/ladder.ts).
   * Needs agents started with `--inprocess-restart` too. Absent = false (off).
   */
  inProcessRestart?: boolean;
}

/**
 * `spec.elasticPolicy` (hyperpod-spec §2.5): the world sizes an elastic job may take. Validated (min ≤ max,
 * a step or discrete sizes but not both, sizes ascending within [min, max]) and kept; TrainKeeper does not
 * scale jobs elastically.
 */
export interface ElasticPolicy {
  minReplicas?: number;
  maxReplicas?: number;
  /** Sizes are `minReplicas + N × step`. Not with `replicaDiscreteValues`. */
  replicaIncrementStep?: number;
  /** Explicit sizes, strictly ascending. Not with `replicaIncrementStep`. */
  replicaDiscreteValues?: number[];
  gracefulShutdownTimeoutInSeconds?: number;
  scalingTimeoutInSeconds?: number;
  faultyScaleDownTimeoutInSeconds?: number;
}

export interface JobSpec {
  apiVersion: 'sagemaker.amazonaws.com/v1';
  kind: 'HyperPodPyTorchJob';
  name: string;
  /** Default `default`. */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Default `auto`. */
  nprocPerNode: NprocPerNode;
  replicaSpecs: ReplicaSpec[];
  runPolicy: RunPolicy;
  /** Validated and kept, not acted on (a warning says so). */
  elasticPolicy?: ElasticPolicy;
  trainkeeper: TrainKeeperOptions;
}

/** One problem in a manifest: `path` is dotted with [i] for list items, e.g. `spec.replicaSpecs[0].replicas`. */
export interface FieldIssue {
  path: string;
  message: string;
}

export type ParseResult =
  | { ok: true; spec: JobSpec; warnings: FieldIssue[] }
  | { ok: false; errors: FieldIssue[]; warnings: FieldIssue[] };
