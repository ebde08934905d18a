/**
 * The `Cluster` port end to end on the full local Kubernetes (API server + scheduler + process kubelet):
 * pods built by the pod builder are scheduled by their affinity, run the real `trainkeeper-agent` as their
 * container, and are driven through `pods/proxy`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type KubeCluster, kubeClusterFromConfig } from '../../../adapters/kube/cluster.ts';
import { NODE_HEALTH_LABEL } from '../../../core/observations.ts';
import type { PodTemplateSpec } from '../../../core/spec/types.ts';
import { eventually, useLocalKube } from '../../support/kube.ts';
import { jobSpec, plan } from './fixtures.ts';

const NS = 'default';
const agentBin = fileURLToPath(new URL('../../../bin/trainkeeper-agent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tk-kube-e2e-'));
const local = useLocalKube({ nodes: 3 });
let cluster: KubeCluster | undefined;

afterEach(() => cluster?.close());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const agentTemplate = (): PodTemplateSpec => ({
  spec: {
    terminationGracePeriodSeconds: 5,
    containers: [
      {
        name: 'trainer',
        image: 'trainer:1',
        command: [
          process.execPath,
          agentBin,
          '--rank-ip-file',
          join(dir, 'ips-$(TRAINKEEPER_POD_NAME).json'),
          '--shutdown-timeout',
          '2',
          '--nproc-per-node',
          '1',
          'sleep',
          '300',
        ],
      },
    ],
  },
});

describe('KubeCluster on the local Kubernetes', () => {
  it('runs a job: pods one per node, agents started and stopped through the proxy, a node fault seen', async () => {
    const c = kubeClusterFromConfig(local.kc, {
      retryPolicy: { retries: 3, minDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1000 },
    });
    cluster = c;
    const spec = jobSpec({ namespace: NS }, agentTemplate());
    const ref = { namespace: NS, name: spec.name };
    await c.ensureService(spec);
    await c.createPods(spec, [plan(0), plan(1)]);

    const running = await eventually(
      async () => {
        const pods = await c.listJobPods(ref);
        return pods.length === 2 && pods.every((p) => p.phase === 'Running') && pods;
      },
      20_000,
      'both pods Running',
    );
    const nodes = running.map((p) => p.nodeName);
    expect(new Set(nodes).size).toBe(2);

    const names = running.map((p) => p.name).sort();
    await eventually(
      async () => (await c.agentStatus(NS, names)).every((r) => r.ok) || undefined,
      20_000,
      'agents up',
    );
    const started = await c.startAgents(
      NS,
      names.map((pod, rank) => ({
        pod,
        body: { rank, nnodes: 2, faultCount: 0, master_addr: '127.0.0.1', master_port: 29500 },
      })),
    );
    expect(started.map((r) => r.ok && r.status.status)).toEqual(['running', 'running']);
    const stopped = await c.stopAgents(NS, names, { timeout: 2 });
    expect(stopped.map((r) => r.ok && r.status.status)).toEqual(['ready', 'ready']);

    // HyperPod marks the node of rank 1 for reboot: the adapter sees it.
    const victim = running.find((p) => p.name === 'llama-pods-1-g0')?.nodeName as string;
    local.kube.setNodeLabels(victim, { [NODE_HEALTH_LABEL]: 'UnschedulablePendingReboot' });
    const [observed] = await c.getNodes([victim]);
    expect(observed).toMatchObject({ name: victim, ready: true, health: 'UnschedulablePendingReboot' });
    expect(observed?.instanceId).toMatch(/^i-/);
    expect((await c.listNodes()).map((n) => n.name).sort()).toEqual(['node-1', 'node-2', 'node-3']);

    // The node dies: its pod is unreachable, a graceful delete hangs, a force delete clears it.
    local.kube.loseNode(victim);
    const [lost] = await c.agentStatus(NS, ['llama-pods-1-g0']);
    expect(lost).toMatchObject({ ok: false, unreachable: true });
    await c.deletePods(NS, ['llama-pods-1-g0'], { gracePeriodSeconds: 30 });
    await c.deletePods(NS, ['llama-pods-1-g0'], { force: true });
    await eventually(
      async () => !(await c.listJobPods(ref)).some((p) => p.name === 'llama-pods-1-g0'),
      10_000,
      'lost pod gone',
    );

    // Its replacement avoids the dead node and the healthy pod's node.
    await c.createPods(spec, [plan(1, 1, { avoidNodes: [victim] })]);
    const replacement = await eventually(
      async () => {
        const p = (await c.listJobPods(ref)).find((x) => x.name === 'llama-pods-1-g1');
        return p?.phase === 'Running' && p;
      },
      20_000,
      'replacement Running',
    );
    expect(replacement.nodeName).not.toBe(victim);
    expect(replacement.nodeName).not.toBe(running.find((p) => p.name === 'llama-pods-0-g0')?.nodeName);

    await c.shutdownAgents(NS, ['llama-pods-0-g0', 'llama-pods-1-g1']);
    await c.deletePods(NS, ['llama-pods-0-g0', 'llama-pods-1-g1'], { gracePeriodSeconds: 1 });
    await eventually(async () => (await c.listJobPods(ref)).length === 0, 15_000, 'pods deleted');
  });
});
