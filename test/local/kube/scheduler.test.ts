/**
 * The local scheduler's predicates, driven through the real @kubernetes/client-node: nodeSelector, required
 * node affinity on node labels (HyperPod's health label included), pod anti-affinity on
 * kubernetes.io/hostname, node capacity, cordoned and lost nodes, and retries when labels change.
 * Each case uses its own namespace and deletes its pods so the three one-pod nodes are free again.
 */
import { PatchStrategy, setHeaderOptions, type V1Affinity, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { eventually, useLocalKube } from '../../support/kube.ts';

const HEALTH = 'sagemaker.amazonaws.com/node-health-status';
const env = useLocalKube({
  nodes: [
    { name: 'n1', labels: { pool: 'a' } },
    { name: 'n2', labels: { pool: 'a' } },
    { name: 'n3', labels: { pool: 'b', spare: 'true' } },
  ],
  restartBackoffMs: 50,
});

const pod = (
  name: string,
  spec: Partial<V1Pod['spec']> = {},
  labels: Record<string, string> = {},
): V1Pod => ({
  metadata: { name, labels },
  spec: {
    restartPolicy: 'Never',
    terminationGracePeriodSeconds: 0,
    containers: [{ name: 'main', command: ['sleep', '300'] }],
    ...spec,
  },
});

const nodeAffinity = (key: string, operator: string, values?: string[]): V1Affinity => ({
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key, operator, ...(values ? { values } : {}) }] }],
    },
  },
});

async function placement(namespace: string, name: string): Promise<string> {
  return eventually(
    async () => {
      const p = await env.core.readNamespacedPod({ namespace, name });
      return p.spec?.nodeName;
    },
    10_000,
    `${name} to be bound`,
  );
}

async function unschedulable(namespace: string, name: string): Promise<string> {
  return eventually(
    async () => {
      const p = await env.core.readNamespacedPod({ namespace, name });
      const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False');
      return c && !p.spec?.nodeName ? (c.message ?? '') : undefined;
    },
    10_000,
    `${name} to be reported Unschedulable`,
  );
}

async function cleanup(namespace: string): Promise<void> {
  const pods = await env.core.listNamespacedPod({ namespace });
  for (const p of pods.items) {
    await env.core.deleteNamespacedPod({ namespace, name: p.metadata!.name!, gracePeriodSeconds: 0 });
  }
}

describe('scheduling predicates', () => {
  it.each([
    ['a nodeSelector on the hostname', { nodeSelector: { 'kubernetes.io/hostname': 'n2' } }, ['n2']],
    ['node affinity In on a custom label', { affinity: nodeAffinity('pool', 'In', ['b']) }, ['n3']],
    ['node affinity NotIn', { affinity: nodeAffinity('pool', 'NotIn', ['a']) }, ['n3']],
    ['node affinity Exists', { affinity: nodeAffinity('spare', 'Exists') }, ['n3']],
    ['node affinity DoesNotExist', { affinity: nodeAffinity('spare', 'DoesNotExist') }, ['n1', 'n2']],
    [
      'node affinity on the hostname label',
      { affinity: nodeAffinity('kubernetes.io/hostname', 'In', ['n1']) },
      ['n1'],
    ],
  ])('binds a pod with %s only to a matching node', async (_name, spec, allowed) => {
    const ns = `pred-${allowed.join('')}-${Math.random().toString(36).slice(2, 6)}`;
    await env.core.createNamespacedPod({ namespace: ns, body: pod('p', spec as Partial<V1Pod['spec']>) });
    expect(allowed).toContain(await placement(ns, 'p'));
    await cleanup(ns);
  });

  it('keeps pods with required anti-affinity on kubernetes.io/hostname on different nodes, and the extra one Pending', async () => {
    const ns = 'anti';
    const anti: V1Affinity = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { job: 'j' } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    };
    // Capacity is one pod per node anyway; give n1 room for more so only anti-affinity keeps them apart.
    await env.core.patchNodeStatus(
      { name: 'n1', body: { status: { allocatable: { pods: '4' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    try {
      for (const name of ['a', 'b', 'c']) {
        await env.core.createNamespacedPod({
          namespace: ns,
          body: pod(name, { affinity: anti }, { job: 'j' }),
        });
      }
      const nodes = await Promise.all(['a', 'b', 'c'].map((n) => placement(ns, n)));
      expect(new Set(nodes).size).toBe(3);
      await env.core.createNamespacedPod({ namespace: ns, body: pod('d', { affinity: anti }, { job: 'j' }) });
      const message = await unschedulable(ns, 'd');
      expect(message).toContain("didn't match pod anti-affinity rules");
      // The same pod without anti-affinity fits next to one of them on n1 (capacity 4).
      await env.core.createNamespacedPod({ namespace: ns, body: pod('e', {}, { job: 'j' }) });
      expect(await placement(ns, 'e')).toBe('n1');
    } finally {
      await env.core.patchNodeStatus(
        { name: 'n1', body: { status: { allocatable: { pods: '1' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await cleanup(ns);
    }
  });

  it('leaves a pod Pending when every node is full and binds it once a pod goes away', async () => {
    const ns = 'capacity';
    for (const name of ['a', 'b', 'c'])
      await env.core.createNamespacedPod({ namespace: ns, body: pod(name) });
    await Promise.all(['a', 'b', 'c'].map((n) => placement(ns, n)));
    await env.core.createNamespacedPod({ namespace: ns, body: pod('d') });
    expect(await unschedulable(ns, 'd')).toContain('3 Too many pods');
    const freed = await placement(ns, 'b');
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'b', gracePeriodSeconds: 0 });
    expect(await placement(ns, 'd')).toBe(freed);
    await cleanup(ns);
  });

  it('retries an unschedulable pod when node health labels change, as HyperPod relabels nodes', async () => {
    const ns = 'health';
    const healthy = nodeAffinity(HEALTH, 'In', ['Schedulable']);
    for (const n of ['n1', 'n2', 'n3'])
      env.kube.setNodeLabels(n, { [HEALTH]: 'UnschedulablePendingReplacement' });
    try {
      await env.core.createNamespacedPod({ namespace: ns, body: pod('p', { affinity: healthy }) });
      expect(await unschedulable(ns, 'p')).toContain("3 node(s) didn't match Pod's node affinity/selector");
      // Relabel through the API, as the health agent does.
      await env.core.patchNode(
        { name: 'n2', body: { metadata: { labels: { [HEALTH]: 'Schedulable' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(await placement(ns, 'p')).toBe('n2');
    } finally {
      for (const n of ['n1', 'n2', 'n3']) env.kube.setNodeLabels(n, { [HEALTH]: 'Schedulable' });
      await cleanup(ns);
    }
  });

  it('skips cordoned nodes and nodes that are not Ready', async () => {
    const ns = 'cordon';
    await env.core.patchNode(
      { name: 'n1', body: { spec: { unschedulable: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    env.kube.cluster.loseNode('n2');
    try {
      await env.core.createNamespacedPod({ namespace: ns, body: pod('a') });
      expect(await placement(ns, 'a')).toBe('n3');
      await env.core.createNamespacedPod({ namespace: ns, body: pod('b') });
      const message = await unschedulable(ns, 'b');
      expect(message).toContain('1 node(s) were unschedulable');
      expect(message).toContain('1 node(s) were not ready');
      expect(message).toContain('1 Too many pods');
      env.kube.cluster.restoreNode('n2');
      expect(await placement(ns, 'b')).toBe('n2');
    } finally {
      await env.core.patchNode(
        { name: 'n1', body: { spec: { unschedulable: null } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await cleanup(ns);
    }
  });
});
