/**
 * The process "kubelet": runs every pod bound to one of its nodes as a local process group and keeps the
 * pod's status true, the way a kubelet and container runtime would.
 *
 * Per pod: the first container's `command` + `args` run (the image is ignored; other containers are not
 * run and not reported), with env = the container's env (`$(VAR)` references and downward-API `fieldRef`s
 * resolved) over a base of PATH (configured directories first), HOME and the kubelet's extra env, plus
 * `TRAINKEEPER_AGENT_PORT`: a free loopback port standing in for container port 8080, and
 * `TRAINKEEPER_AGENT_HOST`: the pod's loopback IP, so the agent is not reachable from the network (a real
 * agent listens on 0.0.0.0, which here would be every interface of the user's machine). Each pod gets its
 * own loopback IP (127.X.Y.Z; X and Y random per kubelet, so parallel test files do not collide), which
 * its processes bind and connect to; the API server's proxy goes there.
 *
 * Lifecycle: Pending → Running → Succeeded/Failed, `restartPolicy` honoured (Always/OnFailure restart
 * with a capped back-off, CrashLoopBackOff while waiting). When the main process exits the whole process
 * group is killed, as a container's processes die with it. Deletion: SIGTERM to the group, SIGKILL after
 * the grace period, then the object is removed. A force deletion (object gone) SIGKILLs at once. Exit
 * reasons, as a kubelet reports them: 0 → Completed; killed by the (simulated) OOM killer → OOMKilled,
 * exit code 137; anything else → Error, with exit code 128 + signal for a signal. A SIGKILL from anyone
 * else is an `Error` with exit code 137, as on a real node: only the kernel's OOM kill is `OOMKilled`.
 *
 * Working directory: every pod gets its own, `<podsDir>/<namespace>/<name>-<uid>`, standing in for the
 * container's filesystem (never the directory the plane was started from, so a pod cannot write into the
 * user's checkout). `imageFiles` are copied into it at pod start, standing in for the image's contents;
 * the container's `workingDir` resolves inside it (an absolute one as if the directory were `/`); it
 * lives as long as the pod (container restarts keep it, like an emptyDir) and is removed with the pod.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import { homedir, constants as osConstants, tmpdir } from 'node:os';
import { basename, delimiter, join, posix } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../net.ts';
import type { LogLine, PodLogSource } from './api-server.ts';
import { type KubeObject, kubeTime, type ObjectStore, type StoreEvent } from './store.ts';
import {
  type Condition,
  type Container,
  type EnvVar,
  isTerminalPhase,
  type PodSpec,
  setCondition,
} from './types.ts';

/** One line of container output, as the local log shipper receives it. */
export interface PodLogEvent {
  namespace: string;
  pod: string;
  container: string;
  node: string;
  labels: Record<string, string>;
  stream: 'stdout' | 'stderr';
  line: string;
  /** Epoch milliseconds when the line was read. */
  timestamp: number;
}

/** Options of ProcessKubelet. */
export interface KubeletOptions {
  store: ObjectStore;
  /** Whether this kubelet runs pods of the named node. Default: every node. */
  ownsNode?: (node: string) => boolean;
  /**
   * Where pods' working directories are made (`<podsDir>/<namespace>/<name>-<uid>`, each removed with its
   * pod). Default: a new directory under the OS temp dir, removed by `stop()`.
   */
  podsDir?: string;
  /**
   * Files and directories copied into every pod's working directory when it starts (by their base name),
   * standing in for the image's contents: the control plane gives the example trainers.
   */
  imageFiles?: string[];
  /** Directories put first on PATH (where the control plane keeps `trainkeeper-agent` shims). */
  pathPrepend?: string[];
  /** Extra environment for every pod (under the container's own env). */
  env?: Record<string, string>;
  /** Lines kept per container for `pods/{name}/log`. Default 5000. */
  logLimit?: number;
  /** First restart back-off (doubles per restart, capped at 10 s). Default 1000 ms. */
  restartBackoffMs?: number;
}

/** The agent's container port inside the pod (hyperpod-spec §5); the kubelet serves it on a free port. */
const AGENT_CONTAINER_PORT = 8080;
const MAX_BACKOFF_MS = 10_000;

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  node: string;
  labels: Record<string, string>;
  ip: string;
  agentPort: number;
  container: Container;
  /** The pod's own directory (its filesystem stand-in), removed with the pod. */
  dir: string;
  /** Where the container's processes start: `dir`, or the container's `workingDir` inside it. */
  cwd: string;
  /** The simulated OOM killer SIGKILLed the container (reported as OOMKilled, not Error). */
  oomKilled: boolean;
  /** How the container's previous run ended: `lastState.terminated` from its first restart on. */
  lastTerminated: Record<string, unknown> | undefined;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  child: ChildProcess | undefined;
  restartCount: number;
  logs: LogLine[];
  followers: Set<{ onLine: (line: LogLine) => void; onEnd: () => void }>;
  /** Set when deletion was requested: do not restart; remove the object once the process is gone. */
  terminating: boolean;
  /** The object was removed (force delete) or the node was lost: write no more status. */
  detached: boolean;
  /** The container will not run again. */
  done: boolean;
  timers: Set<NodeJS.Timeout>;
  /** Resolves once the container will not run again and its process group is gone. */
  exited: Promise<void>;
  resolveExited: () => void;
}

/** Allocates loopback addresses 127.X.Y.Z from a block chosen at random per instance. */
class LoopbackPool {
  private next = 0;
  private readonly x = 2 + Math.floor(Math.random() * 252);
  private readonly y = Math.floor(Math.random() * 256);

  allocate(): string {
    const n = this.next++;
    const y = (this.y + Math.floor(n / 254)) % 256;
    return `127.${this.x}.${y}.${(n % 254) + 1}`;
  }
}

/** Resolves `$(VAR)` references the way Kubernetes does (`$$(VAR)` escapes; unknown ones stay as written). */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? env[name]! : whole;
  });
}

/**
 * Resolves a downward-API `fieldRef` path against a pod. Supported: metadata.name, metadata.namespace,
 * metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
 * status.podIP, status.hostIP. Anything else throws (the pod fails with CreateContainerConfigError).
 */
export function resolveFieldRef(
  pod: KubeObject,
  fieldPath: string,
  ips: { podIP: string; hostIP: string },
): string {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed) {
    const map = (keyed[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations) ?? {};
    return map[keyed[2]!] ?? '';
  }
  const spec = pod.spec as unknown as PodSpec;
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'spec.nodeName':
      return spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return spec.serviceAccountName ?? 'default';
    case 'status.podIP':
      return ips.podIP;
    case 'status.hostIP':
      return ips.hostIP;
    default:
      throw new Error(`unsupported fieldRef.fieldPath "${fieldPath}"`);
  }
}

/**
 * Runs pods as local processes. Invariants: at most one process group per pod uid; every process group
 * it started is killed by `stop()`; status is written only while the pod object exists and its uid is the
 * one the process belongs to (a re-created pod of the same name is a different pod).
 */
export class ProcessKubelet implements PodLogSource {
  private readonly store: ObjectStore;
  private readonly runtimes = new Map<string, PodRuntime>();
  /** Latest runtime by namespace/name, for logs. */
  private readonly byName = new Map<string, PodRuntime>();
  private readonly starting = new Set<string>();
  private readonly lostNodes = new Set<string>();
  private readonly logListeners = new Set<(event: PodLogEvent) => void>();
  private readonly pool = new LoopbackPool();
  private readonly nodeIps = new Map<string, string>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** The pods' directory when this kubelet made it (no `podsDir` given): removed by `stop()`. */
  private ownPodsDir: string | undefined;
  /** Pod directory removals under way (`stop()` waits for them). */
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly options: KubeletOptions) {
    this.store = options.store;
  }

  /**
   * Last-resort cleanup when the host process exits without `stop()` (a crashed test file, `process.exit`):
   * SIGKILL every process group still running, synchronously, so no pod process outlives its cluster.
   */
  private readonly killAllOnExit = () => {
    for (const runtime of this.runtimes.values()) {
      const pid = runtime.child?.pid;
      if (pid === undefined) continue;
      for (const target of [-pid, ...descendantsOf(pid)]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    if (this.ownPodsDir) rmSync(this.ownPodsDir, { recursive: true, force: true });
  };

  /** Starts following the store: pods bound to owned nodes start, deleted ones stop. */
  start(): void {
    if (!this.unsubscribe) process.once('exit', this.killAllOnExit);
    this.unsubscribe ??= this.store.subscribe((event) => this.onEvent(event));
    for (const pod of this.store.list('pods')) {
      this.onEvent({
        type: 'ADDED',
        resource: 'pods',
        object: pod,
        resourceVersion: this.store.resourceVersion,
      });
    }
  }

  /** The loopback address a node's pods see as `status.hostIP` (allocated on first use). */
  nodeIp(node: string): string {
    let ip = this.nodeIps.get(node);
    if (!ip) {
      ip = this.pool.allocate();
      this.nodeIps.set(node, ip);
    }
    return ip;
  }

  /** Subscribes to every captured output line; returns the unsubscribe function. */
  onLog(listener: (event: PodLogEvent) => void): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  /** Where `pods/{name}[:port]/proxy` goes: 8080, the first container port or none → the agent port. */
  proxyTarget = (pod: KubeObject, port: number | undefined): { host: string; port: number } | undefined => {
    const runtime = this.runtimes.get(pod.metadata.uid);
    if (!runtime || runtime.done) return undefined;
    const first = runtime.container.ports?.[0]?.containerPort;
    const agent = port === undefined || port === AGENT_CONTAINER_PORT || port === first;
    return { host: runtime.ip, port: agent ? runtime.agentPort : port };
  };

  /** PodLogSource: the buffered lines of the pod's (first) container. */
  lines(namespace: string, pod: string, container?: string): LogLine[] | undefined {
    const runtime = this.byName.get(`${namespace}/${pod}`);
    if (!runtime || (container !== undefined && container !== runtime.container.name)) return undefined;
    return [...runtime.logs];
  }

  /** PodLogSource: follows new lines until the container ends. */
  follow(
    namespace: string,
    pod: string,
    container: string | undefined,
    onLine: (line: LogLine) => void,
    onEnd: () => void,
  ): () => void {
    const runtime = this.byName.get(`${namespace}/${pod}`);
    if (
      !runtime ||
      runtime.done ||
      !runtime.child ||
      (container !== undefined && container !== runtime.container.name)
    ) {
      queueMicrotask(onEnd);
      return () => {};
    }
    const follower = { onLine, onEnd };
    runtime.followers.add(follower);
    return () => runtime.followers.delete(follower);
  }

  /**
   * Simulates a dead machine: every process on the node is SIGKILLed at once and its pods are marked
   * Failed with reason NodeLost right away. (Real Kubernetes would leave them Running, then Unknown until
   * the node controller evicts them; TrainKeeper's control plane force-deletes pods on lost nodes, which
   * works the same on both.) No pod starts on the node until `restoreNode`.
   */
  loseNode(node: string): void {
    this.lostNodes.add(node);
    const now = kubeTime(this.store.now());
    for (const runtime of this.runtimes.values()) {
      if (runtime.node !== node || runtime.done) continue;
      runtime.detached = true;
      runtime.done = true;
      this.kill(runtime, 'SIGKILL');
      this.writeStatus(runtime, (status) => {
        status.phase = 'Failed';
        status.reason = 'NodeLost';
        status.message = `Node ${node} which was running pod ${runtime.name} is unresponsive`;
        status.containerStatuses = [
          this.containerStatus(runtime, {
            terminated: { exitCode: 137, reason: 'Error', startedAt: now, finishedAt: now },
          }),
        ];
      });
    }
    for (const pod of this.store.list('pods')) {
      const spec = pod.spec as unknown as PodSpec;
      if (
        spec.nodeName === node &&
        !this.runtimes.has(pod.metadata.uid) &&
        !isTerminalPhase(pod.status?.phase)
      ) {
        this.store.mutate('pods', pod.metadata.namespace, pod.metadata.name, (p) => {
          p.status = { ...p.status, phase: 'Failed', reason: 'NodeLost', message: `Node ${node} was lost` };
        });
      }
    }
  }

  /** Lets pods run on a lost node again (the node came back). */
  restoreNode(node: string): void {
    this.lostNodes.delete(node);
    for (const pod of this.store.list('pods')) {
      this.onEvent({
        type: 'MODIFIED',
        resource: 'pods',
        object: pod,
        resourceVersion: this.store.resourceVersion,
      });
    }
  }

  /** Kills every process group this kubelet started and waits for them to exit. */
  async stop(): Promise<void> {
    this.stopped = true;
    process.off('exit', this.killAllOnExit);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const waits: Promise<void>[] = [];
    for (const runtime of this.runtimes.values()) {
      runtime.detached = true;
      runtime.done = true;
      for (const t of runtime.timers) clearTimeout(t);
      this.kill(runtime, 'SIGKILL');
      waits.push(runtime.exited);
    }
    await Promise.all(waits);
    for (const runtime of this.runtimes.values()) this.removeDirWhenExited(runtime);
    await Promise.all(this.removals);
    if (this.ownPodsDir) await rm(this.ownPodsDir, { recursive: true, force: true });
  }

  /**
   * The kernel's OOM killer, simulated: SIGKILLs the pod's container (every process in it) and reports
   * it as a kubelet reports a container that exceeded its memory limit: reason `OOMKilled`, exit code
   * 137. Returns false when the pod has no running container here.
   */
  oomKill(namespace: string, name: string): boolean {
    const runtime = this.byName.get(`${namespace}/${name}`);
    if (!runtime?.child || runtime.done) return false;
    runtime.oomKilled = true;
    this.kill(runtime, 'SIGKILL');
    return true;
  }

  /** Where pods' directories go: `podsDir`, or a directory of our own made on first use. */
  private podsRoot(): string {
    if (this.options.podsDir !== undefined) return this.options.podsDir;
    this.ownPodsDir ??= mkdtempSync(join(tmpdir(), 'trainkeeper-pods-'));
    return this.ownPodsDir;
  }

  /** Removes the pod's directory once its processes are gone (they may still be writing to it). */
  private removeDirWhenExited(runtime: PodRuntime): void {
    if (runtime.dir === '') return;
    const dir = runtime.dir;
    runtime.dir = '';
    const removal: Promise<void> = runtime.exited
      .then(() => rm(dir, { recursive: true, force: true }))
      .catch(() => {})
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  private onEvent(event: StoreEvent): void {
    if (event.resource !== 'pods' || this.stopped) return;
    const pod = event.object;
    const uid = pod.metadata.uid;
    const runtime = this.runtimes.get(uid);
    if (event.type === 'DELETED') {
      if (runtime) {
        runtime.detached = true;
        runtime.done = true;
        this.kill(runtime, 'SIGKILL');
        this.endFollowers(runtime);
        this.removeDirWhenExited(runtime);
      }
      if (this.byName.get(`${pod.metadata.namespace}/${pod.metadata.name}`)?.uid === uid) {
        this.byName.delete(`${pod.metadata.namespace}/${pod.metadata.name}`);
      }
      return;
    }
    const node = (pod.spec as unknown as PodSpec).nodeName;
    if (!node || !(this.options.ownsNode?.(node) ?? true) || this.lostNodes.has(node)) return;
    if (pod.metadata.deletionTimestamp) {
      if (runtime && !runtime.terminating)
        this.terminate(runtime, pod.metadata.deletionGracePeriodSeconds ?? 30);
      else if (!runtime && !this.starting.has(uid))
        this.removePod(pod.metadata.namespace ?? 'default', pod.metadata.name, uid);
      return;
    }
    if (!runtime && !this.starting.has(uid) && pod.status?.phase === 'Pending') {
      this.starting.add(uid);
      this.startPod(pod).finally(() => this.starting.delete(uid));
    }
  }

  private async startPod(pod: KubeObject): Promise<void> {
    const spec = pod.spec as unknown as PodSpec;
    const node = spec.nodeName!;
    const container = spec.containers[0]!;
    // Two pods never share an agent port, even if the OS hands a just-released port out twice.
    let agentPort = await freePort();
    const inUse = () => [...this.runtimes.values()].some((r) => !r.done && r.agentPort === agentPort);
    for (let tries = 0; inUse() && tries < 20; tries++) agentPort = await freePort();
    const current = this.store.get('pods', pod.metadata.namespace, pod.metadata.name);
    if (this.stopped || !current || current.metadata.uid !== pod.metadata.uid) return;
    let exitedResolve: () => void = () => {};
    const runtime: PodRuntime = {
      uid: pod.metadata.uid,
      namespace: pod.metadata.namespace ?? 'default',
      name: pod.metadata.name,
      node,
      labels: { ...(pod.metadata.labels ?? {}) },
      ip: this.pool.allocate(),
      agentPort,
      container,
      dir: join(
        this.podsRoot(),
        pod.metadata.namespace ?? 'default',
        `${pod.metadata.name}-${pod.metadata.uid}`,
      ),
      cwd: '',
      oomKilled: false,
      lastTerminated: undefined,
      restartPolicy: spec.restartPolicy ?? 'Always',
      child: undefined,
      restartCount: 0,
      logs: [],
      followers: new Set(),
      terminating: false,
      detached: false,
      done: false,
      timers: new Set(),
      exited: new Promise<void>((resolve) => {
        exitedResolve = resolve;
      }),
      resolveExited: () => exitedResolve(),
    };
    this.runtimes.set(runtime.uid, runtime);
    this.byName.set(`${runtime.namespace}/${runtime.name}`, runtime);
    const now = kubeTime(this.store.now());
    const hostIP = this.nodeIp(node);
    this.writeStatus(runtime, (status) => {
      status.hostIP = hostIP;
      status.hostIPs = [{ ip: hostIP }];
      status.podIP = runtime.ip;
      status.podIPs = [{ ip: runtime.ip }];
      status.startTime = now;
      status.conditions = setCondition(
        (status.conditions ?? []) as Condition[],
        { type: 'Initialized', status: 'True' },
        now,
      );
      status.containerStatuses = [
        this.containerStatus(runtime, { waiting: { reason: 'ContainerCreating' } }),
      ];
    });
    if (current.metadata.deletionTimestamp) {
      runtime.done = true;
      exitedResolve();
      this.removePod(runtime.namespace, runtime.name, runtime.uid);
      return;
    }
    let env: Record<string, string>;
    try {
      env = this.environment(current, runtime, hostIP);
      await this.prepareDir(runtime);
    } catch (err) {
      runtime.done = true;
      exitedResolve();
      this.writeStatus(runtime, (status) => {
        status.containerStatuses = [
          this.containerStatus(runtime, {
            waiting: { reason: 'CreateContainerConfigError', message: (err as Error).message },
          }),
        ];
      });
      return;
    }
    if (runtime.detached || runtime.terminating || this.stopped) {
      // Deleted while its directory was being made: nothing runs; the directory goes with the pod.
      runtime.done = true;
      exitedResolve();
      this.removeDirWhenExited(runtime);
      if (runtime.terminating) this.removePod(runtime.namespace, runtime.name, runtime.uid);
      return;
    }
    this.run(runtime, env);
  }

  /** Makes the pod's directory (private to the user), copies the image files, makes `workingDir`. */
  private async prepareDir(runtime: PodRuntime): Promise<void> {
    await mkdir(runtime.dir, { recursive: true, mode: 0o700 });
    for (const source of this.options.imageFiles ?? []) {
      await cp(source, join(runtime.dir, basename(source)), { recursive: true });
    }
    // `workingDir` resolves inside the pod's directory; `..` cannot climb out of it.
    const workingDir = runtime.container.workingDir;
    runtime.cwd = workingDir ? join(runtime.dir, posix.resolve('/', workingDir)) : runtime.dir;
    await mkdir(runtime.cwd, { recursive: true });
  }

  private environment(pod: KubeObject, runtime: PodRuntime, hostIP: string): Record<string, string> {
    const path = [...(this.options.pathPrepend ?? []), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin']
      .filter((p) => p !== '')
      .join(delimiter);
    const env: Record<string, string> = {
      PATH: path,
      HOME: process.env.HOME ?? homedir(),
      HOSTNAME: runtime.name,
      ...(this.options.env ?? {}),
    };
    for (const [i, e] of (runtime.container.env ?? []).entries() as IterableIterator<[number, EnvVar]>) {
      if (e.value !== undefined) env[e.name] = expandVars(e.value, env);
      else if (e.valueFrom?.fieldRef) {
        env[e.name] = resolveFieldRef(pod, e.valueFrom.fieldRef.fieldPath, { podIP: runtime.ip, hostIP });
      } else if (e.valueFrom) {
        throw new Error(`spec.containers[0].env[${i}].valueFrom: only fieldRef is supported locally`);
      } else env[e.name] = '';
    }
    env.TRAINKEEPER_AGENT_PORT = String(runtime.agentPort);
    // The agent listens on the pod's loopback IP (what the proxy reaches), never on the user's network.
    env.TRAINKEEPER_AGENT_HOST = runtime.ip;
    return env;
  }

  private run(runtime: PodRuntime, env: Record<string, string>): void {
    const argv = [...(runtime.container.command ?? []), ...(runtime.container.args ?? [])].map((a) =>
      expandVars(a, env),
    );
    const startedAt = kubeTime(this.store.now());
    if (argv.length === 0) {
      this.finish(runtime, {
        exitCode: 128,
        reason: 'StartError',
        message: 'no command: images are not run locally',
        startedAt,
      });
      return;
    }
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: runtime.cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runtime.child = child;
    runtime.oomKilled = false;
    let spawnError: Error | undefined;
    child.once('spawn', () => {
      this.writeStatus(runtime, (status) => {
        status.phase = 'Running';
        for (const type of ['ContainersReady', 'Ready']) {
          status.conditions = setCondition(
            (status.conditions ?? []) as Condition[],
            { type, status: 'True' },
            startedAt,
          );
        }
        status.containerStatuses = [this.containerStatus(runtime, { running: { startedAt } }, true)];
      });
    });
    child.once('error', (err) => {
      spawnError = err;
    });
    for (const [stream, readable] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const) {
      createInterface({ input: readable!, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
        this.capture(runtime, stream, line),
      );
    }
    // The container ends with its main process: kill what it left behind, then wait for the pipes to drain.
    child.once('exit', () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // The group is already gone.
        }
      }
    });
    child.once('close', (code, signal) => {
      if (runtime.child === child) runtime.child = undefined;
      if (spawnError) {
        this.finish(runtime, { exitCode: 128, reason: 'StartError', message: spawnError.message, startedAt });
        return;
      }
      const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      const reason = exitCode === 0 ? 'Completed' : runtime.oomKilled ? 'OOMKilled' : 'Error';
      this.finish(runtime, { exitCode, reason, startedAt, ...(signal ? { signal } : {}) });
    });
  }

  private finish(
    runtime: PodRuntime,
    result: { exitCode: number; reason: string; message?: string; startedAt: string; signal?: string },
  ): void {
    const finishedAt = kubeTime(this.store.now());
    const terminated = {
      exitCode: result.exitCode,
      reason: result.reason,
      ...(result.message ? { message: result.message } : {}),
      ...(result.signal ? { signal: osConstants.signals[result.signal as NodeJS.Signals] } : {}),
      startedAt: result.startedAt,
      finishedAt,
      containerID: `local://${runtime.uid}/${runtime.restartCount}`,
    };
    const restart =
      !runtime.terminating &&
      !runtime.detached &&
      !this.stopped &&
      (runtime.restartPolicy === 'Always' ||
        (runtime.restartPolicy === 'OnFailure' && result.exitCode !== 0));
    if (restart) {
      const delay = Math.min(
        MAX_BACKOFF_MS,
        (this.options.restartBackoffMs ?? 1000) * 2 ** runtime.restartCount,
      );
      runtime.restartCount++;
      runtime.lastTerminated = terminated;
      this.writeStatus(runtime, (status) => {
        status.conditions = setCondition(
          (status.conditions ?? []) as Condition[],
          { type: 'Ready', status: 'False', reason: 'ContainersNotReady' },
          finishedAt,
        );
        status.containerStatuses = [
          this.containerStatus(runtime, {
            waiting: {
              reason: 'CrashLoopBackOff',
              message: `back-off ${delay} ms restarting failed container`,
            },
          }),
        ];
      });
      this.endFollowers(runtime);
      const timer = setTimeout(() => {
        runtime.timers.delete(timer);
        const pod = this.store.get('pods', runtime.namespace, runtime.name);
        if (
          !pod ||
          pod.metadata.uid !== runtime.uid ||
          runtime.terminating ||
          runtime.detached ||
          this.stopped
        ) {
          this.settle(runtime);
          return;
        }
        try {
          this.run(runtime, this.environment(pod, runtime, this.nodeIp(runtime.node)));
        } catch {
          this.settle(runtime);
        }
      }, delay);
      runtime.timers.add(timer);
      return;
    }
    if (!runtime.detached) {
      this.writeStatus(runtime, (status) => {
        status.phase = result.exitCode === 0 ? 'Succeeded' : 'Failed';
        status.conditions = setCondition(
          setCondition(
            (status.conditions ?? []) as Condition[],
            { type: 'Ready', status: 'False', reason: 'PodCompleted' },
            finishedAt,
          ),
          { type: 'ContainersReady', status: 'False', reason: 'PodCompleted' },
          finishedAt,
        );
        status.containerStatuses = [this.containerStatus(runtime, { terminated })];
      });
    }
    this.settle(runtime);
    if (runtime.terminating) this.removePod(runtime.namespace, runtime.name, runtime.uid);
  }

  /** The container will not run again: end log followers, release timers, resolve `exited`. */
  private settle(runtime: PodRuntime): void {
    runtime.done = true;
    for (const t of runtime.timers) clearTimeout(t);
    runtime.timers.clear();
    this.endFollowers(runtime);
    runtime.resolveExited();
  }

  private terminate(runtime: PodRuntime, graceSeconds: number): void {
    runtime.terminating = true;
    if (!runtime.child) {
      // Waiting (back-off or never started): nothing to stop.
      this.settle(runtime);
      this.removePod(runtime.namespace, runtime.name, runtime.uid);
      return;
    }
    this.kill(runtime, 'SIGTERM');
    const timer = setTimeout(() => {
      runtime.timers.delete(timer);
      this.kill(runtime, 'SIGKILL');
    }, graceSeconds * 1000);
    runtime.timers.add(timer);
  }

  private kill(runtime: PodRuntime, signal: NodeJS.Signals): void {
    const pid = runtime.child?.pid;
    if (pid === undefined) {
      if (!runtime.child) runtime.resolveExited();
      return;
    }
    // A container's processes die with it, whatever process group they moved to (the agent starts each
    // worker in its own group): SIGKILL reaches every descendant, listed before anything dies so that
    // orphans re-parented to init are not missed. A SIGTERM goes to the pod's group only, so the agent can
    // stop its workers gracefully.
    const targets = signal === 'SIGKILL' ? [pid, ...descendantsOf(pid)] : [];
    for (const target of [-pid, ...targets]) {
      try {
        process.kill(target, signal);
      } catch {
        // Already gone.
      }
    }
  }

  private removePod(namespace: string, name: string, uid: string): void {
    const pod = this.store.get('pods', namespace, name);
    if (pod && pod.metadata.uid === uid) this.store.remove('pods', namespace, name);
  }

  private capture(runtime: PodRuntime, stream: 'stdout' | 'stderr', line: string): void {
    const entry: LogLine = { timestamp: this.store.now(), stream, line };
    runtime.logs.push(entry);
    const limit = this.options.logLimit ?? 5000;
    if (runtime.logs.length > limit) runtime.logs.splice(0, runtime.logs.length - limit);
    for (const f of runtime.followers) f.onLine(entry);
    const event: PodLogEvent = {
      namespace: runtime.namespace,
      pod: runtime.name,
      container: runtime.container.name,
      node: runtime.node,
      labels: runtime.labels,
      stream,
      line,
      timestamp: entry.timestamp,
    };
    for (const listener of this.logListeners) listener(event);
  }

  private endFollowers(runtime: PodRuntime): void {
    const followers = [...runtime.followers];
    runtime.followers.clear();
    for (const f of followers) f.onEnd();
  }

  private containerStatus(
    runtime: PodRuntime,
    state: Record<string, unknown>,
    ready = false,
  ): Record<string, unknown> {
    return {
      name: runtime.container.name,
      image: runtime.container.image ?? 'local',
      imageID: '',
      containerID: `local://${runtime.uid}/${runtime.restartCount}`,
      ready,
      started: 'running' in state,
      restartCount: runtime.restartCount,
      state,
      // Kept while the container runs again and after it ends, as a kubelet keeps it.
      ...(runtime.lastTerminated ? { lastState: { terminated: runtime.lastTerminated } } : {}),
    };
  }

  /** Writes the pod's status if the object still exists with this runtime's uid. */
  private writeStatus(runtime: PodRuntime, edit: (status: Record<string, unknown>) => void): void {
    const pod = this.store.get('pods', runtime.namespace, runtime.name);
    if (!pod || pod.metadata.uid !== runtime.uid) return;
    this.store.mutate('pods', runtime.namespace, runtime.name, (p) => {
      p.status ??= {};
      edit(p.status);
    });
  }
}

/** Every descendant pid of `root` (Linux `/proc`); empty where `/proc` cannot be read. */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop() as number) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}
