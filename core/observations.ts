/**
 * What triggers bring in. `decide` reconciles on levels: it folds any list of observations into the job
 * record, then derives the next actions from the resulting state, whatever woke it.
 */

import type { AgentRecord, StatusBody } from './agent-protocol.ts';
import type { RestartLevel } from './job.ts';
import type { LogRule } from './spec/types.ts';

/** Rule verdicts that are faults, in precedence order (FAULTED > HANGING > SLOW). */
export type FaultVerdict = 'FAULTED' | 'HANGING' | 'SLOW';

/**
 * A log rule that left HEALTHY/WAITING, as the rule engine (rules/engine.ts) reports it. `reason` is
 * `LogHang_<rule>`, `LogSlow_<rule>` or `LogFault_<rule>`.
 */
export interface RuleFinding {
  rule: string;
  verdict: FaultVerdict;
  reason: string;
  /** The stream that caused it; for a job-wide hang, the rule's scope (`job`). */
  stream: string;
  rank?: number;
  /** When the condition was detected (epoch ms): the line's time, or the deadline that passed. */
  at: number;
  /** The matched line (or, for a hang, the last matched line if any). */
  text?: string;
  /** The captured metric, for SLOW. */
  value?: number;
  /** The restart generation the rule state belonged to. */
  generation: number;
}

/** A pod as the cluster reports it (adapters translate from V1Pod). */
export interface ObservedPod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  nodeName?: string;
  podIP?: string;
  /** Set once deletion was requested. */
  deletionTimestamp?: number;
  createdAt?: number;
  containers: {
    name: string;
    state: 'waiting' | 'running' | 'terminated';
    exitCode?: number;
    reason?: string;
    restartCount: number;
  }[];
}

/**
 * Labels the pod builder (adapters/kube/pod-builder.ts) puts on every job pod, so that `decide` can map an
 * ObservedPod back to its (replica, index, generation, spare) without parsing its name. `hpJob` is
 * HyperPod's own `HPJob=<job>` label, kept for tools that list job pods with it.
 */
export const POD_LABELS = {
  job: 'trainkeeper.dev/job',
  replica: 'trainkeeper.dev/replica',
  index: 'trainkeeper.dev/index',
  generation: 'trainkeeper.dev/generation',
  spare: 'trainkeeper.dev/spare',
  hpJob: 'HPJob',
} as const;

/** HyperPod node-health label (`sagemaker.amazonaws.com/node-health-status`). */
export const NODE_HEALTH_LABEL = 'sagemaker.amazonaws.com/node-health-status';
export const DEEP_HEALTH_LABEL = 'sagemaker.amazonaws.com/deep-health-check-status';
export const FAULT_TYPES_LABEL = 'sagemaker.amazonaws.com/fault-types';

export type NodeHealthStatus =
  | 'Schedulable'
  | 'Unschedulable'
  | 'UnschedulablePendingReplacement'
  | 'UnschedulablePendingReboot';

export interface ObservedNode {
  name: string;
  labels: Record<string, string>;
  /** The NodeReady condition. */
  ready: boolean;
  /** From NODE_HEALTH_LABEL, when present. */
  health?: string;
  /** `spec.unschedulable` (cordoned), when true. */
  unschedulable?: boolean;
  /** EC2 instance id (from providerID or SageMaker mapping) when known. */
  instanceId?: string;
}

export type Observation =
  /** Rule findings from the logs Lambda (or the sweep's `tickRules`). */
  | { type: 'RuleFindings'; findings: RuleFinding[]; ruleState: unknown }
  /** The rule engine's state after a batch with no findings (timers advanced). */
  | { type: 'RuleStateAdvanced'; ruleState: unknown }
  /** An agent status line, attributed to a pod. */
  | { type: 'AgentRecord'; pod: string; record: AgentRecord; at: number }
  /** An agent's `/status` answer polled by the sweep; `null` = unreachable. */
  | { type: 'AgentPolled'; pod: string; status: StatusBody | null; at: number }
  /** The job's pods as listed, plus the nodes they are on. Pods absent from the list are gone. */
  | { type: 'PodsObserved'; pods: ObservedPod[]; nodes: ObservedNode[]; at: number }
  /** A node-health signal (label change or SageMaker HyperPod cluster event). */
  | {
      type: 'NodeHealth';
      node: string;
      health: string;
      instanceId?: string;
      at: number;
      source: 'label' | 'sagemaker';
    }
  /**
   * Worker lines of the job's current run reached the logs function (`at`: the latest line's time): the
   * log path is not blind (core/decide/log-path.ts).
   */
  | { type: 'WorkerLinesArrived'; at: number }
  /**
   * The trigger ran out of time before it made all its agent calls (functions/shell/reconcile.ts stops
   * starting them near the Lambda time limit): the job is due at once so the next trigger makes the rest.
   */
  | { type: 'AgentCallsCutShort'; at: number }
  /**
   * Every node of the cluster that could host the job's pods (the sweep lists them once): the elastic
   * capacity (core/decide/elastic.ts). Ignored by jobs without `elasticPolicy`.
   */
  | { type: 'NodesObserved'; nodes: ObservedNode[]; at: number }
  /** Training progress (from a progress rule's metric or an agent heartbeat). */
  | { type: 'Progress'; step: number; at: number }
  /**
   * A user command. `id` is unique per command (the API: one per request; the bus: the EventBridge event
   * id), so a redelivery of the same command is recognised as a replay whatever its time.
   */
  | { type: 'Command'; command: Command; at: number; id: string };

export type Command =
  | { kind: 'Cancel'; by: string }
  | { kind: 'Restart'; level: Extract<RestartLevel, 'process' | 'job'>; by: string }
  | { kind: 'UpdateRules'; rules: LogRule[]; by: string }
  | { kind: 'Suspend'; by: string }
  | { kind: 'Resume'; by: string };
