/**
 * The stand-ins of `measureRestart` (bench/restart-scale.ts), run as a child process so they do not take
 * CPU from the adapter being measured: the local Kubernetes API server holding `pods` pods of one job, and
 * one HTTP server standing in for every pod's agent, which its `pods/proxy` forwards to.
 *
 * The simulated agent answers `/stop` with `ready` and `/start` with `running` at the body's faultCount,
 * each after `latencyMs`, and records every start by rank, so the parent can check that each rank was
 * started exactly once at the new generation.
 *
 * IPC protocol (process.send / 'message'):
 *   parent → { type: 'setup', pods, latencyMs }      child → { type: 'ready', url, token }
 *   parent → { type: 'check', generation }          child → { type: 'checked', problem?, startBytes, cpuSeconds }
 * `cpuSeconds`: this process's CPU time between `ready` and `check` (the API server, proxy and agents).
 * The parent kills the child when done.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LocalApiServer } from '../local/kube/api-server.ts';
import { type KubeObject, ObjectStore } from '../local/kube/store.ts';
import { NAMESPACE, podName, seedPods } from './kube-pods.ts';

export { NAMESPACE, podName };
/** The bearer token the stand-in API server expects. */
export const TOKEN = 'bench';

/** Messages from the parent. */
export type ToStandIns =
  | { type: 'setup'; pods: number; latencyMs: number }
  | { type: 'check'; generation: number };

/** Messages to the parent. */
export type FromStandIns =
  | { type: 'ready'; url: string }
  | { type: 'checked'; problem?: string; startBytes: number; cpuSeconds: number }
  | { type: 'failed'; error: string };

const startsByRank = new Map<number, number[]>();
let startBytes = 0;

function startSimulatedAgents(latencyMs: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let status: Record<string, unknown>;
      if (req.url === '/start') {
        startBytes += raw.length;
        const body = JSON.parse(raw.toString('utf8')) as { rank: number; faultCount: number };
        const seen = startsByRank.get(body.rank) ?? [];
        seen.push(body.faultCount);
        startsByRank.set(body.rank, seen);
        status = { status: 'running', reason: 'Running', faultCount: body.faultCount };
      } else if (req.url === '/stop') {
        status = { status: 'ready', reason: 'Stopped' };
      } else {
        res.writeHead(404).end();
        return;
      }
      const text = JSON.stringify(status);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      }, latencyMs);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function setup(pods: number, latencyMs: number): Promise<string> {
  const agents = await startSimulatedAgents(latencyMs);
  const port = (agents.address() as AddressInfo).port;
  const store = new ObjectStore({ historyLimit: 10 });
  store.create('namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NAMESPACE } as KubeObject['metadata'],
  });
  seedPods(store, pods);
  const server = new LocalApiServer({ store, token: TOKEN, proxy: () => ({ host: '127.0.0.1', port }) });
  return server.listen();
}

/** What is wrong with the starts the agents saw, or undefined when every rank started once at `generation`. */
function checkStarts(pods: number, generation: number): string | undefined {
  for (let rank = 0; rank < pods; rank++) {
    const seen = startsByRank.get(rank) ?? [];
    if (seen.length !== 1 || seen[0] !== generation) {
      return `rank ${rank} was started ${seen.length} times (generations ${JSON.stringify(seen)}), expected once at ${generation}`;
    }
  }
  if (startsByRank.size !== pods) return `${startsByRank.size} ranks started, expected ${pods}`;
  return undefined;
}

const send = (message: FromStandIns) => process.send?.(message);
let pods = 0;
let cpuAtReady: NodeJS.CpuUsage | undefined;
process.on('message', (message: ToStandIns) => {
  if (message.type === 'setup') {
    pods = message.pods;
    setup(message.pods, message.latencyMs).then(
      (url) => {
        cpuAtReady = process.cpuUsage();
        send({ type: 'ready', url });
      },
      (err: unknown) => send({ type: 'failed', error: String(err) }),
    );
  } else if (message.type === 'check') {
    const cpu = process.cpuUsage(cpuAtReady);
    const problem = checkStarts(pods, message.generation);
    send({
      type: 'checked',
      ...(problem ? { problem } : {}),
      startBytes,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    });
  }
});
// The parent's IPC channel closing means it is gone: nothing left to serve.
process.on('disconnect', () => process.exit(0));
