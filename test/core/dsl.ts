/**
 * A small Given/When/Then DSL over `decide`: given a spec, a sequence of observations at times, then the
 * resulting phase, generation, counters and actions. `observe` runs the shell's bounded loop against the
 * `World` simulator (agent answers come back as observations), `decideOnly` calls decide once.
 */
import type { Action } from '../../core/actions.ts';
import type { AgentRecord } from '../../core/agent-protocol.ts';
import { decide, newJobRecord } from '../../core/decide.ts';
import type { JobRecord, PodSlot } from '../../core/job.ts';
import type { Observation } from '../../core/observations.ts';
import type {
  JobSpec,
  LogRule,
  RestartPolicy,
  RunPolicy,
  TrainKeeperOptions,
} from '../../core/spec/types.ts';
import { World } from './world.ts';

export interface SpecOptions {
  name?: string;
  replicas?: number;
  spares?: number;
  runPolicy?: Partial<RunPolicy>;
  restartPolicy?: Partial<RestartPolicy>;
  trainkeeper?: Partial<TrainKeeperOptions>;
}

/** A normalized JobSpec as `parseJobManifest` would produce it (defaults applied). */
export const makeSpec = (o: SpecOptions = {}): JobSpec => {
  const runPolicy: RunPolicy = {
    cleanPodPolicy: 'All',
    ttlSecondsAfterFinished: 0,
    suspend: false,
    logMonitoringConfiguration: [],
    ...o.runPolicy,
  };
  if (o.restartPolicy) {
    runPolicy.restartPolicy = { evalPeriodSeconds: 3600, scaleUpSnoozeTimeInSeconds: 0, ...o.restartPolicy };
  }
  return {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    name: o.name ?? 'llama',
    namespace: 'team-a',
    labels: {},
    annotations: {},
    nprocPerNode: 2,
    replicaSpecs: [
      {
        name: 'pods',
        replicas: o.replicas ?? 2,
        spares: o.spares ?? 0,
        template: { spec: { containers: [{ name: 'pytorch', command: ['hyperpodrun', 'train.py'] }] } },
      },
    ],
    runPolicy,
    trainkeeper: { presets: [], ...o.trainkeeper },
  };
};

export const rule = (name: string): LogRule => ({
  name,
  logPattern: '.*Loss:.*',
  metricEvaluationDataPoints: 1,
  faultOnMatch: false,
  scope: 'job',
  source: { kind: 'user' },
});

const iso = (t: number) => new Date(t).toISOString();

let commandSeq = 0;

/** One scenario: the record, the simulated cluster, and every action emitted so far. */
export class Scenario {
  job: JobRecord;
  world: World;
  now: number;
  /** Actions of the last step (all decide calls of the shell loop). */
  actions: Action[] = [];
  /** Every action since the job was submitted. */
  history: Action[] = [];
  lastChanged = false;

  constructor(spec: JobSpec, opts: { nodes?: number; at?: number } = {}) {
    this.now = opts.at ?? 1_000_000;
    this.world = new World(spec.namespace, opts.nodes ?? 8);
    const { job, actions } = newJobRecord(spec, { uid: 'uid-1', submittedBy: 'alice', now: this.now });
    this.job = job;
    this.actions = actions;
    this.history.push(...actions);
    this.world.apply(actions, this.now);
  }

  static given(spec: JobSpec, opts?: { nodes?: number; at?: number }): Scenario {
    return new Scenario(spec, opts);
  }

  at(t: number): this {
    this.now = t;
    return this;
  }

  after(ms: number): this {
    this.now += ms;
    return this;
  }

  /** decide once, without executing the actions. */
  decideOnly(...observations: Observation[]): ReturnType<typeof decide> {
    const result = decide(this.job, observations, this.now);
    this.job = result.job;
    this.actions = result.actions;
    this.history.push(...result.actions);
    this.lastChanged = result.changed;
    return result;
  }

  /** decide, then the shell loop: execute actions on the world and feed agent answers back (≤ 8 rounds). */
  observe(...observations: Observation[]): this {
    let input = observations;
    const step: Action[] = [];
    let changed = false;
    for (let round = 0; round < 8; round++) {
      const result = decide(this.job, input, this.now);
      this.job = result.job;
      changed ||= result.changed;
      step.push(...result.actions);
      this.history.push(...result.actions);
      input = this.world.apply(result.actions, this.now);
      if (input.length === 0) break;
    }
    this.actions = step;
    this.lastChanged = changed;
    return this;
  }

  /** The sweep: list pods and nodes. */
  sweep(): this {
    return this.observe(this.world.observedPods(this.now));
  }

  /** Submitted → pods up → agents started → Running. */
  bringUp(): this {
    return this.sweep();
  }

  slot(rank: number): PodSlot {
    const s = this.job.pods.find((p) => p.groupRank === rank);
    if (!s) throw new Error(`no slot holds rank ${rank}`);
    return s;
  }

  /** An agent state record from the pod holding `rank`, for the current generation unless given. */
  agentState(
    rank: number,
    state: AgentRecord['state'],
    extra: { reason?: string; message?: string; generation?: number } = {},
  ): Observation {
    const pod = this.slot(rank).name;
    return this.agentStateOf(pod, state, extra);
  }

  agentStateOf(
    pod: string,
    state: AgentRecord['state'],
    extra: { reason?: string; message?: string; generation?: number } = {},
  ): Observation {
    const record: AgentRecord = {
      trainkeeper: 'agent/v1',
      ts: iso(this.now),
      generation: extra.generation ?? this.job.generation,
      state,
      kind: 'state',
      ...(extra.reason ? { reason: extra.reason } : {}),
      ...(extra.message ? { message: extra.message } : {}),
    };
    const simPod = this.world.pods.get(pod);
    if (simPod) {
      simPod.agent = state;
      if (extra.reason) simPod.reason = extra.reason;
      if (extra.message) simPod.message = extra.message;
    }
    return { type: 'AgentRecord', pod, record, at: this.now };
  }

  /**
   * A worker crash as decide acts on it: the `/status` answer (FAULTED, WorkerCrash) of the agent of
   * `rank`'s pod. (A FAULTED *record* from the log path only makes decide ask for that answer.)
   */
  crash(rank: number, generation?: number): Observation {
    return this.agentAnswer(this.slot(rank).name, 'FAULTED', {
      reason: 'WorkerCrash',
      message: 'local rank 1 exited with code 1',
      ...(generation !== undefined ? { generation } : {}),
    });
  }

  /**
   * An agent's `/status` answer (`AgentPolled`), for the current generation unless given; the simulated
   * agent takes that state too, so later polls agree. `enteredAt`: when the agent says it entered `state`
   * (its `transitions`).
   */
  agentAnswer(
    pod: string,
    state: AgentRecord['state'],
    extra: { reason?: string; message?: string; generation?: number; enteredAt?: number } = {},
  ): Observation {
    const generation = extra.generation ?? this.job.generation;
    const simPod = this.world.pods.get(pod);
    if (simPod) {
      simPod.agent = state;
      simPod.generation = generation;
      if (extra.reason) simPod.reason = extra.reason;
      if (extra.message) simPod.message = extra.message;
    }
    return {
      type: 'AgentPolled',
      pod,
      status: {
        status: state.toLowerCase(),
        faultCount: generation,
        ...(extra.reason ? { reason: extra.reason } : {}),
        ...(extra.message ? { message: extra.message } : {}),
        ...(extra.enteredAt !== undefined
          ? { transitions: { [state]: new Date(extra.enteredAt).toISOString() } }
          : {}),
      },
      at: this.now,
    };
  }

  /** Agents of every rank report COMPLETED. */
  allCompleted(): Observation[] {
    return this.job.pods
      .filter((p) => p.groupRank !== null)
      .map((p) => this.agentStateOf(p.name, 'COMPLETED'));
  }

  nodeHealth(node: string, health: string): Observation {
    const n = this.world.nodes.get(node);
    if (n) n.health = health;
    return {
      type: 'NodeHealth',
      node,
      health,
      at: this.now,
      source: 'label',
      ...(n ? { instanceId: n.instanceId } : {}),
    };
  }

  /** A command observation with a fresh id (pass `at` to date it elsewhere than now). */
  command(command: Extract<Observation, { type: 'Command' }>['command'], at = this.now): Observation {
    return { type: 'Command', command, at, id: `cmd-${++commandSeq}` };
  }

  actionsOf<T extends Action['type']>(
    type: T,
    from: Action[] = this.actions,
  ): Extract<Action, { type: T }>[] {
    return from.filter((a): a is Extract<Action, { type: T }> => a.type === type);
  }

  events(from: Action[] = this.actions): string[] {
    return this.actionsOf('RecordEvent', from).map((a) => a.event.lifecycle ?? a.event.reason);
  }

  counters(from: Action[] = this.history): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.actionsOf('IncrementCounter', from)) out[a.name] = (out[a.name] ?? 0) + a.by;
    return out;
  }

  /** Pod names that exist in the simulated cluster. */
  livePods(): string[] {
    return [...this.world.pods.keys()].sort();
  }
}

export const given = (spec: JobSpec, opts?: { nodes?: number; at?: number }) => Scenario.given(spec, opts);
