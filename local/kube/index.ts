/**
 * The local Kubernetes: API server + scheduler + process kubelet on fake HyperPod-like nodes, started in one
 * call. It is the cluster of `npm run demo` and of every integration test; the real
 * `@kubernetes/client-node` (and kubectl) talk to it over HTTP with a bearer token.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
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
  /**
   * Where each pod's own working directory is made (`<podsDir>/<namespace>/<name>-<uid>`, removed with the
   * pod). Default: a new directory under the OS temp dir, removed by `stop()`.
   */
  podsDir?: string;
  /** Files and directories copied into every pod's directory at start (the image's contents, locally). */
  imageFiles?: string[];
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
  /** Writes `kubeconfigYaml()` to `file` readable by the user only (see writeSecretFile). */
  writeKubeconfig(file: string): Promise<void>;
  server: LocalApiServer;
  cluster: LocalCluster;
  kubelet: ProcessKubelet;
  /** Subscribes to every container output line; returns the unsubscribe function. */
  onLog(listener: (event: PodLogEvent) => void): () => void;
  /** The node dies: NotReady, its processes SIGKILLed, its pods Failed/NodeLost. */
  loseNode(name: string): void;
  /**
   * The kernel's OOM killer takes the pod's container: SIGKILLed, reported `OOMKilled` (exit code 137).
   * False when the pod has no running container.
   */
  oomKill(namespace: string, pod: string): boolean;
  /** Changes node labels (`null` removes one), as HyperPod's health agent does. */
  setNodeLabels(name: string, labels: Record<string, string | null>): KubeObject;
  /** Kills every process it started and closes every socket. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Writes a file holding a secret (the kubeconfig's bearer token) so that only the user can read it:
 * mode 0600, written to a temporary name and renamed (an existing file's looser mode never shows the new
 * content). The directory is made 0700 when missing; one that others may write to without the sticky bit
 * is refused, since anyone could swap the file there.
 */
export async function writeSecretFile(file: string, content: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { mode } = await stat(dir);
  if (process.platform !== 'win32' && (mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    throw new Error(`refusing to write ${file}: ${dir} is writable by other users`);
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600); // the umask may have narrowed it further, never widened: make it exact
  await rename(tmp, file);
}

/** Starts a local Kubernetes on a free loopback port. */
export async function startLocalKube(opts: LocalKubeOptions = {}): Promise<LocalKube> {
  const token = opts.token ?? randomBytes(16).toString('hex');
  const tls = opts.tls === false ? undefined : selfSignedCertificate();
  const caData = tls ? Buffer.from(tls.cert).toString('base64') : undefined;
  const cluster = new LocalCluster({
    nodes: opts.nodes ?? 2,
    ...(opts.podCapacity !== undefined ? { podCapacity: opts.podCapacity } : {}),
    ...(opts.podsDir !== undefined ? { podsDir: opts.podsDir } : {}),
    ...(opts.imageFiles !== undefined ? { imageFiles: opts.imageFiles } : {}),
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
  const kubeconfigYaml = () =>
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
    });
  let stopping: Promise<void> | undefined;
  return {
    url,
    token,
    ca: tls?.cert,
    caData,
    kubeconfigYaml,
    writeKubeconfig: (file) => writeSecretFile(file, kubeconfigYaml()),
    server,
    cluster,
    kubelet: cluster.kubelet,
    onLog: (listener) => cluster.kubelet.onLog(listener),
    loseNode: (name) => cluster.loseNode(name),
    oomKill: (namespace, pod) => cluster.kubelet.oomKill(namespace, pod),
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
