/**
 * The ports: the only ways the shell (functions/) reaches the outside. `core/` defines them; `adapters/`
 * implement them against AWS, Kubernetes and Prometheus; `local/` only points the same adapters at local
 * stand-ins. Each port has one contract suite run against every real implementation: the store ports in
 * test/adapters/dynamo/job-store.contract.ts (DynamoDB Local and dynalite), `Cluster` in
 * test/adapters/kube/cluster.contract.test.ts (the local Kubernetes API).
 */
import type { Action, PodPlan } from './actions.ts';
import type {
  ElasticEventBody,
  InProcessRestartBody,
  StartBody,
  StatusBody,
  StopBody,
} from './agent-protocol.ts';
import type { JobEvent, JobPhase, JobRecord } from './job.ts';
import type { ObservedNode, ObservedPod } from './observations.ts';
import type { JobSpec } from './spec/types.ts';

export interface JobRef {
  namespace: string;
  name: string;
}

export interface CounterIncrement {
  name: string;
  labels: Record<string, string>;
  by: number;
}

export interface CounterTotal {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The job records: one item per job, written once per decision with a version check (optimistic
 * concurrency). Implemented by `DynamoJobStore` (adapters/dynamo).
 */
export interface JobStore {
  /** Conditional create; AlreadyExistsError if the job exists. */
  createJob(job: JobRecord): Promise<void>;
  getJob(ref: JobRef): Promise<JobRecord | undefined>;
  /**
   * Writes `job` if the stored version is still `job.version - 1`; ConcurrencyError otherwise.
   * (decide bumps the version; the store checks the previous one.)
   */
  putJob(job: JobRecord): Promise<void>;
  /** Deletes the job and its timeline; deleting a missing job is fine. */
  deleteJob(ref: JobRef): Promise<void>;
  /**
   * Name reuse: replaces a finished job's record with a new job's first record, if the stored version is
   * still `finishedVersion` (the caller read it terminal at that version; terminal records change only by
   * deletion or replacement), else ConcurrencyError. The old job's timeline is deleted first, so the new
   * job's timeline does not mix with it.
   */
  replaceFinishedJob(job: JobRecord, finishedVersion: number): Promise<void>;
  listJobs(query: {
    namespace?: string;
    phase?: JobPhase;
    limit?: number;
    cursor?: string;
  }): Promise<{ jobs: JobRecord[]; cursor?: string }>;
  /** Jobs whose `nextCheckAt` ≤ now (finished ones too: their TTL delete), via an index (no scans). */
  listDueJobs(now: number, limit?: number): Promise<JobRef[]>;
  /** Every non-terminal job (the sweep's and node-health events' candidates), via an index. */
  listActiveJobs(): Promise<JobRef[]>;
}

/** A job's timeline: the events `decide` recorded, kept (with a retention) for `describe` and the API. */
export interface Timeline {
  appendEvents(ref: JobRef, events: JobEvent[]): Promise<void>;
  /** Events in time order; `after` (epoch ms, exclusive) and `limit` page through them. */
  listEvents(ref: JobRef, query?: { after?: number; limit?: number }): Promise<JobEvent[]>;
}

/**
 * Durable metric series. Lambdas are stateless, so counters and gauges live in the store and every push
 * sends totals (a lost push loses nothing).
 */
export interface MetricStore {
  /** Atomic ADD on durable counters (metrics never go backwards across Lambda instances). */
  incrementCounters(increments: CounterIncrement[]): Promise<void>;
  readCounters(): Promise<CounterTotal[]>;
  /**
   * Latest-value gauges (the HyperPod latency gauges), kept durably so every push re-sends them. A write
   * older (`at`, epoch ms) than the stored value is ignored.
   */
  setGauges(gauges: CounterTotal[], at: number): Promise<void>;
  readGauges(): Promise<CounterTotal[]>;
}

/**
 * Keys recorded once, with a TTL, for duplicate deliveries (Powertools' idempotency persistence layer is
 * the model: a narrow port, conditional writes behind it).
 */
export interface IdempotencyStore {
  /** Records a key once; returns false if it was already recorded (duplicate delivery). TTL in seconds. */
  claimOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /** The value a key was recorded with (a submission: the job it created), if the key is live. */
  getIdempotencyKey(key: string): Promise<IdempotencyValue | undefined>;
  /**
   * Records a key; the same ref and body hash again is fine (and may set `uid`), another value is
   * AlreadyExistsError. TTL in seconds.
   */
  putIdempotencyKey(key: string, value: IdempotencyValue, ttlSeconds: number): Promise<void>;
  /**
   * Claims a key for a submission BEFORE its job is created (one conditional put): returns `value` when
   * this call claimed it, else the live value another call claimed it with. Of concurrent claims exactly
   * one wins, so only one submission per key creates a job (the job with the claimed `uid`).
   */
  claimIdempotencyKey(key: string, value: IdempotencyValue, ttlSeconds: number): Promise<IdempotencyValue>;
}

/** What an idempotency key stands for: a submission (its job, the body's hash, the job's uid once known). */
export interface IdempotencyValue {
  ref: JobRef;
  bodyHash: string;
  uid?: string;
}

/** The cluster: EKS through @kubernetes/client-node (adapters/kube), or the local API server. */
export interface Cluster {
  /** Headless Service giving rank-0 a stable DNS name. Idempotent. */
  ensureService(spec: JobSpec): Promise<void>;
  /** Creates pods for the plans; existing ones (409) are fine. */
  createPods(spec: JobSpec, plans: PodPlan[]): Promise<void>;
  /** Deletes pods; missing ones (404) are fine. `force` = grace 0 for pods stuck on dead nodes. */
  deletePods(
    namespace: string,
    names: string[],
    options?: { gracePeriodSeconds?: number; force?: boolean },
  ): Promise<void>;
  listJobPods(ref: JobRef): Promise<ObservedPod[]>;
  getNodes(names: string[]): Promise<ObservedNode[]>;
  /** Nodes whose health label is present (for the sweep's node-health observation). */
  listNodes(): Promise<ObservedNode[]>;
  /**
   * Agent calls through `pods/proxy`, with bounded concurrency (one limit shared by every fan-out of the
   * adapter) and per-call timeouts. With `options.shouldStart`, a fan-out can end early: see
   * `AgentCallOptions`.
   */
  startAgents(
    namespace: string,
    starts: { pod: string; body: StartBody }[],
    options?: AgentCallOptions,
  ): Promise<AgentCallResult[]>;
  stopAgents(
    namespace: string,
    pods: string[],
    body?: StopBody,
    options?: AgentCallOptions,
  ): Promise<AgentCallResult[]>;
  shutdownAgents(namespace: string, pods: string[]): Promise<AgentCallResult[]>;
  /**
   * `POST /inprocess-restart` to each agent with its own body (the in-process restart tier: the agent
   * replaces its dead workers and tells the live ones to re-enter at the body's generation).
   */
  restartInProcess(
    namespace: string,
    starts: { pod: string; body: InProcessRestartBody }[],
  ): Promise<AgentCallResult[]>;
  /** `POST /elastic-event` to each agent (elastic scale-up: checkpoint and exit). */
  signalElasticEvent(namespace: string, pods: string[], body: ElasticEventBody): Promise<AgentCallResult[]>;
  agentStatus(namespace: string, pods: string[], options?: AgentCallOptions): Promise<AgentCallResult[]>;
  /** A Kubernetes Event on the job's pods/namespace so `kubectl describe` shows it. */
  recordKubeEvent(ref: JobRef, event: JobEvent): Promise<void>;
}

/**
 * How a fan-out of agent calls may end early. `shouldStart` is asked before each call is started (once the
 * call has a concurrency slot); from its first `false` on, that call and every later one of the fan-out
 * are not made and have no result, so the caller gets fewer results than pods. Calls already in flight
 * finish. The reconciler uses it to stop starting calls when the invocation's time runs out (the agents
 * left over are re-derived by the next decide: StopAgents, StartAgents and PollAgents are level actions).
 */
export interface AgentCallOptions {
  shouldStart?: () => boolean;
}

export type AgentCallResult =
  | { pod: string; ok: true; status: StatusBody }
  | { pod: string; ok: false; error: string; unreachable: boolean };

/** Lifecycle events to the stage's EventBridge bus. */
export interface EventPublisher {
  publish(ref: JobRef, events: JobEvent[]): Promise<void>;
}

/** Durable totals at one instant, as a sink exports them. */
export interface MetricSamples {
  counters: CounterTotal[];
  gauges: CounterTotal[];
  /** Epoch ms. */
  at: number;
}

/**
 * Where metrics leave the control plane: Prometheus remote write (AMP, or a local Prometheus), the
 * Prometheus text endpoint of the local plane, CloudWatch EMF (alarms). `functions/shell/deps.ts` chooses them
 * from the configuration. Neither method throws: metrics never fail a trigger.
 */
export interface MetricsSink {
  /**
   * The actions of one decision that was just written (called once per written decision, so a replayed
   * decision is not counted twice). For per-event sinks (EMF); totals sinks ignore it.
   */
  recordDecision(actions: readonly Action[], at: number): Promise<void>;
  /** The durable totals and gauges. For push sinks (remote write); a failure is retried by the next push. */
  push(samples: MetricSamples): Promise<void>;
}

export interface Clock {
  now(): number;
}

/**
 * The time left to the current invocation: Lambda's `context.getRemainingTimeInMillis()` while a Lambda
 * invocation runs, `Infinity` where there is no limit (the local plane, tests that do not set one).
 */
export interface Deadline {
  remainingMs(): number;
}

export interface IdGenerator {
  uid(): string;
}
