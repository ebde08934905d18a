/**
 * A real environment for the handler tests: the DynamoJobStore on dynalite, the KubeCluster adapter against
 * the local Kubernetes API server, and real `trainkeeper-agent` processes (test/agent/harness.ts) playing
 * the pods' containers. `kubelet()` plays the kubelet once: each new pod gets an agent (worker: the fake
 * worker `hang`), is bound to a node and marked Running with the agent as its `pods/proxy` target; pods
 * being deleted lose their agent and go. Only EventBridge and the metrics endpoint are recorded in memory
 * (no AWS here). Everything started is stopped by `stop()`.
 */
import { DynamoJobStore, ensureTable } from '../../adapters/dynamo/store.ts';
import { KubeCluster } from '../../adapters/kube/cluster.ts';
import { AGENT_ENV } from '../../core/agent-protocol.ts';
import type { JobEvent } from '../../core/job.ts';
import type { CounterTotal, JobRef } from '../../core/ports.ts';
import { loadConfig } from '../../functions/shell/config.ts';
import { memoryLogger } from '../../functions/shell/logger.ts';
import type { Deps } from '../../functions/shell/reconcile.ts';
import { AgentProc, cleanup, WORKER } from '../agent/harness.ts';
import { makeDocClient, startDynalite, startDynamoDbLocal } from '../support/dynamo.ts';
import { startTestKube, type TestKube } from '../support/local-api.ts';

export const NAMESPACE = 'team-a';
export const NODES = ['node-a', 'node-b', 'node-c', 'node-d'];

export interface Harness {
  deps: Deps;
  store: DynamoJobStore;
  kube: TestKube;
  log: ReturnType<typeof memoryLogger>;
  /** What went to the (recorded) EventBridge publisher. */
  published: { ref: JobRef; events: JobEvent[] }[];
  /** What went to the (recorded) metrics sink. */
  pushes: { counters: CounterTotal[]; gauges: CounterTotal[]; at: number }[];
  /** Agent per `namespace/pod`. */
  agents: Map<string, AgentProc>;
  /** One kubelet pass (see the module comment). */
  kubelet(): Promise<void>;
  /** Agent stdout lines of a pod so far. */
  linesOf(pod: string): string[];
  stop(): Promise<void>;
}

let tableSeq = 0;

/**
 * Starts dynalite, the local API server (namespaces `default` and `team-a` plus `options.namespaces`, four
 * HyperPod nodes). `env` overrides the handler configuration (e.g. `TRAINKEEPER_ACCESS`).
 */
export async function startHarness(
  env: Record<string, string> = {},
  options: { namespaces?: string[]; dynamo?: 'dynalite' | 'dynamodb-local' } = {},
): Promise<Harness> {
  // DynamoDB Local for tests whose point is the real conditional-write semantics under concurrency.
  const dynamo = options.dynamo === 'dynamodb-local' ? await startDynamoDbLocal() : await startDynalite();
  const doc = makeDocClient(dynamo.endpoint);
  const tableName = `tk-functions-${process.pid}-${tableSeq++}`;
  await ensureTable(doc, tableName);
  const clock = { now: () => Date.now() };
  const store = new DynamoJobStore({ client: doc, tableName, clock });
  const kube = await startTestKube({ namespaces: ['default', NAMESPACE, ...(options.namespaces ?? [])] });
  for (const [i, n] of NODES.entries()) {
    kube.addNode(
      n,
      { 'sagemaker.amazonaws.com/node-health-status': 'Schedulable' },
      true,
      `aws:///us-west-2a/i-0000000000000000${i}`,
    );
  }
  const cluster = new KubeCluster(kube.kc, {
    retryPolicy: { retries: 1, minDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 100 },
    agentTimeoutMs: 5000,
    defaultStopTimeoutSeconds: 5,
    stopMarginMs: 2000,
  });
  const published: Harness['published'] = [];
  const pushes: Harness['pushes'] = [];
  const log = memoryLogger();
  if (process.env.TK_TEST_DEBUG) {
    const error = log.error;
    log.error = (message, fields) => {
      console.error(message, JSON.stringify(fields));
      error(message, fields);
    };
  }
  let uid = 0;
  const deps: Deps = {
    store,
    timeline: store,
    metricStore: store,
    idempotency: store,
    cluster,
    events: {
      publish: async (ref, events) => {
        published.push({ ref, events });
      },
    },
    metrics: {
      recordDecision: async () => {},
      push: async (samples) => {
        pushes.push(samples);
      },
    },
    clock,
    ids: { uid: () => `uid-${process.pid}-${++uid}` },
    config: loadConfig({
      TRAINKEEPER_MODE: 'local',
      TRAINKEEPER_TABLE: tableName,
      TRAINKEEPER_KUBE_ENDPOINT: 'https://127.0.0.1:1',
      TRAINKEEPER_ALLOWED_NAMESPACES: `default,${NAMESPACE}`,
      ...env,
    }),
    log,
  };
  const agents = new Map<string, AgentProc>();
  let nextNode = 0;
  const kubelet = async () => {
    for (const pod of kube.store.list('pods')) {
      const ns = pod.metadata.namespace as string;
      const name = pod.metadata.name;
      const key = `${ns}/${name}`;
      if ((pod.metadata as { deletionTimestamp?: string }).deletionTimestamp) {
        const agent = agents.get(key);
        agents.delete(key);
        kube.targets.delete(key);
        if (agent) await stopAgent(agent);
        kube.store.remove('pods', ns, name);
        continue;
      }
      if (agents.has(key)) continue;
      const labels = (pod.metadata.labels ?? {}) as Record<string, string>;
      const agent = await AgentProc.start(
        ['--nproc-per-node', '1', '--heartbeat-interval', '0.2', WORKER, 'hang'],
        {
          [AGENT_ENV.jobName]: labels['trainkeeper.dev/job'] ?? '',
          [AGENT_ENV.namespace]: ns,
          [AGENT_ENV.podName]: name,
          [AGENT_ENV.podIp]: '127.0.0.1',
          [AGENT_ENV.nodeName]: NODES[nextNode % NODES.length] as string,
        },
      );
      agents.set(key, agent);
      kube.targets.set(key, agent.port);
      kube.runPod(ns, name, NODES[nextNode++ % NODES.length] as string, '127.0.0.1');
    }
  };
  return {
    deps,
    store,
    kube,
    log,
    published,
    pushes,
    agents,
    kubelet,
    linesOf: (pod) => agents.get(`${NAMESPACE}/${pod}`)?.lines.slice() ?? [],
    async stop() {
      for (const agent of agents.values()) await stopAgent(agent);
      agents.clear();
      await cleanup();
      await kube.stop();
      await dynamo.stop();
    },
  };
}

/** SIGTERM lets the agent stop its worker process group; SIGKILL after 5 s only if it hangs. */
async function stopAgent(agent: AgentProc): Promise<void> {
  const timer = setTimeout(() => agent.proc.kill('SIGKILL'), 5000);
  await agent.kill('SIGTERM');
  clearTimeout(timer);
}
