/**
 * The durable job record: everything the control plane knows about one job, stored as one DynamoDB item
 * and written once per trigger with a `version` check. Plain JSON only (numbers are epoch ms).
 *
 * Owned by core/decide: only `decide` produces new records; handlers load, pass and persist them.
 */
import type { AgentState } from './agent-protocol.ts';
import type { JobSpec } from './spec/types.ts';

/**
 * Every phase a job can be in, in lifecycle order; the one list the API, the CLI and the store validate
 * against. `Pending`: accepted, pods being created or agents not yet started.
 */
export const JOB_PHASES = [
  'Pending',
  'Running',
  'Restarting',
  'Suspended',
  'Succeeded',
  'Failed',
  'Cancelled',
] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

/** Phases a job never leaves (decide folds nothing into them; only a TTL delete follows). */
export const TERMINAL_PHASES: readonly JobPhase[] = ['Succeeded', 'Failed', 'Cancelled'];
export const isTerminal = (phase: JobPhase): boolean => TERMINAL_PHASES.includes(phase);

/** Kubernetes-style condition. `lastTransitionTime` is epoch ms (rendered RFC 3339 at the API). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: number;
}

/**
 * Restart levels, cheapest first: in-process (workers re-enter in place, HyperPod's `in_process_restart`;
 * opt-in, core/decide/ladder.ts), process-level (PLR), pod replacement, job-level (JLR). The one list the
 * store and the event schema validate against.
 */
export const RESTART_LEVELS = ['inprocess', 'process', 'pod', 'job'] as const;
export type RestartLevel = (typeof RESTART_LEVELS)[number];

/**
 * One pod position of the job. Slots `index < replicas` of a replica spec hold group ranks; slots
 * `replicas ≤ index < replicas + spares` are spares (`groupRank` null until promoted).
 */
export interface PodSlot {
  replica: string;
  index: number;
  /** Current pod name, derived from (job, replica, index, podGeneration). */
  name: string;
  /** The job generation at which this pod was created. */
  podGeneration: number;
  /** Node rank given to the agent as `rank` in /start; null for an idle spare. */
  groupRank: number | null;
  spare: boolean;
  /** Kubernetes pod phase as last observed, or `Deleting` once we asked for deletion. */
  podPhase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' | 'Deleting';
  nodeName?: string;
  ip?: string;
  /** The agent's last reported state and the generation (faultCount) it was for. */
  agent?: { state: AgentState; generation: number; at: number; reason?: string };
  lastSeenAt?: number;
  /** When the cluster first listed this pod (PodsObserved); absent = never seen, so CreatePods is re-sent. */
  podObservedAt?: number;
  /** Nodes the pod of this slot must avoid (kept so a re-sent CreatePods plans the same pod). */
  avoidNodes?: string[];
  /** Consecutive unreachable `/status` polls and the time of the last one (replays of it are no-ops). */
  unreachable?: { count: number; lastAt: number };
  /**
   * Elastic scale-up: the slot's pod was created to join the job at the next scaling restart; it holds no
   * rank until then (core/decide/elastic.ts) and is treated as a spare meanwhile.
   */
  joining?: true;
}

/** One elastic scaling (core/decide/elastic.ts): from one world size to another, and why. */
export interface ElasticScaling {
  direction: 'up' | 'down';
  from: number;
  to: number;
  /** `CapacityAvailable` for a scale-up; the fault's reason (e.g. `NodeFault`) for a scale-down. */
  reason: string;
  startedAt: number;
  /**
   * `CreatingPods`: joining pods are being created; `Draining`: the elastic event went out and the ranks
   * checkpoint and exit; `Restarting`: every rank restarts at the new size.
   */
  stage: 'CreatingPods' | 'Draining' | 'Restarting';
  /** When the elastic event went out (the graceful shutdown timeout counts from here). */
  drainSince?: number;
  /** The generation the scaling belongs to; a ladder restart past it aborts the scaling. */
  generation: number;
}

/** The elastic view of a job with `spec.elasticPolicy` (absent otherwise). */
export interface ElasticStatus {
  /** World sizes (rank pods) the job may take, ascending. */
  allowedSizes: number[];
  /** Rank pods in the current layout. */
  currentReplicas: number;
  /** The size the control plane is moving to (equal to current when steady). */
  desiredReplicas: number;
  /** Schedulable healthy nodes last observed (absent: unknown), and when. */
  capacity?: number;
  capacityAt?: number;
  /** Since when a larger allowed size fits (the scale-up clock; restarts whenever it stops fitting). */
  growFitsSince?: number;
  /** Since when the current size has not fitted while recovering from a fault (the scale-down clock). */
  shrinkWaitSince?: number;
  /** The scaling in flight. */
  scaling?: ElasticScaling;
  /** Scalings started over the job's life. */
  scalingCount: number;
  /** The last scalings, oldest first (the timeline keeps every one). */
  events: (ElasticScaling & { endedAt: number; outcome: 'Completed' | 'Aborted' })[];
  /**
   * The last pod generation each removed slot (`replica/index`) used: a slot added there later takes a
   * higher one, so a pod name is never reused while its old pod may still be terminating.
   */
  retiredPods?: Record<string, number>;
  /** Since when the job runs below its largest allowed size, and the time spent below it before. */
  belowMaxSince?: number;
  belowMaxMs?: number;
}

export interface RestartStatus {
  /** Start of the current evaluation window (epoch ms). */
  currentEvalPeriod: number;
  /** Process-level restarts counted in the window since the last full restart. */
  restartCount: number;
  /** Full job restarts (counted over the job's life; `maxFullJobRestarts` caps it). */
  fullJobRestartCount: number;
}

export interface FaultyPodInstanceList {
  restartType: 'PLR' | 'JLR';
  faultyInstanceIdList: string[];
  faultyPodList: string[];
  faultyRankList: number[];
}

/** One fault and its recovery: the timeline entry behind "remediated in N milliseconds". */
export interface Remediation {
  generation: number;
  reason: string;
  level: RestartLevel;
  /** When the fault happened (best knowledge: the line's or exit's time). */
  faultAt: number;
  /** When the control plane saw it. */
  detectedAt: number;
  /** When every agent of the new generation reported RUNNING. */
  recoveredAt?: number;
  pods: string[];
  ranks: number[];
  nodes: string[];
  /**
   * The full lengths of `pods`, `ranks` and `nodes` when the record was compacted (core/decide/compact.ts)
   * and the lists keep only their first entries; absent when the lists are complete.
   */
  counts?: { pods: number; ranks: number; nodes: number };
  message?: string;
}

export interface JobRecord {
  namespace: string;
  name: string;
  uid: string;
  spec: JobSpec;
  /** The IAM principal (or `local`) that submitted it. */
  submittedBy: string;
  phase: JobPhase;
  conditions: Condition[];
  /** Restart epoch; +1 on every restart of any level. Agents get it as `faultCount`. */
  generation: number;
  pods: PodSlot[];
  restartStatus: RestartStatus;
  /** Total restarts of any level. */
  restartCount: number;
  /** Process-level restarts over the job's life (compared with `jobMaxRetryCount`). */
  processRestartCount: number;
  latestFaultyPodInstanceList?: FaultyPodInstanceList;
  masterAddr?: string;
  masterPort?: number;
  /** Faults attributed to each node (repeat offenders are avoided at the next restart). */
  nodeFaults: Record<string, number>;
  /** Elastic training state; present only for jobs with `spec.elasticPolicy`. */
  elastic?: ElasticStatus;
  /** Highest training progress (step) seen, and restarts since it last advanced. */
  progress: { step?: number; at?: number; restartsWithoutProgress: number };
  remediations: Remediation[];
  /**
   * Rule engine state (rules/engine.ts), stored with the job so a batch is one write. Opaque to decide:
   * when its generation differs from `generation`, handlers start a fresh one at `runningSince`.
   */
  ruleState: unknown;
  /** When every agent of the current generation reported RUNNING (rule timers start here). */
  runningSince?: number;
  /**
   * When the first worker line of the current run (at or after `runningSince`) reached the logs function;
   * older means none yet (the blind-log guard, core/decide/log-path.ts).
   */
  workerLinesAt?: number;
  /** When backoff lets the pending restart proceed. */
  backoffUntil?: number;
  /**
   * When a trigger last ran out of time before its agent calls were all made (`AgentCallsCutShort`): the
   * job is due at once (`nextCheckAt`), and the first decide after this instant clears it (that trigger
   * acts on the actions decide derives again for the agents left over).
   */
  cutShortAt?: number;
  createdAt: number;
  startTime?: number;
  completionTime?: number;
  updatedAt: number;
  /** When the sweep must look at this job again; absent when nothing is time-based. */
  nextCheckAt?: number;
  /** Optimistic-concurrency version; +1 per write. */
  version: number;
  /** Times of the counted process-level restarts since the last full restart (the sliding window's input). */
  restartTimes?: number[];
  /** Automatic restarts in a row without a long enough Running spell (drives `restartBackoff`). */
  restartStreak?: number;
  /** The generation whose agents were last sent `/start` (faults of a generation count only once started). */
  startedGeneration?: number;
  /** When the current phase began (fault deadline, startup deadline after a resume). */
  phaseSince?: number;
  /** When the job was last resumed (the startup deadline counts from here instead of createdAt). */
  resumedAt?: number;
  /**
   * Ids of the most recently applied commands, oldest first, at most `APPLIED_COMMANDS_KEPT`: a command
   * whose id is here is a replay and ignored. Ids, not a time high-water mark: two commands written one
   * after the other are both applied whatever their clocks say (a command re-decided after a lost write
   * would otherwise look older than the one that won the write, and be dropped).
   */
  appliedCommands?: string[];
}

/**
 * How many applied command ids a record keeps. A redelivery of a command older than the last this-many
 * commands of its job would be applied again; the bus redelivers within minutes, and 64 ids cost ~3 KB.
 */
export const APPLIED_COMMANDS_KEPT = 64;

/** Whether the command with this id was applied to the job (and is still among the ids it keeps). */
export const isCommandApplied = (job: Pick<JobRecord, 'appliedCommands'>, id: string): boolean =>
  job.appliedCommands?.includes(id) ?? false;

/**
 * Whether the current generation's agents were sent `/start`. Until then a fault of this generation is
 * not one: nothing of it runs yet (the ladder replaces pods inside the pending start instead).
 */
export const isStarted = (job: Pick<JobRecord, 'generation' | 'startedGeneration'>): boolean =>
  job.startedGeneration === job.generation;

/**
 * Structural equality of plain JSON values, independent of key order, with a key whose value is
 * `undefined` counted as absent (as JSON and DynamoDB drop it). What "changed" means for a record, and what
 * "the same spec" means for a retried submit: a spec read back from DynamoDB need not keep its key order.
 */
export const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameJson(ra[k], rb[k]));
};

export const jobKey = (job: { namespace: string; name: string }): string => `${job.namespace}/${job.name}`;

/** Timeline entry (the store keeps them with a TTL; the API serves them as the job's events). */
export interface JobEvent {
  at: number;
  type: 'Normal' | 'Warning';
  /** A `Reason` or `LifecycleEvent` value, or a log-rule reason. */
  reason: string;
  message: string;
  generation: number;
  /** Lifecycle events are also published to EventBridge with this detail. */
  lifecycle?: string;
  details?: Record<string, unknown>;
}
