/**
 * CamelCase reason constants: used in conditions, timeline events, EventBridge detail types, metric
 * labels and Kubernetes Events. One module so that every surface spells them the same.
 */
export const Reason = {
  // lifecycle
  Created: 'Created',
  PodsRunning: 'PodsRunning',
  Running: 'Running',
  Restarting: 'Restarting',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Suspended: 'Suspended',
  Resumed: 'Resumed',
  Cancelled: 'Cancelled',
  // faults
  WorkerCrash: 'WorkerCrash',
  WorkerFault: 'WorkerFault',
  PodFailed: 'PodFailed',
  PodMissing: 'PodMissing',
  AgentUnreachable: 'AgentUnreachable',
  NodeFault: 'NodeFault',
  ManualRestart: 'ManualRestart',
  // terminal failure reasons
  MaxRetriesExceeded: 'MaxRetriesExceeded',
  MaxFullJobRestartsExceeded: 'MaxFullJobRestartsExceeded',
  NoProgress: 'NoProgress',
  StartupDeadlineExceeded: 'StartupDeadlineExceeded',
  FaultDeadlineExceeded: 'FaultDeadlineExceeded',
  ActiveDeadlineExceeded: 'ActiveDeadlineExceeded',
  InvalidSpec: 'InvalidSpec',
  // shell
  /** An action failed with a terminal (non-retryable) error; recorded in the timeline, then skipped. */
  ActionFailed: 'ActionFailed',
  // log path (core/decide/log-path.ts)
  /** Agents report in but no worker line arrives: hang verdicts are held (condition type and reason). */
  LogsNotArriving: 'LogsNotArriving',
  /** Worker lines arrive again: the LogsNotArriving condition is cleared. */
  LogsArriving: 'LogsArriving',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Log-rule reasons are built from the rule name, as HyperPod's agent does. */
export const logRuleReason = (verdict: 'HANGING' | 'SLOW' | 'FAULTED', rule: string): string =>
  `${verdict === 'HANGING' ? 'LogHang' : verdict === 'SLOW' ? 'LogSlow' : 'LogFault'}_${rule}`;

/**
 * Lifecycle event names published to EventBridge (`detail-type`) and kept in the job timeline.
 */
export const LifecycleEvent = {
  JobSubmitted: 'JobSubmitted',
  FaultDetected: 'FaultDetected',
  RestartStarted: 'RestartStarted',
  RestartCompleted: 'RestartCompleted',
  JobSucceeded: 'JobSucceeded',
  JobFailed: 'JobFailed',
  JobCancelled: 'JobCancelled',
} as const;
export type LifecycleEvent = (typeof LifecycleEvent)[keyof typeof LifecycleEvent];
