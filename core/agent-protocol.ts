/**
 * The contract between the control plane and `trainkeeper-agent`, in both directions.
 *
 * Control plane → agent: the HyperPod elastic agent's HTTP API (hyperpod-spec §5), same paths, body field
 * names and lower-case state names, reached through the Kubernetes `pods/proxy` subresource.
 * Agent → control plane: one-line JSON status records on the agent's stdout (`AgentRecord`), which travel
 * the ordinary log path (CloudWatch Logs → `logs` Lambda). Worker output is forwarded torchrun-style as
 * `[default<localRank>]:<text>`.
 *
 * Both sides parse with these schemas; nothing here does I/O.
 */
import { z } from 'zod';
import type { LogRule } from './spec/types.ts';

export const AGENT_STATES = [
  'INIT',
  'READY',
  'RUNNING',
  'COMPLETED',
  'FAULTED',
  'STOPPING',
  'SHUTDOWN',
] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** Default agent HTTP port, as HyperPod's. */
export const AGENT_PORT = 8080;

/** Env var names the control plane sets on training containers and the agent reads. */
export const AGENT_ENV = {
  jobName: 'TRAINKEEPER_JOB_NAME',
  namespace: 'TRAINKEEPER_NAMESPACE',
  podName: 'TRAINKEEPER_POD_NAME',
  podIp: 'TRAINKEEPER_POD_IP',
  nodeName: 'TRAINKEEPER_NODE_NAME',
  replica: 'TRAINKEEPER_REPLICA',
  index: 'TRAINKEEPER_REPLICA_INDEX',
  nnodes: 'NNODES',
  nprocPerNode: 'NPROC_PER_NODE',
  /** Overrides `--server-port` (the local kubelet gives each pod its own port on loopback). */
  agentPort: 'TRAINKEEPER_AGENT_PORT',
  /**
   * Overrides `--server-host` (default 0.0.0.0: in a real pod the pod IP is what `pods/proxy` reaches). The
   * local kubelet sets the pod's loopback IP: there every pod is a process on the user's machine, and an
   * agent on 0.0.0.0 would take `/start` from the network.
   */
  agentHost: 'TRAINKEEPER_AGENT_HOST',
} as const;

const rankIp = z.object({ rank: z.coerce.number().int().min(0), ip: z.string().min(1) });

/** `POST /start` body (hyperpod-spec §5). Unknown fields are ignored, as FastAPI/pydantic does. */
export const StartBody = z.object({
  rank: z.coerce.number().int().min(0),
  nnodes: z.coerce.number().int().min(1),
  faultCount: z.coerce.number().int().min(0),
  master_addr: z.string().min(1),
  master_port: z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(Number),
  log_monitoring_configuration: z.array(z.record(z.string(), z.unknown())).optional(),
  ipVersion: z.string().optional(),
  rankIps: z.array(rankIp).optional(),
  worker_data: z.unknown().optional(),
  spare: z.union([z.boolean(), z.number().int()]).transform(Boolean).optional(),
  progress: z.record(z.string(), z.unknown()).optional(),
});
export type StartBody = z.input<typeof StartBody>;
export type ParsedStartBody = z.output<typeof StartBody>;

/** `POST /update`: as /start minus `progress`. */
export const UpdateBody = StartBody.omit({ progress: true });
export type UpdateBody = z.input<typeof UpdateBody>;

/**
 * `POST /elastic-event` body (TrainKeeper extension: HyperPod's agent API documents no such call). The
 * control plane is about to change the world size to `nnodes` pods; the agent raises the elastic event for
 * its workers (the `hyperpod_elastic_agent.elastic_event_handler` shim, the `TRAINKEEPER_ELASTIC_EVENT_FILE`
 * file, the optional signal) if it runs generation `faultCount`, and answers with its status. Workers are
 * expected to checkpoint and exit; the control plane then restarts every rank at the new size.
 */
export const ElasticEventBody = z.object({
  nnodes: z.coerce.number().int().min(1),
  faultCount: z.coerce.number().int().min(0),
  reason: z.string().optional(),
});
export type ElasticEventBody = z.input<typeof ElasticEventBody>;

/**
 * `POST /inprocess-restart` body (TrainKeeper extension; HyperPod's in-process restart tier, restartMode
 * `in_process_restart`): the /start fields, with `faultCount` = the NEW generation and the new rendezvous
 * (`master_addr`, `master_port`, this agent's `rank`, `nnodes`). Sent by the control plane to every rank
 * agent of the job, like /start. The agent answers with its status body:
 * - already at generation ≥ `faultCount`: nothing happens (idempotent replay);
 * - started with `--inprocess-restart` and holding a run: it respawns only its dead workers at the new
 *   generation, publishes the rendezvous to its live workers (the file named by the workers' env
 *   `TRAINKEEPER_INPROCESS_FILE`, then SIGUSR1) and goes RUNNING at `faultCount` once every local worker
 *   acknowledged (status `restartMode: 'in_process_restart'`, a `state` record with reason
 *   `InProcessRestart`); workers that do not re-enter within `--inprocess-timeout` seconds are killed and
 *   the agent goes FAULTED with reason `InProcessRestartTimeout` (the control plane escalates);
 * - otherwise (flag off, no run): a process-level restart by itself (stop all workers, start them at
 *   `faultCount`), answered with `restartMode: 'process_level_restart'`.
 */
export const InProcessRestartBody = StartBody;
export type InProcessRestartBody = z.input<typeof InProcessRestartBody>;

/** Agent `reason`s of the in-process restart tier (state records and /status). */
export const INPROCESS_REASONS = {
  /** RUNNING at the new generation after every local worker re-entered in place. */
  restarted: 'InProcessRestart',
  /** Workers did not re-enter within `--inprocess-timeout`: killed, FAULTED; escalate to process level. */
  timeout: 'InProcessRestartTimeout',
} as const;

/** `restartMode` values of the /status body (HyperPod's names). */
export const RESTART_MODES = {
  processLevel: 'process_level_restart',
  inProcess: 'in_process_restart',
} as const;

/** `POST /stop` body. */
export const StopBody = z
  .object({
    restart_mode: z.string().optional(),
    is_graceful: z.boolean().optional(),
    timeout: z.number().nonnegative().optional(),
    /**
     * TrainKeeper extension: stop only a run of a generation (`faultCount`) below this one; an agent already
     * started at this generation or later answers with its status and keeps running. A StopAgents decided
     * on a stale view (before another reconcile started generation g) may be acted on after that start:
     * without the guard it would stop the fresh run (seen as WorkerCrash SIGTERM + READY-while-running).
     */
    below_generation: z.number().int().optional(),
  })
  .default({});
export type StopBody = z.input<typeof StopBody>;

/** `GET /status` (and the body every POST answers with). Keys only when set, like HyperPod's. */
export const StatusBody = z.object({
  status: z.enum(AGENT_STATES.map((s) => s.toLowerCase()) as [string, ...string[]]),
  transitions: z.record(z.string(), z.string()).optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  restartMode: z.string().optional(),
  worker_data: z.unknown().optional(),
  rank_labels: z.unknown().optional(),
  ipversion: z.string().optional(),
  progress: z.record(z.string(), z.unknown()).optional(),
  agent_version: z.string().optional(),
  assigned_rank: z.number().int().optional(),
  spare: z.boolean().optional(),
  priority: z.unknown().optional(),
  /** Extension: the faultCount of the last /start (the restart generation the agent runs). */
  faultCount: z.number().int().optional(),
  /**
   * Extension: in-process restarts this agent completed (workers re-entered in place) since it started;
   * present when the agent runs with `--inprocess-restart`.
   */
  inprocess_restarts: z.number().int().optional(),
  /**
   * Extension: the agent's warm standby worker (`--inprocess-standby`), when one runs: `starting` (still
   * starting up) or `ready` (waiting to take over a dead local rank).
   */
  inprocess_standby: z.enum(['starting', 'ready']).optional(),
});
export type StatusBody = z.infer<typeof StatusBody>;

/** Marker key that makes a stdout line an agent record: `{"trainkeeper":"agent/v1",...}`. */
export const AGENT_RECORD_MARKER = 'agent/v1';

const recordBase = {
  trainkeeper: z.literal(AGENT_RECORD_MARKER),
  /** ISO 8601 time the agent wrote the record. */
  ts: z.string(),
  job: z.string().optional(),
  namespace: z.string().optional(),
  pod: z.string().optional(),
  node: z.string().optional(),
  ip: z.string().optional(),
  /** The faultCount of the agent's current (or last) /start; -1 before any /start. */
  generation: z.number().int(),
  state: z.enum(AGENT_STATES),
};

/**
 * A status record on the agent's stdout. Kinds:
 * - `state`: the agent changed state (with reason/message, e.g. FAULTED + `WorkerCrash`).
 * - `worker-exit`: one worker process ended (exit code or signal, error-file contents).
 * - `heartbeat`: periodic liveness, with the latest training progress if any.
 */
export const AgentRecord = z.discriminatedUnion('kind', [
  z.object({
    ...recordBase,
    kind: z.literal('state'),
    previous: z.enum(AGENT_STATES).optional(),
    reason: z.string().optional(),
    message: z.string().optional(),
  }),
  z.object({
    ...recordBase,
    kind: z.literal('worker-exit'),
    localRank: z.number().int(),
    rank: z.number().int().optional(),
    pid: z.number().int().optional(),
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    /** Contents of TORCHELASTIC_ERROR_FILE when the worker wrote one (torch `@record`). */
    error: z.unknown().optional(),
  }),
  z.object({
    ...recordBase,
    kind: z.literal('heartbeat'),
    progress: z.record(z.string(), z.unknown()).optional(),
    workers: z.number().int().optional(),
  }),
]);
export type AgentRecord = z.infer<typeof AgentRecord>;

/** An output line that is an agent record, or that claims to be one and is not (`invalid` says why). */
export type AgentLine = { record: AgentRecord } | { invalid: string };

/**
 * The one recogniser of agent records in a container's output, used by the logs Lambda
 * (functions/shell/log-payload.ts `classifyLine`) and by `trainkeeper rules check` (rules/kubectl-log.ts), so
 * both agree on which lines are agent records and which are rule input.
 *
 * A line claims to be a record when, after leading whitespace, it starts with `{` and mentions both the
 * `"trainkeeper"` key and `AGENT_RECORD_MARKER`; it is one when it is JSON that `AgentRecord` accepts.
 * Returns `undefined` for every other line (training output). Never throws.
 */
export function recogniseAgentLine(text: string): AgentLine | undefined {
  const trimmed = text.trimStart();
  if (
    !trimmed.startsWith('{') ||
    !trimmed.includes(AGENT_RECORD_MARKER) ||
    !trimmed.includes('"trainkeeper"')
  ) {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    return { invalid: `agent record is not JSON: ${(err as Error).message}` };
  }
  const parsed = AgentRecord.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { invalid: `agent record ${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}` };
  }
  return { record: parsed.data };
}

/** The torchrun-style prefix of a forwarded worker line: `[default3]:` → local rank 3. */
export const WORKER_LINE_PREFIX = /^\[default(\d+)\]:/;

/** Converts a rule to the snake/camel mix HyperPod's `/start` carries (`log_monitoring_configuration`). */
export type WireLogRule = Omit<LogRule, 'source'>;

/**
 * The training step in an agent's `progress` (a heartbeat record's, or `/status`'s): `{step: n}`, or
 * HyperPod's `{<prefix>: {progressCount: n, progressData}}` where the largest count wins (a count may come
 * as a numeric string). Undefined when neither carries a finite number. The one parser of agent progress.
 */
export const progressStep = (progress: Record<string, unknown> | undefined): number | undefined => {
  if (!progress) return undefined;
  if (typeof progress.step === 'number' && Number.isFinite(progress.step)) return progress.step;
  let best: number | undefined;
  for (const value of Object.values(progress)) {
    if (typeof value !== 'object' || value === null) continue;
    const count = (value as { progressCount?: unknown }).progressCount;
    const n = typeof count === 'string' ? Number(count) : count;
    if (typeof n === 'number' && Number.isFinite(n) && (best === undefined || n > best)) best = n;
  }
  return best;
};
