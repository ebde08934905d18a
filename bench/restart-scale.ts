/**
 * `measureRestart(pods)`: one process-level restart of every rank, as `act` executes it (functions/shell/
 * reconcile.ts): `/stop` to every agent (guarded by `below_generation`), then `/start` to every agent at
 * the new generation with the body `decide` builds (rank, nnodes, rendezvous, the rank → IP table), through
 * the real Kubernetes adapter (`KubeCluster`: its shared concurrency limit, retries, timeouts) and the
 * local API server's `pods/proxy`.
 *
 * Agents are SIMULATED (bench/restart-scale-stand-ins.ts): the pods exist in the API server's store, no
 * kubelet runs them, and the proxy forwards every pod to one HTTP server that answers like an agent after
 * `latencyMs`. It records what it is sent: unless every agent was stopped and every rank started exactly
 * once at the new generation, `measureRestart` throws (a restart that did not happen is no figure).
 *
 * The API server and the simulated agents run in a child process, so they do not take CPU from the
 * adapter; each side's CPU time is returned, to show which side a slow figure comes from.
 *
 * Used by bench/restart.bench.ts and bench/scale.bench.ts; prints nothing.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { KubeCluster, type KubeClusterOptions } from '../adapters/kube/cluster.ts';
import type { StartBody } from '../core/agent-protocol.ts';
import { RANK_IPS_MAX_RANKS } from '../core/decide/lifecycle.ts';
import { kubeConfigFor } from '../test/support/local-api.ts';
import { type FromStandIns, NAMESPACE, podName, TOKEN, type ToStandIns } from './restart-scale-stand-ins.ts';

/** Options of `measureRestart`. */
export interface RestartOptions {
  /** How long each simulated agent takes to answer a call, in ms (default 20). */
  latencyMs?: number;
  /** The adapter's agent calls in flight (default: the adapter's `DEFAULT_AGENT_CONCURRENCY`). */
  concurrency?: number;
  /**
   * Send the rank → IP table (`rankIps`, every rank's IP) in each `/start`. Default: as `decide` does, up
   * to `RANK_IPS_MAX_RANKS` pods. Each body then grows with the job: n bodies of n entries.
   */
  rankIps?: boolean;
}

/** What one restart cost. */
export interface RestartMeasure {
  /** Wall time from the first `/stop` to the last `/start` answer. */
  seconds: number;
  /** Kubernetes API calls the adapter made (every attempt; 2 per pod when nothing is retried). */
  calls: number;
  /** Of `seconds`, the `/stop` fan-out. */
  stopSeconds: number;
  /** Bytes of `/start` bodies the simulated agents received. */
  startBytes: number;
  /** CPU time of this process (the adapter) during the restart. */
  adapterCpuSeconds: number;
  /** CPU time of the stand-ins (API server, its proxy, the simulated agents) during the restart. */
  standInCpuSeconds: number;
}

const STAND_INS = fileURLToPath(new URL('./restart-scale-stand-ins.ts', import.meta.url));

/**
 * Measures one full restart of `pods` ranks (see the module comment). Throws on bad input and when any
 * agent was not stopped, or not started exactly once at the new generation.
 */
export async function measureRestart(pods: number, opts: RestartOptions = {}): Promise<RestartMeasure> {
  if (!Number.isInteger(pods) || pods < 1) {
    throw new RangeError(`measureRestart: pods must be a positive integer, got ${pods}`);
  }
  const latencyMs = opts.latencyMs ?? 20;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) {
    throw new RangeError(`measureRestart: latencyMs must be a number >= 0, got ${latencyMs}`);
  }
  if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1)) {
    throw new RangeError(`measureRestart: concurrency must be a positive integer, got ${opts.concurrency}`);
  }
  const child = fork(STAND_INS, [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const names = Array.from({ length: pods }, (_, index) => podName(index));
  const generation = 1;
  // One table shared by every body (the adapter serializes each body on its own, as it does for act's).
  const rankIps = names.map((_, rank) => ({
    rank,
    ip: `10.${(rank >> 16) & 255}.${(rank >> 8) & 255}.${rank & 255}`,
  }));
  const starts = names.map((pod, rank): { pod: string; body: StartBody } => ({
    pod,
    body: {
      rank,
      nnodes: pods,
      faultCount: generation,
      master_addr: rankIps[0]!.ip,
      master_port: 29500,
      ...((opts.rankIps ?? pods <= RANK_IPS_MAX_RANKS) ? { rankIps } : {}),
      spare: false,
    },
  }));
  let cluster: KubeCluster | undefined;
  try {
    const ready = await ask(child, { type: 'setup', pods, latencyMs }, 'ready');
    const options: KubeClusterOptions =
      opts.concurrency === undefined ? {} : { agentConcurrency: opts.concurrency };
    cluster = new KubeCluster(kubeConfigFor(ready.url, TOKEN), options);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stopped = await cluster.stopAgents(NAMESPACE, names, { below_generation: generation });
    const t1 = performance.now();
    const started = await cluster.startAgents(NAMESPACE, starts);
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const checked = await ask(child, { type: 'check', generation }, 'checked');
    const notReady = stopped.filter((r) => !r.ok || r.status.status !== 'ready');
    if (stopped.length !== pods || notReady.length > 0) {
      throw new Error(
        `measureRestart: ${stopped.length - notReady.length} of ${pods} agents stopped (first failure: ${JSON.stringify(notReady[0])})`,
      );
    }
    const notRunning = started.filter((r) => !r.ok || r.status.faultCount !== generation);
    if (started.length !== pods || notRunning.length > 0) {
      throw new Error(
        `measureRestart: ${started.length - notRunning.length} of ${pods} agents started (first failure: ${JSON.stringify(notRunning[0])})`,
      );
    }
    if (checked.problem) throw new Error(`measureRestart: ${checked.problem}`);
    return {
      seconds: (t2 - t0) / 1000,
      calls: cluster.stats.totalCalls(),
      stopSeconds: (t1 - t0) / 1000,
      startBytes: checked.startBytes,
      adapterCpuSeconds: (cpu.user + cpu.system) / 1e6,
      standInCpuSeconds: checked.cpuSeconds,
    };
  } finally {
    cluster?.close();
    const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
    child.kill();
    await exited;
  }
}

/** Sends `message` to the stand-ins and waits for the answer of type `type` (or their failure). */
async function ask<T extends FromStandIns['type']>(
  child: ChildProcess,
  message: ToStandIns,
  type: T,
): Promise<Extract<FromStandIns, { type: T }>> {
  const answer = new Promise<Extract<FromStandIns, { type: T }>>((resolve, reject) => {
    const onMessage = (m: FromStandIns) => {
      if (m.type === type) done(() => resolve(m as Extract<FromStandIns, { type: T }>));
      else if (m.type === 'failed')
        done(() => reject(new Error(`measureRestart: stand-ins failed: ${m.error}`)));
    };
    const onExit = (code: number | null) =>
      done(() =>
        reject(new Error(`measureRestart: stand-ins exited (code ${code}) before answering ${message.type}`)),
      );
    const done = (settle: () => void) => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      settle();
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
  child.send(message);
  return answer;
}
