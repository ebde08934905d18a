/**
 * The local Kubernetes API server (local/kube) for the adapter's contract tests, without a kubelet: the
 * test plays the kubelet through the store (binds pods, sets status) and decides where `pods/proxy`
 * goes (`targets`: pod name → loopback port of a real agent or stub HTTP server).
 */
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { LocalApiServer } from '../../local/kube/api-server.ts';
import { type KubeObject, ObjectStore } from '../../local/kube/store.ts';

/** A running local API server with a KubeConfig pointing at it. Call `stop()` in afterAll/afterEach. */
export interface TestKube {
  server: LocalApiServer;
  store: ObjectStore;
  kc: KubeConfig;
  /** `namespace/pod` → loopback port the proxy forwards to; absent = 503 from the proxy. */
  targets: Map<string, number>;
  /** Plays the kubelet: binds the pod to `node` and marks it Running with `ip`. */
  runPod(namespace: string, name: string, node: string, ip?: string): void;
  addNode(name: string, labels?: Record<string, string>, ready?: boolean, providerID?: string): void;
  stop(): Promise<void>;
}

/** A KubeConfig as the adapter gets one in EKS (server + bearer token), pointing at `url`. */
export function kubeConfigFor(url: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: url, skipTLSVerify: true }],
    users: [{ name: 'trainkeeper', token }],
    contexts: [{ name: 'local', cluster: 'local', user: 'trainkeeper' }],
    currentContext: 'local',
  });
  return kc;
}

/** Starts the server on a free loopback port with namespaces `namespaces`. */
export async function startTestKube(
  options: { latencyMs?: number; namespaces?: string[] } = {},
): Promise<TestKube> {
  const store = new ObjectStore();
  const token = randomUUID();
  const targets = new Map<string, number>();
  const server = new LocalApiServer({
    store,
    token,
    ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}),
    proxy: (pod) => {
      const port = targets.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
      return port === undefined ? undefined : { host: '127.0.0.1', port };
    },
  });
  const url = await server.listen();
  for (const ns of options.namespaces ?? ['default']) {
    if (!store.get('namespaces', undefined, ns)) {
      store.create('namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns } as KubeObject['metadata'],
      });
    }
  }
  return {
    server,
    store,
    kc: kubeConfigFor(url, token),
    targets,
    runPod(namespace, name, node, ip = '10.0.0.1') {
      const pod = store.mustGet('pods', namespace, name);
      const containers = ((pod.spec?.containers as { name: string }[] | undefined) ?? []).map((c) => ({
        name: c.name,
        ready: true,
        restartCount: 0,
        state: { running: { startedAt: new Date().toISOString() } },
      }));
      store.update('pods', {
        ...pod,
        spec: { ...pod.spec, nodeName: node },
        status: { phase: 'Running', podIP: ip, containerStatuses: containers },
      });
    },
    addNode(name, labels = {}, ready = true, providerID) {
      store.create('nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: { 'kubernetes.io/hostname': name, ...labels },
        } as unknown as KubeObject['metadata'],
        spec: providerID ? { providerID } : {},
        status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
      });
    },
    stop: () => server.close(),
  };
}
