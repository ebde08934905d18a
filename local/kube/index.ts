/**
 * The local Kubernetes: API server + scheduler + process kubelet on fake HyperPod-like nodes, started in one
 * call. It is the cluster of `npm run demo` and of every integration test; the real
 * `@kubernetes/client-node` (and kubectl) talk to it over HTTP with a bearer token.
 */
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { LocalApiServer } from './api-server.ts';
import { LocalCluster, type NodeSpec } from './cluster.ts';
import type { PodLogEvent, ProcessKubelet } from './kubelet.ts';
import type { KubeObject } from './store.ts';
import { selfSignedCertificate } from './tls.ts';

export type { FaultSpec, LocalApiServer } from './api-server.ts';
export { HEALTH_LABEL, LocalCluster, type NodeSpec } from './cluster.ts';
export type { PodLogEvent, ProcessKubelet } from './kubelet.ts';

/** Options of startLocalKube. */
export interface LocalKubeOptions {
  /** A node count (`node-1` … `node-N`) or explicit nodes. Default 2. */
  nodes?: number | NodeSpec[];
  /** The bearer token clients must send. Default: a random one. */
  token?: string;
  /** Working directory of pod processes (the demo uses the repo root). Default: the current directory. */
  workDir?: string;
  /** Directories put first on pod processes' PATH. */
  pathPrepend?: string[];
  /** Pods per node. Default 1. */
  podCapacity?: number;
  /** Added latency per API request. */
  latencyMs?: number;
  /** Extra environment for every pod process. */
  env?: Record<string, string>;
  /** Watch BOOKMARK interval. Default 5000 ms. */
  bookmarkIntervalMs?: number;
  /** First restart back-off of crashed containers. Default 1000 ms. */
  restartBackoffMs?: number;
  /**
   * Serve HTTPS with a fresh self-signed certificate (default true). Real clients need it: kubectl sends no
   * bearer token over HTTP and client-node wants skipTLSVerify for `http:`. `false` serves plain HTTP.
   */
  tls?: boolean;
}

/** A running local Kubernetes. */
export interface LocalKube {
  /** Base URL of the API server (`https://127.0.0.1:<port>`, or `http:` with `tls: false`). */
  url: string;
  token: string;
  /** The server's self-signed certificate (PEM), which is also its CA; undefined with `tls: false`. */
  ca: string | undefined;
  /** `ca` base64-encoded, as EKS DescribeCluster's `certificateAuthority.data` and kubeconfig's CA data. */
  caData: string | undefined;
  /** A kubeconfig for kubectl or `KubeConfig.loadFromString` (context `trainkeeper-local`). */
  kubeconfigYaml(): string;
  server: LocalApiServer;
  cluster: LocalCluster;
  kubelet: ProcessKubelet;
  /** Subscribes to every container output line; returns the unsubscribe function. */
  onLog(listener: (event: PodLogEvent) => void): () => void;
  /** The node dies: NotReady, its processes SIGKILLed, its pods Failed/NodeLost. */
  loseNode(name: string): void;
  /** Changes node labels (`null` removes one), as HyperPod's health agent does. */
  setNodeLabels(name: string, labels: Record<string, string | null>): KubeObject;
  /** Kills every process it started and closes every socket. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a local Kubernetes on a free loopback port. */
export async function startLocalKube(opts: LocalKubeOptions = {}): Promise<LocalKube> {
  const token = opts.token ?? randomBytes(16).toString('hex');
  const tls = opts.tls === false ? undefined : selfSignedCertificate();
  const caData = tls ? Buffer.from(tls.cert).toString('base64') : undefined;
  const cluster = new LocalCluster({
    nodes: opts.nodes ?? 2,
    ...(opts.podCapacity !== undefined ? { podCapacity: opts.podCapacity } : {}),
    ...(opts.workDir !== undefined ? { workDir: opts.workDir } : {}),
    ...(opts.pathPrepend !== undefined ? { pathPrepend: opts.pathPrepend } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.restartBackoffMs !== undefined ? { restartBackoffMs: opts.restartBackoffMs } : {}),
  });
  const server = new LocalApiServer({
    store: cluster.store,
    token,
    logs: cluster.kubelet,
    proxy: cluster.kubelet.proxyTarget,
    ...(opts.latencyMs !== undefined ? { latencyMs: opts.latencyMs } : {}),
    ...(opts.bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
    ...(tls ? { tls } : {}),
  });
  let url: string;
  try {
    url = await server.listen();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    token,
    ca: tls?.cert,
    caData,
    kubeconfigYaml: () =>
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'trainkeeper-local',
            cluster: caData ? { server: url, 'certificate-authority-data': caData } : { server: url },
          },
        ],
        users: [{ name: 'trainkeeper-local', user: { token } }],
        contexts: [
          { name: 'trainkeeper-local', context: { cluster: 'trainkeeper-local', user: 'trainkeeper-local' } },
        ],
        'current-context': 'trainkeeper-local',
      }),
    server,
    cluster,
    kubelet: cluster.kubelet,
    onLog: (listener) => cluster.kubelet.onLog(listener),
    loseNode: (name) => cluster.loseNode(name),
    setNodeLabels: (name, labels) => cluster.setNodeLabels(name, labels),
    stop: () => {
      stopping ??= (async () => {
        try {
          await cluster.stop();
        } finally {
          await server.close();
        }
      })();
      return stopping;
    },
  };
}
