/**
 * Process-level restart of a 2,000-pod job through the Kubernetes adapter: `/stop` then `/start` to every
 * pod through `pods/proxy`, against the local API server with 20 ms added latency per request.
 *
 * Agents are SIMULATED: the pods exist in the API server but no kubelet runs them; the proxy forwards to
 * one in-process stub HTTP endpoint that answers like an agent (stop → ready, start → running). What is
 * measured is the control plane's side: API calls per pod, fan-out concurrency and wall time.
 * Targets: < 10 s and at most 2 API calls per pod. Figures are printed, not asserted.
 * `KUBE_BENCH_LATENCY_MS` overrides the added latency (0 shows the pure CPU cost of the fan-out).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { kubeClusterFromConfig } from '../adapters/kube/cluster.ts';
import { LocalApiServer } from '../local/kube/api-server.ts';
import { ObjectStore } from '../local/kube/store.ts';
import { kubeConfigFor } from '../test/support/local-api.ts';
import { seedPods } from './kube-pods.ts';
import { loadLine, printTable } from './support.ts';

const PODS = 2_000;
const LATENCY_MS = Number(process.env.KUBE_BENCH_LATENCY_MS ?? 20);
const CONCURRENCIES = [16, 64, 128];

/** The stub agent: answers every proxied call at once, as an idle agent would. */
function startStubAgent(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString()) as { faultCount?: number })
        : {};
      const status =
        req.url === '/start'
          ? { status: 'running', reason: 'Running', faultCount: body.faultCount ?? 0 }
          : { status: 'ready', reason: 'Stopped' };
      const text = JSON.stringify(status);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export default async function bench(): Promise<void> {
  const agent = await startStubAgent();
  const agentPort = (agent.address() as AddressInfo).port;
  const store = new ObjectStore({ historyLimit: 10 });
  store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } as never });
  const server = new LocalApiServer({
    store,
    token: 'bench',
    latencyMs: LATENCY_MS,
    proxy: () => ({ host: '127.0.0.1', port: agentPort }),
  });
  const url = await server.listen();
  const names = seedPods(store, PODS);

  console.log(
    `restart of a ${PODS}-pod job: /stop + /start per pod through pods/proxy, local API server with ${LATENCY_MS} ms latency per request`,
  );
  console.log(
    'NOTE: agents are SIMULATED (no kubelet; the proxy forwards to one in-process stub agent endpoint)',
  );
  const rows: Record<string, string | number>[] = [];
  try {
    for (const concurrency of CONCURRENCIES) {
      const cluster = kubeClusterFromConfig(kubeConfigFor(url, 'bench'), { agentConcurrency: concurrency });
      const t0 = performance.now();
      const stopped = await cluster.stopAgents('team-a', names, { timeout: 15 });
      const t1 = performance.now();
      const started = await cluster.startAgents(
        'team-a',
        names.map((pod, rank) => ({
          pod,
          body: { rank, nnodes: PODS, faultCount: 1, master_addr: 'llama-pods-0.llama', master_port: 29500 },
        })),
      );
      const t2 = performance.now();
      cluster.close();
      const ok = [...stopped, ...started].filter((r) => r.ok).length;
      rows.push({
        concurrency,
        'stop (s)': ((t1 - t0) / 1000).toFixed(2),
        'start (s)': ((t2 - t1) / 1000).toFixed(2),
        'total (s)': ((t2 - t0) / 1000).toFixed(2),
        'API calls': cluster.stats.totalCalls(),
        'calls/pod': (cluster.stats.totalCalls() / PODS).toFixed(2),
        'ok answers': `${ok}/${2 * PODS}`,
        'target <10 s, <=2 calls/pod':
          (t2 - t0) / 1000 < 10 && cluster.stats.totalCalls() / PODS <= 2 ? 'met' : 'MISSED',
      });
    }
    printTable(
      Object.keys(rows[0] ?? {}),
      rows.map((r) => Object.values(r).map(String)),
    );
    // Client, API server and stub agent share this process; on a shared machine the load explains spread.
    console.log(loadLine());
  } finally {
    await server.close();
    await new Promise<void>((r) => agent.close(() => r()));
  }
}
