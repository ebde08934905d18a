/**
 * The agent's supervisor as a pure state machine, in torch elastic's vocabulary (`WorkerGroup`,
 * `WorkerState`) and with HyperPod's process-level-restart transition table (hyperpod-spec §5).
 *
 * `nextStep(group, observation)` folds one observation (an HTTP call, a process exit, a signal) into the
 * group and returns the new group, the state transitions it made (each becomes one `state` record), the
 * actions the shell must run (spawn, stop, scripts, exit) and, for HTTP calls, the answer. It does no I/O,
 * reads no clock (times come in on the observation) and never throws: bad requests become `reject` answers.
 *
 * Invariants:
 * - every state change is in `ALLOWED_TRANSITIONS` (asserted by the table tests);
 * - observations about another generation's processes never change the state (late exits are ignored);
 * - a `StopWorkers` action is always followed by exactly one `AllWorkersGone` observation from the shell;
 * - an `AwaitReentry` action is always followed by exactly one `WorkersReentered` or `InProcessTimedOut`
 *   observation for its generation (the shell stops watching once either is sent).
 *
 * In-process restart (`--inprocess-restart`, issue 19): a worker crash faults the group but keeps the
 * survivors alive; `POST /inprocess-restart` respawns only the dead local ranks at the new generation and
 * publishes the rendezvous to the live ones; once every local rank acknowledged, RUNNING at the new
 * generation (reason `InProcessRestart`), else FAULTED `InProcessRestartTimeout` after `--inprocess-timeout`.
 *
 * ```
 *  RUNNING g ──crash──► FAULTED g ──/inprocess-restart g+1──► (pending g+1) ──acks──► RUNNING g+1
 *  (peer agent) RUNNING g ──/inprocess-restart g+1──► (pending g+1) ──acks──► RUNNING g+1
 *                                                        └──deadline──► FAULTED g+1 InProcessRestartTimeout
 * ```
 */
import {
  type AgentState,
  INPROCESS_REASONS,
  type ParsedStartBody,
  RESTART_MODES,
} from '../core/agent-protocol.ts';

/** torch elastic `WorkerState`, per worker process. */
export type WorkerState = 'INIT' | 'HEALTHY' | 'SUCCEEDED' | 'FAILED' | 'STOPPED';

/** Where the rendezvous info of the current generation came from: `/start` or `/update`. */
export interface Rendezvous {
  /** Node (group) rank. */
  rank: number;
  nnodes: number;
  masterAddr: string;
  masterPort: number;
  rankIps?: { rank: number; ip: string }[];
}

/** One worker process slot (one local rank). */
export interface Worker {
  localRank: number;
  state: WorkerState;
  /**
   * The generation the slot's current process was started at; its exit observation carries it. Survivors of
   * an in-process restart keep theirs (older than the group's generation); a replaced slot gets the new one.
   */
  spawnedAt?: number;
  exitCode?: number | null;
  signal?: string | null;
}

/** What the agent was configured with on its command line; constant for the agent's life. */
export interface WorkerSpec {
  nprocPerNode: number;
  /** Signal used by /stop and on a fault to stop the rest of the group (HyperPod default SIGKILL). */
  shutdownSignal: 'SIGTERM' | 'SIGKILL';
  /** Seconds between the stop signal and SIGKILL. */
  shutdownTimeout: number;
  hasPreTrain: boolean;
  hasPostTrain: boolean;
  /** `--standalone`: no control plane; faults end the agent unless local restarts are left. */
  standalone: boolean;
  /** `--max-restarts` (local restarts in standalone mode, torchrun semantics). */
  maxRestarts: number;
  /** `--inprocess-restart`: keep survivors alive on a worker crash; accept in-process restarts. */
  inProcessRestart?: boolean;
  /** `--inprocess-timeout`: seconds the workers have to re-enter before the restart is given up. */
  inProcessTimeout?: number;
}

/** An in-process restart waiting for the local workers to re-enter. */
export interface PendingInProcess {
  generation: number;
  rendezvous: Rendezvous;
  /** Epoch ms after which the restart is given up (InProcessRestartTimeout). */
  deadline: number;
  /** Local ranks started afresh (their process had died); the others re-enter in place. */
  replaced: number[];
}

/**
 * What the supervisor is doing right now besides the state:
 * `pre-train`/`workers`/`post-train` = that process set is running; `stopping` = a StopWorkers is in flight;
 * `idle` = nothing runs.
 */
export type Phase = 'idle' | 'pre-train' | 'workers' | 'post-train' | 'stopping';

/** What to do once a StopWorkers completes. */
export type AfterStop = 'ready' | 'stay' | 'restart' | { exit: number } | { start: ParsedStartBody };

/** The supervisor's whole state. Plain JSON. */
export interface WorkerGroup {
  spec: WorkerSpec;
  state: AgentState;
  /** faultCount of the last accepted /start; -1 before any. */
  generation: number;
  phase: Phase;
  afterStop?: AfterStop;
  rendezvous?: Rendezvous;
  spare: boolean;
  progress?: Record<string, unknown>;
  reason?: string;
  message?: string;
  /** Upper-case state → ISO time of the last entry into it. */
  transitions: Partial<Record<AgentState, string>>;
  workers: Worker[];
  /** Local restarts used (standalone). */
  restartsUsed: number;
  /** The in-process restart in flight, if any. */
  pendingInProcess?: PendingInProcess;
  /** In-process restarts completed since the agent started. */
  inprocessRestarts?: number;
  /** How the last restart was done (`/status` `restartMode`); process level until an in-process one. */
  restartMode?: (typeof RESTART_MODES)[keyof typeof RESTART_MODES];
}

/** Everything the supervisor reacts to. `at` is epoch ms, supplied by the shell. */
export type Observation =
  | { type: 'StartRequested'; body: ParsedStartBody; at: number }
  | {
      type: 'UpdateRequested';
      body: Omit<ParsedStartBody, 'progress'>;
      progress?: Record<string, unknown>;
      at: number;
    }
  | { type: 'StopRequested'; graceful: boolean; timeout?: number; at: number }
  | { type: 'ShutdownRequested'; at: number }
  | { type: 'SignalReceived'; signal: NodeJS.Signals; signalNumber: number; at: number }
  | {
      type: 'ScriptExited';
      script: 'pre-train' | 'post-train';
      generation: number;
      exitCode: number | null;
      signal: string | null;
      at: number;
    }
  | {
      type: 'WorkerExited';
      generation: number;
      localRank: number;
      exitCode: number | null;
      signal: string | null;
      /** Parsed TORCHELASTIC_ERROR_FILE contents, when the worker wrote one. */
      error?: unknown;
      at: number;
    }
  | { type: 'AllWorkersGone'; generation: number; at: number }
  | { type: 'InProcessRestartRequested'; body: ParsedStartBody; at: number }
  /** Every local rank acknowledged generation `generation` (re-initialised its process group). */
  | { type: 'WorkersReentered'; generation: number; at: number }
  /** The deadline of the in-process restart to `generation` passed without every acknowledgement. */
  | { type: 'InProcessTimedOut'; generation: number; at: number };

/** What the shell must do, in order. */
export type AgentAction =
  | { type: 'WriteRankIps'; rankIps: { rank: number; ip: string }[] }
  | { type: 'RunScript'; script: 'pre-train' | 'post-train'; generation: number }
  /** Start worker processes: all local ranks, or only `localRanks` (the dead ones of an in-process restart). */
  | { type: 'SpawnWorkers'; generation: number; rendezvous: Rendezvous; localRanks?: number[] }
  /** Publish the new rendezvous to the live workers (the in-process file, then the signal). */
  | { type: 'PublishRendezvous'; generation: number; rendezvous: Rendezvous }
  /** Watch the workers' acknowledgements of `generation` until `deadline` (epoch ms). */
  | { type: 'AwaitReentry'; generation: number; deadline: number }
  /** Stop every process this agent started (workers, scripts, their process groups), then report AllWorkersGone. */
  | { type: 'StopWorkers'; generation: number; signal: NodeJS.Signals; graceSeconds: number }
  | { type: 'Exit'; code: number };

/** One state change made by a step; the shell prints one `state` record per transition. */
export interface Transition {
  from: AgentState;
  to: AgentState;
  /** The generation the transition belongs to (a local restart bumps it after STOPPING → READY). */
  generation: number;
  reason?: string;
  message?: string;
}

/** The answer to an HTTP call: accept (answer with the status body) or reject with a reason. */
export type Answer = { ok: true } | { ok: false; code: 409; detail: string };

/** The result of `nextStep`: new group, transitions to report, actions to run, the HTTP answer. */
export interface Step {
  group: WorkerGroup;
  transitions: Transition[];
  actions: AgentAction[];
  answer?: Answer;
}

/**
 * HyperPod's process-level-restart transition table (hyperpod-spec §5), plus the in-process tier's:
 * RUNNING → RUNNING and FAULTED → RUNNING (the workers re-entered at a new generation), FAULTED → FAULTED
 * (an in-process restart to a new generation timed out).
 */
export const ALLOWED_TRANSITIONS: Readonly<Record<AgentState, readonly AgentState[]>> = {
  INIT: ['READY', 'SHUTDOWN'],
  READY: ['RUNNING', 'SHUTDOWN'],
  RUNNING: ['COMPLETED', 'FAULTED', 'STOPPING', 'SHUTDOWN', 'RUNNING'],
  FAULTED: ['STOPPING', 'SHUTDOWN', 'RUNNING', 'FAULTED'],
  STOPPING: ['READY', 'SHUTDOWN'],
  COMPLETED: ['SHUTDOWN', 'STOPPING'],
  SHUTDOWN: [],
};

/** True when the table allows `from → to`. */
export const canTransition = (from: AgentState, to: AgentState): boolean =>
  ALLOWED_TRANSITIONS[from].includes(to);

/** The agent's group before any /start: READY (the PLR agent starts there) with no workers. */
export function initialGroup(spec: WorkerSpec, at: number): WorkerGroup {
  return {
    spec,
    state: 'READY',
    generation: -1,
    phase: 'idle',
    spare: false,
    transitions: { READY: iso(at) },
    workers: [],
    restartsUsed: 0,
  };
}

/** The number the agent exits with after a signal: 0 when training had completed, else 128 + signal. */
export const exitCodeForSignal = (state: AgentState, signalNumber: number): number =>
  state === 'COMPLETED' ? 0 : 128 + signalNumber;

/** Folds one observation into the group. Pure; see the module comment for the invariants. */
export function nextStep(group: WorkerGroup, obs: Observation): Step {
  const s = new StepBuilder(group);
  switch (obs.type) {
    case 'StartRequested':
      return onStart(s, obs);
    case 'UpdateRequested': {
      if (group.state === 'SHUTDOWN') return s.reject('agent is shutting down');
      s.g.rendezvous = rendezvousOf(obs.body);
      if (obs.body.spare !== undefined) s.g.spare = obs.body.spare;
      if (obs.progress) s.g.progress = obs.progress;
      if (obs.body.rankIps?.length) s.act({ type: 'WriteRankIps', rankIps: obs.body.rankIps });
      return s.accept();
    }
    case 'StopRequested': {
      const { state } = group;
      if (state === 'READY' || state === 'STOPPING') return s.accept();
      if (state === 'SHUTDOWN' || state === 'INIT') return s.reject(`cannot stop an agent in ${state}`);
      s.to('STOPPING', 'Stopping', obs.graceful ? 'graceful stop requested' : 'stop requested', obs.at);
      s.stop(
        obs.graceful ? 'SIGTERM' : group.spec.shutdownSignal,
        obs.timeout ?? group.spec.shutdownTimeout,
        'ready',
      );
      return s.accept();
    }
    case 'ShutdownRequested': {
      if (group.state === 'SHUTDOWN') return s.accept();
      s.to('SHUTDOWN', 'Shutdown', 'shutdown requested', obs.at);
      s.stop(group.spec.shutdownSignal, group.spec.shutdownTimeout, { exit: 0 });
      return s.accept();
    }
    case 'SignalReceived': {
      const code = exitCodeForSignal(group.state, obs.signalNumber);
      if (group.state !== 'SHUTDOWN') s.to('SHUTDOWN', 'Signal', `received ${obs.signal}`, obs.at);
      // Forward the signal itself; SIGKILL follows after the grace period.
      s.stop(obs.signal, group.spec.shutdownTimeout, { exit: code });
      return s.done();
    }
    case 'ScriptExited':
      return onScriptExited(s, obs);
    case 'WorkerExited':
      return onWorkerExited(s, obs);
    case 'AllWorkersGone':
      return onAllGone(s, obs);
    case 'InProcessRestartRequested':
      return onInProcessRestart(s, obs);
    case 'WorkersReentered':
      return onReentered(s, obs);
    case 'InProcessTimedOut':
      return onInProcessTimedOut(s, obs);
  }
}

function onStart(s: StepBuilder, obs: Extract<Observation, { type: 'StartRequested' }>): Step {
  const g = s.g;
  const body = obs.body;
  if (
    body.faultCount === g.generation &&
    (g.state === 'RUNNING' || g.state === 'COMPLETED' || g.state === 'FAULTED')
  ) {
    return s.accept(); // duplicate delivery of the /start that began this generation
  }
  if (g.state !== 'READY') {
    return s.reject(
      `agent is ${g.state.toLowerCase()} generation ${g.generation}; POST /stop before starting generation ${body.faultCount}`,
    );
  }
  if (body.faultCount < g.generation) {
    return s.reject(`stale /start: faultCount ${body.faultCount} is older than generation ${g.generation}`);
  }
  startAt(s, body, obs.at);
  return s.accept();
}

/** READY → RUNNING at `body.faultCount` (or READY as a spare): the accepted part of a /start. */
function startAt(s: StepBuilder, body: ParsedStartBody, at: number): void {
  const g = s.g;
  if (g.generation >= 0) g.restartMode = RESTART_MODES.processLevel;
  g.generation = body.faultCount;
  g.rendezvous = rendezvousOf(body);
  g.spare = body.spare ?? false;
  if (body.progress) g.progress = body.progress;
  if (body.rankIps?.length) s.act({ type: 'WriteRankIps', rankIps: body.rankIps });
  if (g.spare) return; // spares wait in READY without workers
  begin(s, at, 'Running', `generation ${body.faultCount}`);
}

/**
 * `POST /inprocess-restart` (core/agent-protocol.ts `InProcessRestartBody`): in place when the agent runs
 * with `--inprocess-restart` and has a run (workers phase, RUNNING or FAULTED); otherwise a process-level
 * restart by itself (stop everything, then start at `faultCount`). Replays are answered without effect.
 */
function onInProcessRestart(
  s: StepBuilder,
  obs: Extract<Observation, { type: 'InProcessRestartRequested' }>,
): Step {
  const g = s.g;
  const body = obs.body;
  const to = body.faultCount;
  if (g.state === 'SHUTDOWN') return s.reject('agent is shutting down');
  const pending = g.pendingInProcess;
  if (pending) {
    if (pending.generation >= to) return s.accept(); // replay of the restart in flight
    return s.reject(
      `an in-process restart to generation ${pending.generation} is in progress; generation ${to} must wait for it`,
    );
  }
  if (g.state === 'READY') {
    if (to < g.generation)
      return s.reject(`stale /inprocess-restart: faultCount ${to} is older than generation ${g.generation}`);
    startAt(s, body, obs.at);
    g.restartMode = RESTART_MODES.processLevel;
    return s.accept();
  }
  if (g.generation >= to) return s.accept(); // already at (or past) that generation
  if (g.state === 'STOPPING')
    return s.reject(`agent is stopping generation ${g.generation}; retry once it is ready`);
  const inPlace =
    g.spec.inProcessRestart === true &&
    g.phase === 'workers' &&
    (g.state === 'RUNNING' || g.state === 'FAULTED');
  if (!inPlace) {
    g.restartMode = RESTART_MODES.processLevel;
    s.to('STOPPING', 'Restarting', `process-level restart to generation ${to}`, obs.at);
    if (g.phase === 'stopping') g.afterStop = { start: body };
    else s.stop(g.spec.shutdownSignal, g.spec.shutdownTimeout, { start: body });
    return s.accept();
  }
  const rendezvous = rendezvousOf(body);
  const replaced = g.workers
    .filter((w) => w.state !== 'HEALTHY' && w.state !== 'INIT')
    .map((w) => w.localRank);
  const deadline = obs.at + (g.spec.inProcessTimeout ?? DEFAULT_INPROCESS_TIMEOUT) * 1000;
  g.pendingInProcess = { generation: to, rendezvous, deadline, replaced };
  g.restartMode = RESTART_MODES.inProcess;
  if (body.rankIps?.length) s.act({ type: 'WriteRankIps', rankIps: body.rankIps });
  // Publish before spawning: the signal must reach only the survivors (a fresh process would die of it).
  s.act({ type: 'PublishRendezvous', generation: to, rendezvous });
  for (const lr of replaced) g.workers[lr] = { localRank: lr, state: 'HEALTHY', spawnedAt: to };
  if (replaced.length) s.act({ type: 'SpawnWorkers', generation: to, rendezvous, localRanks: [...replaced] });
  s.act({ type: 'AwaitReentry', generation: to, deadline });
  return s.accept();
}

/** Default `--inprocess-timeout` (seconds), as HyperPod's documentation suggests for the barrier wait. */
export const DEFAULT_INPROCESS_TIMEOUT = 60;

function onReentered(s: StepBuilder, obs: Extract<Observation, { type: 'WorkersReentered' }>): Step {
  const g = s.g;
  const pending = g.pendingInProcess;
  if (!pending || pending.generation !== obs.generation) return s.done();
  g.pendingInProcess = undefined;
  g.generation = pending.generation;
  g.rendezvous = pending.rendezvous;
  g.inprocessRestarts = (g.inprocessRestarts ?? 0) + 1;
  const kept = g.spec.nprocPerNode - pending.replaced.length;
  s.to(
    'RUNNING',
    INPROCESS_REASONS.restarted,
    `generation ${pending.generation}: ${kept} local worker(s) re-entered in place, ${pending.replaced.length} replaced`,
    obs.at,
  );
  return s.done();
}

function onInProcessTimedOut(s: StepBuilder, obs: Extract<Observation, { type: 'InProcessTimedOut' }>): Step {
  const pending = s.g.pendingInProcess;
  if (!pending || pending.generation !== obs.generation) return s.done();
  giveUpInProcess(
    s,
    `local workers did not re-enter generation ${pending.generation} within ${s.g.spec.inProcessTimeout ?? DEFAULT_INPROCESS_TIMEOUT} s`,
    obs.at,
  );
  return s.done();
}

/**
 * The in-process restart failed: FAULTED at the NEW generation (so the control plane does not take it for
 * a late fault of the old one) with `InProcessRestartTimeout`, every local worker stopped.
 */
function giveUpInProcess(s: StepBuilder, message: string, at: number): void {
  const g = s.g;
  const pending = g.pendingInProcess!;
  g.pendingInProcess = undefined;
  g.generation = pending.generation;
  g.rendezvous = pending.rendezvous;
  s.to('FAULTED', INPROCESS_REASONS.timeout, message, at);
  s.stop(g.spec.shutdownSignal, g.spec.shutdownTimeout, 'stay');
}

/** READY → RUNNING: run the pre-train script if any, else spawn the workers. */
function begin(s: StepBuilder, at: number, reason: string, message: string): void {
  const g = s.g;
  s.to('RUNNING', reason, message, at);
  g.workers = Array.from({ length: g.spec.nprocPerNode }, (_, localRank) => ({ localRank, state: 'INIT' }));
  if (g.spec.hasPreTrain) {
    g.phase = 'pre-train';
    s.act({ type: 'RunScript', script: 'pre-train', generation: g.generation });
  } else spawn(s);
}

function spawn(s: StepBuilder): void {
  const g = s.g;
  g.phase = 'workers';
  g.workers = g.workers.map((w) => ({ localRank: w.localRank, state: 'HEALTHY', spawnedAt: g.generation }));
  s.act({ type: 'SpawnWorkers', generation: g.generation, rendezvous: g.rendezvous! });
}

function onScriptExited(s: StepBuilder, obs: Extract<Observation, { type: 'ScriptExited' }>): Step {
  const g = s.g;
  if (obs.generation !== g.generation || g.state !== 'RUNNING' || g.phase !== obs.script) return s.done();
  const ok = obs.exitCode === 0;
  if (obs.script === 'pre-train') {
    if (ok) spawn(s);
    else {
      g.phase = 'idle';
      fault(s, 'PreTrainScriptFailed', `pre-train script ${describeExit(obs.exitCode, obs.signal)}`, obs.at);
    }
    return s.done();
  }
  g.phase = 'idle';
  if (ok) complete(s, obs.at);
  else
    fault(s, 'PostTrainScriptFailed', `post-train script ${describeExit(obs.exitCode, obs.signal)}`, obs.at);
  return s.done();
}

function onWorkerExited(s: StepBuilder, obs: Extract<Observation, { type: 'WorkerExited' }>): Step {
  const g = s.g;
  const w = g.workers[obs.localRank];
  if (!w || (w.spawnedAt ?? g.generation) !== obs.generation) return s.done();
  if (w.state !== 'HEALTHY' && w.state !== 'INIT') return s.done();
  if (g.pendingInProcess && g.phase === 'workers') {
    g.workers[obs.localRank] = { ...w, state: 'FAILED', exitCode: obs.exitCode, signal: obs.signal };
    giveUpInProcess(
      s,
      `local rank ${obs.localRank} ${describeExit(obs.exitCode, obs.signal)} during the in-process restart to generation ${g.pendingInProcess.generation}`,
      obs.at,
    );
    return s.done();
  }
  const succeeded = obs.exitCode === 0;
  const expected = g.state !== 'RUNNING' || g.phase !== 'workers';
  g.workers[obs.localRank] = {
    ...w,
    state: succeeded ? 'SUCCEEDED' : expected ? 'STOPPED' : 'FAILED',
    exitCode: obs.exitCode,
    signal: obs.signal,
  };
  if (expected) return s.done();
  if (!succeeded) {
    const error = errorText(obs.error);
    fault(
      s,
      'WorkerCrash',
      `local rank ${obs.localRank} (global rank ${globalRank(g, obs.localRank)}) ${describeExit(obs.exitCode, obs.signal)}` +
        (error ? `: ${error}` : ''),
      obs.at,
    );
    return s.done();
  }
  if (g.workers.every((x) => x.state === 'SUCCEEDED')) {
    if (g.spec.hasPostTrain) {
      g.phase = 'post-train';
      s.act({ type: 'RunScript', script: 'post-train', generation: g.generation });
    } else {
      g.phase = 'idle';
      complete(s, obs.at);
    }
  }
  return s.done();
}

function onAllGone(s: StepBuilder, obs: Extract<Observation, { type: 'AllWorkersGone' }>): Step {
  const g = s.g;
  // A second StopWorkers of the same stop (escalation) reports too; only the first one counts.
  if (g.phase !== 'stopping' || obs.generation !== g.generation) return s.done();
  g.phase = 'idle';
  g.workers = g.workers.map((w) =>
    w.state === 'HEALTHY' || w.state === 'INIT' ? { localRank: w.localRank, state: 'STOPPED' } : w,
  );
  const after = g.afterStop ?? 'stay';
  g.afterStop = undefined;
  if (after === 'stay') return s.done();
  if (typeof after === 'object' && 'exit' in after) {
    s.act({ type: 'Exit', code: after.exit });
    return s.done();
  }
  if (g.state === 'SHUTDOWN') return s.done();
  if (g.state !== 'STOPPING') s.to('STOPPING', 'Restarting', `local restart ${g.restartsUsed}`, obs.at);
  s.to('READY', 'Stopped', undefined, obs.at);
  g.workers = [];
  if (after === 'restart') {
    g.generation += 1;
    begin(s, obs.at, 'Running', `local restart ${g.restartsUsed} of ${g.spec.maxRestarts}`);
  } else if (typeof after === 'object') startAt(s, after.start, obs.at);
  return s.done();
}

/**
 * RUNNING → FAULTED: stop the rest of the group; in standalone mode restart locally or exit non-zero. In
 * in-process mode a worker crash keeps the survivors alive for `POST /inprocess-restart`.
 */
function fault(s: StepBuilder, reason: string, message: string, at: number): void {
  const g = s.g;
  s.to('FAULTED', reason, message, at);
  if (g.spec.inProcessRestart && !g.spec.standalone && reason === 'WorkerCrash') return;
  let after: AfterStop = 'stay';
  if (g.spec.standalone) {
    if (g.restartsUsed < g.spec.maxRestarts) {
      g.restartsUsed += 1;
      after = 'restart';
    } else after = { exit: 1 };
  }
  s.stop(g.spec.shutdownSignal, g.spec.shutdownTimeout, after);
}

function complete(s: StepBuilder, at: number): void {
  s.to('COMPLETED', 'Completed', 'all workers exited 0', at);
  if (s.g.spec.standalone) s.act({ type: 'Exit', code: 0 });
}

function rendezvousOf(body: Omit<ParsedStartBody, 'progress'>): Rendezvous {
  const r: Rendezvous = {
    rank: body.rank,
    nnodes: body.nnodes,
    masterAddr: body.master_addr,
    masterPort: body.master_port,
  };
  if (body.rankIps) r.rankIps = body.rankIps;
  return r;
}

/** Global rank of a local rank in the current rendezvous (group rank × nproc + local rank). */
export const globalRank = (g: WorkerGroup, localRank: number): number =>
  (g.rendezvous?.rank ?? 0) * g.spec.nprocPerNode + localRank;

/** "exited with code 3" / "was killed by SIGSEGV". */
export const describeExit = (exitCode: number | null, signal: string | null): string =>
  signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;

/** A one-line summary of a torch `@record` error file: `message` (string or `{message}`) else JSON. */
export function errorText(error: unknown): string | undefined {
  if (error === undefined || error === null) return undefined;
  if (typeof error === 'string') return error.trim();
  if (typeof error === 'object' && 'message' in error) {
    const m = (error as { message: unknown }).message;
    if (typeof m === 'string') return m.trim();
    if (m && typeof m === 'object' && 'message' in m && typeof m.message === 'string')
      return m.message.trim();
  }
  return JSON.stringify(error);
}

const iso = (at: number): string => new Date(at).toISOString();

class StepBuilder {
  readonly g: WorkerGroup;
  private readonly transitions: Transition[] = [];
  private readonly actions: AgentAction[] = [];
  constructor(group: WorkerGroup) {
    this.g = structuredClone(group);
  }
  to(to: AgentState, reason: string | undefined, message: string | undefined, at: number): void {
    const from = this.g.state;
    if (!canTransition(from, to)) throw new Error(`agent state machine bug: ${from} → ${to} is not allowed`);
    this.g.state = to;
    this.g.transitions[to] = iso(at);
    this.g.reason = reason;
    this.g.message = message;
    const t: Transition = { from, to, generation: this.g.generation };
    if (reason) t.reason = reason;
    if (message) t.message = message;
    this.transitions.push(t);
  }
  act(a: AgentAction): void {
    this.actions.push(a);
  }
  /** Stop everything running; `after` decides what AllWorkersGone leads to. */
  stop(signal: NodeJS.Signals, graceSeconds: number, after: AfterStop): void {
    // A stop ends any in-process restart in flight: its workers are going, and a later run must not
    // take its own workers' exits for that restart's (FAULTED InProcessRestartTimeout at the old target).
    this.g.pendingInProcess = undefined;
    this.g.phase = 'stopping';
    this.g.afterStop = after;
    this.act({ type: 'StopWorkers', generation: this.g.generation, signal, graceSeconds });
  }
  done(): Step {
    return { group: this.g, transitions: this.transitions, actions: this.actions };
  }
  accept(): Step {
    return { ...this.done(), answer: { ok: true } };
  }
  reject(detail: string): Step {
    return { group: this.g, transitions: [], actions: [], answer: { ok: false, code: 409, detail } };
  }
}
