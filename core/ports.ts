/**
 * The ports: the only ways the shell (functions/) reaches the outside. `core/` defines them; `adapters/`
 * implement them against AWS, Kubernetes and Prometheus; `local/` only points the same adapters at local
 * stand-ins. Each port has one contract suite run against every implementation (test/contract/).
 */
import type { PodPlan } from './actions.ts';
import type { StartBody, StatusBody, StopBody } from './agent-protocol.ts';
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

/** Durable state: DynamoDB (adapters/dynamo). */
export interface JobStore {
  /** Conditional create; AlreadyExistsError if the job exists. */
  createJob(job: JobRecord): Promise<void>;
  getJob(ref: JobRef): Promise<JobRecord | undefined>;
  /**
   * Writes `job` if the stored version is still `job.version - 1`; ConcurrencyError otherwise.
   * (decide bumps the version; the store checks the previous one.)
   */
  putJob(job: JobRecord): Promise<void>;
  deleteJob(ref: JobRef): Promise<void>;
  listJobs(query: {
    namespace?: string;
    phase?: JobPhase;
    limit?: number;
    cursor?: string;
  }): Promise<{ jobs: JobRecord[]; cursor?: string }>;
  /** Non-terminal jobs whose `nextCheckAt` ≤ now, via an index (no scans). */
  listDueJobs(now: number, limit?: number): Promise<JobRef[]>;
  /** Non-terminal jobs that have a pod on one of these nodes (for node-health events). */
  listActiveJobs(): Promise<JobRef[]>;
  appendEvents(ref: JobRef, events: JobEvent[]): Promise<void>;
  listEvents(ref: JobRef, query?: { after?: number; limit?: number }): Promise<JobEvent[]>;
  /** Atomic ADD on durable counters (metrics never go backwards across Lambda instances). */
  incrementCounters(increments: CounterIncrement[]): Promise<void>;
  readCounters(): Promise<CounterTotal[]>;
  /**
   * Latest-value gauges (the HyperPod latency gauges), kept durably so every push re-sends them. A write
   * older (`at`, epoch ms) than the stored value is ignored. Optional: stores without gauges omit both.
   */
  setGauges?(gauges: CounterTotal[], at: number): Promise<void>;
  readGauges?(): Promise<CounterTotal[]>;
  /** Records a key once; returns false if it was already recorded (duplicate delivery). TTL in seconds. */
  claimOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /** Idempotency for submissions: the job a key created, if any. */
  getIdempotencyKey(key: string): Promise<{ ref: JobRef; bodyHash: string } | undefined>;
  putIdempotencyKey(key: string, value: { ref: JobRef; bodyHash: string }, ttlSeconds: number): Promise<void>;
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
  /** Agent calls through `pods/proxy`, with bounded concurrency and per-call timeouts. */
  startAgents(namespace: string, starts: { pod: string; body: StartBody }[]): Promise<AgentCallResult[]>;
  stopAgents(namespace: string, pods: string[], body?: StopBody): Promise<AgentCallResult[]>;
  shutdownAgents(namespace: string, pods: string[]): Promise<AgentCallResult[]>;
  agentStatus(namespace: string, pods: string[]): Promise<AgentCallResult[]>;
  /** A Kubernetes Event on the job's pods/namespace so `kubectl describe` shows it. */
  recordKubeEvent(ref: JobRef, event: JobEvent): Promise<void>;
}

export type AgentCallResult =
  | { pod: string; ok: true; status: StatusBody }
  | { pod: string; ok: false; error: string; unreachable: boolean };

/** Lifecycle events to the stage's EventBridge bus. */
export interface EventPublisher {
  publish(ref: JobRef, events: JobEvent[]): Promise<void>;
}

/** Metric totals and latencies to Amazon Managed Prometheus (remote write) and CloudWatch (EMF). */
export interface MetricsSink {
  /** Pushes the given counter totals and gauges. Never throws: a failure is retried on the next push. */
  push(samples: { counters: CounterTotal[]; gauges: CounterTotal[]; at: number }): Promise<void>;
}

export interface Clock {
  now(): number;
}

export interface IdGenerator {
  uid(): string;
}
