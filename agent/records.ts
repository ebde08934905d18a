/**
 * Builders for what the agent says about itself: the `/status` body (hyperpod-spec §5 field names) and the
 * one-line JSON `AgentRecord`s on stdout (core/agent-protocol.ts). Pure: times and identity come in.
 *
 * Invariant: every record built here parses with `AgentRecord`, every status body with `StatusBody`.
 */
import {
  AGENT_ENV,
  AGENT_RECORD_MARKER,
  type AgentRecord,
  RESTART_MODES,
  type StatusBody,
} from '../core/agent-protocol.ts';
import type { WorkerGroup } from './state.ts';

/** The agent's version, reported as `agent_version`. */
export const AGENT_VERSION = 'trainkeeper-agent/0.1.0';

/** Who this agent is, from the env the control plane sets (AGENT_ENV). Absent names are left out. */
export interface Identity {
  job?: string;
  namespace?: string;
  pod?: string;
  node?: string;
  ip?: string;
}

/** Reads the identity from env (AGENT_ENV names). */
export function identityFromEnv(env: NodeJS.ProcessEnv): Identity {
  const id: Identity = {};
  const pairs: [keyof Identity, string][] = [
    ['job', AGENT_ENV.jobName],
    ['namespace', AGENT_ENV.namespace],
    ['pod', AGENT_ENV.podName],
    ['node', AGENT_ENV.nodeName],
    ['ip', AGENT_ENV.podIp],
  ];
  for (const [k, name] of pairs) {
    const v = env[name];
    if (v) id[k] = v;
  }
  return id;
}

/** The `/status` body: keys only when set, like HyperPod's. */
export function statusBody(g: WorkerGroup): StatusBody {
  const body: StatusBody = {
    status: g.state.toLowerCase(),
    transitions: { ...g.transitions } as Record<string, string>,
    restartMode: g.restartMode ?? RESTART_MODES.processLevel,
    agent_version: AGENT_VERSION,
    spare: g.spare,
  };
  if (g.reason) body.reason = g.reason;
  if (g.message) body.message = g.message;
  if (g.progress) body.progress = g.progress;
  if (g.rendezvous) body.assigned_rank = g.rendezvous.rank;
  if (g.generation >= 0) body.faultCount = g.generation;
  if (g.spec.inProcessRestart) body.inprocess_restarts = g.inprocessRestarts ?? 0;
  return body;
}

type Extra =
  | { kind: 'state'; previous?: WorkerGroup['state']; reason?: string; message?: string }
  | {
      kind: 'worker-exit';
      localRank: number;
      rank?: number;
      pid?: number;
      exitCode: number | null;
      signal: string | null;
      error?: unknown;
    }
  | { kind: 'heartbeat'; progress?: Record<string, unknown>; workers?: number };

/** One stdout record, without undefined keys. */
export function record(g: WorkerGroup, id: Identity, at: number, extra: Extra): AgentRecord {
  const r = {
    trainkeeper: AGENT_RECORD_MARKER,
    ts: new Date(at).toISOString(),
    ...id,
    generation: g.generation,
    state: g.state,
    ...extra,
  };
  for (const k of Object.keys(r) as (keyof typeof r)[]) if (r[k] === undefined) delete r[k];
  return r as AgentRecord;
}
