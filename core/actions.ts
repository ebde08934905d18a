/**
 * What `decide` asks the shell to do, as plain data. Every action is idempotent when re-executed: pods are
 * named from (job, replica, index, generation), agent calls carry the generation, creates tolerate 409 and
 * deletes tolerate 404.
 *
 * The shell executes actions in list order, after the job record was written.
 */
import type { InProcessRestartBody, StartBody } from './agent-protocol.ts';
import type { JobEvent } from './job.ts';

/** One pod to create. The pod builder turns this + the job spec into a Kubernetes Pod. */
export interface PodPlan {
  name: string;
  replica: string;
  index: number;
  generation: number;
  spare: boolean;
  /** Nodes to keep away from (repeat offenders, unhealthy nodes). */
  avoidNodes: string[];
}

export type Action =
  | { type: 'EnsureService' }
  | { type: 'CreatePods'; pods: PodPlan[] }
  | { type: 'DeletePods'; pods: string[]; gracePeriodSeconds?: number; force?: boolean }
  /** `/stop` every named agent and wait until each is READY (or unreachable). */
  | { type: 'StopAgents'; pods: string[]; generation: number }
  /** `/start` each agent with its own body (rank, rendezvous, rules, faultCount = generation). */
  | { type: 'StartAgents'; starts: { pod: string; body: StartBody }[]; generation: number }
  /**
   * In-process restart (core/decide/ladder.ts): `POST /inprocess-restart` to each rank agent with its own
   * body (the /start fields at the new generation `generation`, a fresh rendezvous). The agents replace only
   * their dead workers and tell the live ones to re-enter; each answers with its status.
   */
  | { type: 'RestartInProcess'; starts: { pod: string; body: InProcessRestartBody }[]; generation: number }
  | { type: 'ShutdownAgents'; pods: string[] }
  /**
   * Elastic scale-up: tell the rank agents (running `generation`) that the world size changes to
   * `targetReplicas`, so their workers checkpoint and exit (core/decide/elastic.ts).
   */
  | {
      type: 'SignalElasticEvent';
      pods: string[];
      generation: number;
      targetReplicas: number;
      reason: string;
    }
  /** Ask these agents for `/status` (silent pods); answers come back as `AgentPolled` observations. */
  | { type: 'PollAgents'; pods: string[] }
  | { type: 'RecordEvent'; event: JobEvent }
  | { type: 'IncrementCounter'; name: string; labels: Record<string, string>; by: number }
  /** A latency observation in seconds (gauge + histogram). */
  | { type: 'ObserveLatency'; name: string; labels: Record<string, string>; seconds: number }
  /** Delete the job record (TTL after finish). */
  | { type: 'DeleteJob' };
