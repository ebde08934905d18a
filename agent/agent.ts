/**
 * The agent runtime: wires the pure supervisor (state.ts) to processes (workers.ts), the HTTP API
 * (server.ts), stdout records (records.ts), signals and the heartbeat timer.
 *
 * Every input becomes an `Observation`; `dispatch` folds it with `nextStep`, prints one `state` record per
 * transition and runs the returned actions. Asynchronous results (process exits, a finished stop) come
 * back as further observations, so the supervisor never awaits anything itself.
 *
 * ```
 *  POST /stop ──► StopRequested ──► STOPPING + StopWorkers ─┐ (signal, grace, SIGKILL, groups empty)
 *       ▲                                                    ▼
 *       └──── 200 READY status ◄── waiter ◄── READY ◄── AllWorkersGone
 * ```
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { availableParallelism, constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AGENT_ENV, type StatusBody } from '../core/agent-protocol.ts';
import { ELASTIC_EVENT_FILE_ENV, hasRealPackage, withPythonPath, writeShim } from './elastic-shim.ts';
import { workerEnv } from './env.ts';
import {
  ackFileName,
  INPROCESS_FILE_ENV,
  INPROCESS_SIGNAL,
  INPROCESS_STANDBY_ENV,
  type InProcessRendezvous,
  writeInProcessModule,
} from './inprocess-shim.ts';
import type { AgentOptions } from './options.ts';
import { type Identity, identityFromEnv, record, statusBody } from './records.ts';
import { type ApiResult, createAgentServer } from './server.ts';
import {
  type AgentAction,
  globalRank,
  initialGroup,
  nextStep,
  type Observation,
  type Step,
  type WorkerGroup,
} from './state.ts';
import { type ProcessExit, type ProcessPlan, ProcessSet } from './workers.ts';

/** What the runtime needs besides the parsed flags; injectable for tests and the bench. */
export interface AgentRuntimeOptions {
  options: AgentOptions;
  /** Resolved number of workers per node. */
  nproc: number;
  /** GPUs on the node (for `--bind-gpus`). */
  gpus?: number;
  env: NodeJS.ProcessEnv;
  stdout: (chunk: Buffer | string) => void;
  stderr: (text: string) => void;
  now?: () => number;
  /** Handle SIGTERM/SIGINT/SIGHUP on this process (true in `main`). */
  handleSignals?: boolean;
}

/** A running agent. `done` resolves with the exit code once the agent has stopped everything. */
export interface RunningAgent {
  port: number;
  done: Promise<number>;
  group(): WorkerGroup;
}

/** Counts GPUs with `nvidia-smi -L` (0 when it is absent or fails). */
export function countGpus(): number {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter((l) => l.startsWith('GPU ')).length;
  } catch {
    return 0;
  }
}

/** Number of CPUs available to this process. */
export const countCpus = (): number => availableParallelism();

/** Starts the agent: HTTP server listening, standalone mode already started. */
export async function startAgent(o: AgentRuntimeOptions): Promise<RunningAgent> {
  const rt = new Runtime(o);
  const port = await rt.listen();
  return { port, done: rt.done, group: () => rt.group };
}

class Runtime {
  group: WorkerGroup;
  readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private readonly opts: AgentOptions;
  private readonly now: () => number;
  private readonly id: Identity;
  private readonly procs: ProcessSet;
  private readonly server: Server;
  private readonly runId: string;
  private readonly workDir: string;
  private waiters: { until: (g: WorkerGroup) => boolean; resolve: () => void }[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private exiting = false;
  private readonly signalHandlers: [NodeJS.Signals, () => void][] = [];
  private queue: Observation[] = [];
  /** The workers' extra PYTHONPATH entry (python modules the agent provides); undefined = not written yet. */
  private shimDir: string | undefined;
  private dispatching = false;
  /** The warm standby worker not yet assigned a local rank (`--inprocess-standby`), if one runs. */
  private standby: { pid: number; file: string } | undefined;
  /** Standbys that took over a local rank: pid → the slot (their exits are that slot's). */
  private readonly assigned = new Map<number, { localRank: number; generation: number }>();
  private standbys = 0;
  /** Standbys that ended before being assigned (a script that fails before `run`): bounded respawns. */
  private standbyFailures = 0;

  constructor(private readonly o: AgentRuntimeOptions) {
    this.opts = o.options;
    this.now = o.now ?? Date.now;
    this.id = identityFromEnv(o.env);
    this.runId = this.opts.runId ?? o.env[AGENT_ENV.jobName] ?? 'none';
    this.workDir = join(tmpdir(), `trainkeeper-agent-${process.pid}-${this.now().toString(36)}`);
    this.procs = new ProcessSet((lines) => o.stdout(lines));
    this.group = initialGroup(
      {
        nprocPerNode: o.nproc,
        shutdownSignal: this.opts.shutdownSignal,
        shutdownTimeout: this.opts.shutdownTimeout,
        hasPreTrain: this.opts.preTrainScript !== undefined,
        hasPostTrain: this.opts.postTrainScript !== undefined,
        standalone: this.opts.standalone,
        maxRestarts: this.opts.maxRestarts,
        inProcessRestart: this.opts.inProcessRestart,
        inProcessTimeout: this.opts.inProcessTimeout,
      },
      this.now(),
    );
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
    this.server = createAgentServer({
      status: () => this.status(),
      start: (body) => this.call({ type: 'StartRequested', body, at: this.now() }),
      update: (body, progress) =>
        this.call({ type: 'UpdateRequested', body, ...(progress ? { progress } : {}), at: this.now() }),
      stop: (body) =>
        body.below_generation !== undefined &&
        this.group.generation >= body.below_generation &&
        this.group.state !== 'READY'
          ? Promise.resolve({ code: 200, body: this.status() })
          : this.call(
              {
                type: 'StopRequested',
                graceful: body.is_graceful ?? false,
                ...(body.timeout !== undefined ? { timeout: body.timeout } : {}),
                at: this.now(),
              },
              (g) => g.state === 'READY' || g.state === 'SHUTDOWN',
            ),
      shutdown: () => this.call({ type: 'ShutdownRequested', at: this.now() }, () => this.exiting),
      elasticEvent: (body) => Promise.resolve(this.elasticEvent(body)),
      inProcessRestart: (body) => this.call({ type: 'InProcessRestartRequested', body, at: this.now() }),
    });
  }

  async listen(): Promise<number> {
    const port = Number(this.o.env[AGENT_ENV.agentPort] ?? this.opts.serverPort);
    const host = this.o.env[AGENT_ENV.agentHost] || this.opts.serverHost;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.o.stderr(`trainkeeper-agent: listening on ${host}:${bound}, ${this.o.nproc} worker(s) per node\n`);
    this.emit({ kind: 'state', reason: 'Ready' });
    if (this.opts.heartbeatInterval > 0) {
      this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatInterval * 1000);
    }
    if (this.o.handleSignals) {
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as NodeJS.Signals[]) {
        const h = () =>
          this.dispatch({
            type: 'SignalReceived',
            signal: sig,
            signalNumber: constants.signals[sig],
            at: this.now(),
          });
        process.on(sig, h);
        this.signalHandlers.push([sig, h]);
      }
    }
    if (this.opts.standalone) {
      const masterPort = await freePort();
      this.dispatch({
        type: 'StartRequested',
        body: { rank: 0, nnodes: 1, faultCount: 0, master_addr: '127.0.0.1', master_port: masterPort },
        at: this.now(),
      });
    }
    return bound;
  }

  /** Dispatches an API call and answers once `until` holds (immediately when not given). */
  private async call(obs: Observation, until?: (g: WorkerGroup) => boolean): Promise<ApiResult> {
    const step = this.dispatch(obs);
    if (step.answer && !step.answer.ok) {
      return { code: step.answer.code, body: { detail: step.answer.detail, ...this.status() } };
    }
    if (until && !until(this.group)) {
      await new Promise<void>((resolve) => this.waiters.push({ until, resolve }));
    }
    return { code: 200, body: this.status() };
  }

  /** The status body, plus the warm standby's readiness when one runs (`--inprocess-standby`). */
  private status(): StatusBody {
    const body = statusBody(this.group);
    if (this.standby)
      body.inprocess_standby = existsSync(`${this.standby.file}.ready`) ? 'ready' : 'starting';
    return body;
  }

  /** Folds one observation and runs its actions. Re-entrant calls are queued. */
  dispatch(obs: Observation): Step {
    if (this.dispatching) {
      this.queue.push(obs);
      return { group: this.group, transitions: [], actions: [] };
    }
    this.dispatching = true;
    let first: Step | undefined;
    try {
      let next: Observation | undefined = obs;
      while (next) {
        const step = nextStep(this.group, next);
        first ??= step;
        this.group = step.group;
        for (const t of step.transitions) {
          this.emit(
            {
              kind: 'state',
              previous: t.from,
              ...(t.reason ? { reason: t.reason } : {}),
              ...(t.message ? { message: t.message } : {}),
            },
            t.to,
          );
        }
        for (const a of step.actions) this.run(a);
        next = this.queue.shift();
      }
    } finally {
      this.dispatching = false;
    }
    const g = this.group;
    // A standby has nothing to take over once the run is over.
    if (this.standby && (g.state === 'COMPLETED' || g.state === 'SHUTDOWN')) {
      this.procs.kill(this.standby.pid, 'SIGKILL');
      this.standby = undefined;
    }
    // One standby per running generation, started once the workers run (not while they re-enter).
    if (g.state === 'RUNNING' && g.phase === 'workers' && !g.pendingInProcess && g.rendezvous)
      this.spawnStandby(g.generation, g.rendezvous);
    this.wake();
    return first!;
  }

  private wake(): void {
    const ready = this.waiters.filter((w) => w.until(this.group));
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  private run(a: AgentAction): void {
    switch (a.type) {
      case 'WriteRankIps':
        this.writeRankIps(a.rankIps);
        return;
      case 'RunScript':
        this.runScript(a.script, a.generation);
        return;
      case 'SpawnWorkers':
        this.spawnWorkers(a.generation, a.rendezvous, a.localRanks);
        return;
      case 'PublishRendezvous':
        this.publishRendezvous(a.generation, a.rendezvous);
        return;
      case 'AwaitReentry':
        this.awaitReentry(a.generation, a.deadline);
        return;
      case 'StopWorkers':
        this.standby = undefined; // stopped with the rest; the next run starts its own
        this.procs.stopAll(a.signal, a.graceSeconds).then(
          () => this.dispatch({ type: 'AllWorkersGone', generation: a.generation, at: this.now() }),
          (err: unknown) => this.o.stderr(`trainkeeper-agent: stopping workers failed: ${String(err)}\n`),
        );
        return;
      case 'Exit':
        this.exit(a.code);
        return;
    }
  }

  /** The file whose appearance is the elastic event for the workers of `generation`. */
  private elasticEventFile(generation: number): string {
    return join(this.workDir, `attempt_${generation}`, 'elastic_event');
  }

  /**
   * The workers' extra PYTHONPATH entry, written once: the `trainkeeper_inprocess` module
   * (agent/inprocess-shim.ts) and, unless the workers' Python imports the real package, the
   * `hyperpod_elastic_agent` shim (agent/elastic-shim.ts).
   */
  private pythonShim(): string {
    if (this.shimDir === undefined) {
      const python = this.opts.python ?? 'python3';
      const dir = writeInProcessModule(join(this.workDir, 'python'));
      if (!hasRealPackage(python, this.o.env)) writeShim(dir);
      this.shimDir = dir;
    }
    return this.shimDir;
  }

  /** The file the agent publishes a new rendezvous in (`TRAINKEEPER_INPROCESS_FILE`); acks go next to it. */
  private inProcessFile(): string {
    return join(this.workDir, 'inprocess', 'rendezvous.json');
  }

  /**
   * Writes the new rendezvous atomically (temp file + rename), then signals the live workers (only the
   * survivors: the replacements are spawned after this action), so a worker not blocked in a collective
   * leaves its training step too.
   */
  /** What the workers of this node are told of a generation's rendezvous (the in-process file's body). */
  private rendezvousBody(generation: number, r: NonNullable<WorkerGroup['rendezvous']>): InProcessRendezvous {
    return {
      generation,
      master_addr: r.masterAddr,
      master_port: r.masterPort,
      nnodes: r.nnodes,
      group_rank: r.rank,
      nproc: this.o.nproc,
    };
  }

  private publishRendezvous(generation: number, r: NonNullable<WorkerGroup['rendezvous']>): void {
    const file = this.inProcessFile();
    const body = this.rendezvousBody(generation, r);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(body));
    renameSync(`${file}.tmp`, file);
    this.procs.signal(INPROCESS_SIGNAL, this.standby ? [this.standby.pid] : []);
    this.o.stderr(
      `trainkeeper-agent: in-process restart to generation ${generation} (master ${r.masterAddr}:${r.masterPort})\n`,
    );
  }

  /**
   * Polls the workers' acknowledgements of `generation` every 20 ms; reports WorkersReentered once every
   * local rank wrote its ack, InProcessTimedOut at `deadline`. Stops once the restart is no longer pending.
   */
  private awaitReentry(generation: number, deadline: number): void {
    const dir = dirname(this.inProcessFile());
    const acks = Array.from({ length: this.o.nproc }, (_, lr) => join(dir, ackFileName(generation, lr)));
    const tick = () => {
      if (this.exiting || this.group.pendingInProcess?.generation !== generation) return;
      if (acks.every((f) => existsSync(f)))
        this.dispatch({ type: 'WorkersReentered', generation, at: this.now() });
      else if (this.now() >= deadline)
        this.dispatch({ type: 'InProcessTimedOut', generation, at: this.now() });
      else setTimeout(tick, 20);
    };
    tick();
  }

  /**
   * `POST /elastic-event`: for the generation the workers run, creates the event file (the shim's
   * `elastic_event_detected()` turns True) and sends the optional signal; the workers checkpoint and exit.
   * For another generation, or with no workers running, nothing happens. Answers with the status.
   */
  private elasticEvent(body: { nnodes: number; faultCount: number; reason?: string | undefined }): ApiResult {
    const g = this.group;
    if (g.state === 'RUNNING' && g.generation === body.faultCount) {
      const file = this.elasticEventFile(g.generation);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(
        file,
        JSON.stringify({
          nnodes: body.nnodes,
          reason: body.reason ?? null,
          at: new Date(this.now()).toISOString(),
        }),
      );
      if (this.opts.elasticEventSignal) this.procs.signal(this.opts.elasticEventSignal);
      this.o.stderr(
        `trainkeeper-agent: elastic event for generation ${g.generation}: world size changes to ${body.nnodes} node(s)\n`,
      );
    }
    return { code: 200, body: this.status() };
  }

  private spawnWorkers(
    generation: number,
    rendezvous: NonNullable<WorkerGroup['rendezvous']>,
    localRanks?: number[],
  ): void {
    const nproc = this.o.nproc;
    const shim = this.pythonShim();
    const gpus = this.opts.bindGpus ? (this.o.gpus ?? 0) : 0;
    const ranks = localRanks ? [...localRanks] : Array.from({ length: nproc }, (_, i) => i);
    // An in-process replacement: a warm standby takes over the first dead local rank.
    if (localRanks && this.standby && ranks.length > 0)
      this.assignStandby(ranks.shift()!, generation, rendezvous);
    for (const localRank of ranks) {
      const attemptDir = join(this.workDir, `attempt_${generation}`, String(localRank));
      const env = workerEnv({
        base: this.o.env,
        localRank,
        nproc,
        rendezvous,
        generation,
        maxRestarts: this.opts.maxRestarts,
        runId: this.runId,
        errorFile: join(attemptDir, 'error.json'),
        ...(gpus > 0 ? { gpu: localRank % gpus } : {}),
      });
      env[ELASTIC_EVENT_FILE_ENV] = this.elasticEventFile(generation);
      if (this.opts.inProcessRestart) {
        env[INPROCESS_FILE_ENV] = this.inProcessFile();
        mkdirSync(dirname(this.inProcessFile()), { recursive: true });
      }
      env.PYTHONPATH = withPythonPath(env.PYTHONPATH, shim);
      const plan = this.plan(
        localRank,
        `[default${localRank}]:`,
        this.opts.script,
        this.opts.scriptArgs,
        env,
        generation,
      );
      plan.errorFile = join(attemptDir, 'error.json');
      const pid = this.procs.start(plan, (exit) => this.onWorkerExit(generation, exit));
      if (pid === undefined) continue;
    }
  }

  /**
   * Starts the warm standby (`--inprocess-standby`): the training script with the worker env of local rank 0
   * plus `TRAINKEEPER_INPROCESS_STANDBY`; `trainkeeper_inprocess.run` waits there for an assignment. Its
   * output is prefixed `[standby]:` until it takes over a rank.
   */
  private spawnStandby(generation: number, rendezvous: NonNullable<WorkerGroup['rendezvous']>): void {
    if (!this.opts.inProcessStandby || this.opts.standalone || this.standby || this.exiting) return;
    if (this.standbyFailures >= MAX_STANDBY_FAILURES) return;
    const dir = join(this.workDir, 'standby', String(++this.standbys));
    const env = workerEnv({
      base: this.o.env,
      localRank: 0,
      nproc: this.o.nproc,
      rendezvous,
      generation,
      maxRestarts: this.opts.maxRestarts,
      runId: this.runId,
      errorFile: join(dir, 'error.json'),
    });
    env[INPROCESS_FILE_ENV] = this.inProcessFile();
    env[INPROCESS_STANDBY_ENV] = join(dir, 'assignment.json');
    env.PYTHONPATH = withPythonPath(env.PYTHONPATH, this.pythonShim());
    const plan = this.plan(-3, '[standby]:', this.opts.script, this.opts.scriptArgs, env, generation);
    plan.errorFile = join(dir, 'error.json');
    let pid: number | undefined;
    pid = this.procs.start(plan, (exit) => {
      const slot = pid === undefined ? undefined : this.assigned.get(pid);
      if (slot) {
        this.assigned.delete(pid!);
        this.onWorkerExit(slot.generation, { ...exit, localRank: slot.localRank });
        return;
      }
      if (this.standby?.pid === pid) {
        this.standby = undefined;
        this.standbyFailures += 1;
        this.o.stderr(
          `trainkeeper-agent: the standby worker ended (${exit.signal ?? `exit ${exit.exitCode}`})\n`,
        );
      }
    });
    if (pid !== undefined) this.standby = { pid, file: env[INPROCESS_STANDBY_ENV] };
  }

  /** Gives the standby `localRank` at `generation`: its assignment file, then its output prefix. */
  private assignStandby(
    localRank: number,
    generation: number,
    r: NonNullable<WorkerGroup['rendezvous']>,
  ): void {
    const s = this.standby!;
    this.standby = undefined;
    this.assigned.set(s.pid, { localRank, generation });
    const body: InProcessRendezvous & { local_rank: number } = {
      ...this.rendezvousBody(generation, r),
      local_rank: localRank,
    };
    writeFileSync(`${s.file}.tmp`, JSON.stringify(body));
    renameSync(`${s.file}.tmp`, s.file);
    this.procs.retarget(s.pid, `[default${localRank}]:`);
    this.o.stderr(`trainkeeper-agent: standby pid ${s.pid} takes over local rank ${localRank}\n`);
  }

  private onWorkerExit(generation: number, exit: ProcessExit): void {
    const g = this.group;
    this.emit({
      kind: 'worker-exit',
      localRank: exit.localRank,
      ...(g.rendezvous ? { rank: globalRank(g, exit.localRank) } : {}),
      ...(exit.pid !== undefined ? { pid: exit.pid } : {}),
      exitCode: exit.exitCode,
      signal: exit.signal,
      ...(exit.error !== undefined ? { error: exit.error } : {}),
    });
    this.dispatch({
      type: 'WorkerExited',
      generation,
      localRank: exit.localRank,
      exitCode: exit.exitCode,
      signal: exit.signal,
      ...(exit.error !== undefined ? { error: exit.error } : {}),
      at: this.now(),
    });
  }

  private runScript(script: 'pre-train' | 'post-train', generation: number): void {
    const path = script === 'pre-train' ? this.opts.preTrainScript! : this.opts.postTrainScript!;
    const args = (script === 'pre-train' ? this.opts.preTrainArgs : this.opts.postTrainArgs) ?? '';
    const env: NodeJS.ProcessEnv = { ...this.o.env, JOB_RESTART_COUNT: String(generation) };
    const plan = this.plan(-1, `[${script}]:`, path, args.split(/\s+/).filter(Boolean), env, generation);
    this.procs.start(plan, (exit) =>
      this.dispatch({
        type: 'ScriptExited',
        script,
        generation,
        exitCode: exit.exitCode,
        signal: exit.signal,
        at: this.now(),
      }),
    );
  }

  /** A process plan: `.py` runs under `--python` (or python3), anything else as given. */
  private plan(
    localRank: number,
    prefix: string,
    script: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    generation: number,
  ): ProcessPlan {
    const isPy = script.endsWith('.py');
    const plan: ProcessPlan = {
      localRank,
      command: isPy ? (this.opts.python ?? 'python3') : script,
      args: isPy ? [script, ...args] : args,
      env,
      prefix,
      consoleStdout: true,
      consoleStderr: true,
    };
    const logDir = this.opts.logDir;
    if (logDir && localRank >= 0) {
      const dir = join(logDir, this.runId, `attempt_${generation}`, String(localRank));
      const fileBits = this.opts.tee | this.opts.redirects;
      if (fileBits & 1) plan.teeStdout = join(dir, 'stdout.log');
      if (fileBits & 2) plan.teeStderr = join(dir, 'stderr.log');
      // `--redirects` without `--tee` sends the stream to its file only (torchrun semantics).
      plan.consoleStdout = !(this.opts.redirects & 1) || (this.opts.tee & 1) !== 0;
      plan.consoleStderr = !(this.opts.redirects & 2) || (this.opts.tee & 2) !== 0;
    }
    return plan;
  }

  /** Writes the rank → IP table atomically (temp file + rename), falling back when the directory is unusable. */
  private writeRankIps(rankIps: { rank: number; ip: string }[]): void {
    const sorted = [...rankIps].sort((a, b) => a.rank - b.rank);
    const body = JSON.stringify({
      ips: sorted.map((r) => r.ip),
      current_pod_ip: this.id.ip ?? sorted.find((r) => r.rank === this.group.rendezvous?.rank)?.ip ?? null,
      ips_timestamp: new Date(this.now()).toISOString(),
    });
    const candidates = [
      this.opts.rankIpFile,
      ...(this.opts.logDir ? [join(this.opts.logDir, 'pod_resourceconfig.json')] : []),
      join(tmpdir(), `trainkeeper-agent-${process.pid}`, 'pod_resourceconfig.json'),
    ];
    for (const [i, path] of candidates.entries()) {
      try {
        mkdirSync(dirname(path), { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        writeFileSync(tmp, body);
        renameSync(tmp, path);
        if (i > 0)
          this.o.stderr(`trainkeeper-agent: cannot write ${candidates[0]}; rank IPs written to ${path}\n`);
        return;
      } catch (err) {
        if (i === candidates.length - 1)
          this.o.stderr(`trainkeeper-agent: cannot write the rank IP table: ${(err as Error).message}\n`);
      }
    }
  }

  private beat(): void {
    const g = this.group;
    this.emit({
      kind: 'heartbeat',
      workers: this.procs.live - (this.standby ? 1 : 0),
      ...(g.progress ? { progress: g.progress } : {}),
    });
  }

  private emit(extra: Parameters<typeof record>[3], state?: WorkerGroup['state'], generation?: number): void {
    const g = {
      ...this.group,
      state: state ?? this.group.state,
      generation: generation ?? this.group.generation,
    };
    this.o.stdout(`${JSON.stringify(record(g, this.id, this.now(), extra))}\n`);
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.wake();
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const [sig, h] of this.signalHandlers) process.off(sig, h);
    // Let pending answers (e.g. /shutdown) go out, then close.
    setImmediate(() => {
      this.server.close(() => this.resolveDone(code));
      this.server.closeIdleConnections();
      setTimeout(() => {
        this.server.closeAllConnections();
      }, 1000).unref();
    });
  }
}

/** After this many standbys ended unassigned, the agent stops starting them (and says so once). */
const MAX_STANDBY_FAILURES = 3;

/** A free TCP port on loopback (for the standalone rendezvous). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
