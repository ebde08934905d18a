/**
 * Fault injection for the local control plane (`trainkeeper local chaos`), a first-class tool rather than
 * a test hack: the demo, the end-to-end suite and users trying their rules all use it.
 *
 * | fault        | how                                                                              | what a real cluster sees  |
 * |--------------|----------------------------------------------------------------------------------|---------------------------|
 * | `crash`      | chaos file: the rank prints a traceback and exits non-zero                       | a worker crash            |
 * | `hang`       | chaos file: the rank stops logging and blocks (its peers block in the all-reduce) | a hung collective         |
 * | `spike`      | chaos file: loss × 10 for N steps                                                | a loss spike              |
 * | `slow`       | chaos file: throughput at 5 % for N steps                                        | a straggler / slow node   |
 * | `kill-pod`   | Kubernetes API: delete the rank's pod with grace period 0                        | a pod killed / evicted    |
 * | `node-fault` | Kubernetes API: label the rank's node `UnschedulablePendingReplacement`          | HyperPod health agent     |
 *
 * Chaos files (`<TRAINKEEPER_CHAOS_DIR>/<namespace>/<job>/rank-<R>.json`) are read by the example trainers
 * (examples/trainers/README.md); the local kubelet sets `TRAINKEEPER_CHAOS_DIR` for every pod. `kill-pod` and `node-fault` go through the Kubernetes API
 * only, so they work against any cluster the kubeconfig points at.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { NODE_HEALTH_LABEL } from '../core/observations.ts';

export const CHAOS_FAULTS = [
  'crash',
  'hang',
  'spike',
  'slow',
  'kill-pod',
  'node-fault',
  'node-heal',
] as const;
export type ChaosFault = (typeof CHAOS_FAULTS)[number];

export interface ChaosTarget {
  /** The TrainKeeper API (for the job's pods, ranks and nodes). */
  apiUrl: string;
  kubeconfigYaml: string;
  chaosDir: string;
  namespace: string;
  name: string;
}

export interface ChaosOptions {
  /** Global rank to hit (crash/hang/spike/slow) or whose pod/node to hit. Default 0. */
  rank?: number;
  /** For spike/slow. Default 5. */
  steps?: number;
  /** For crash. Default 1. */
  exitCode?: number;
  /** For node-fault. Default `UnschedulablePendingReplacement`. */
  health?: string;
  /** For node-heal: the node to label `Schedulable` again. Default every node not labelled so. */
  node?: string;
}

export interface ChaosResult {
  fault: ChaosFault;
  /** When the fault was injected (epoch ms): the baseline of the detection latency. */
  at: number;
  /** What was hit, for humans: `rank 1`, `pod demo-pods-0-0`, `node node-2`. */
  target: string;
  pod?: string;
  node?: string;
}

interface JobPods {
  nprocPerNode: number;
  pods: { name: string; rank: number | null; node?: string; spare: boolean }[];
}

async function jobPods(target: ChaosTarget): Promise<JobPods> {
  const res = await fetch(`${target.apiUrl}/jobs/${target.namespace}/${target.name}`);
  if (!res.ok) throw new Error(`job ${target.namespace}/${target.name}: ${res.status} ${await res.text()}`);
  const doc = (await res.json()) as {
    spec?: { nprocPerNode?: number | string };
    status: { pods: JobPods['pods'] };
  };
  const nproc = Number(doc.spec?.nprocPerNode);
  return { nprocPerNode: Number.isInteger(nproc) && nproc > 0 ? nproc : 1, pods: doc.status.pods };
}

/** Writes a chaos file atomically (temp + rename), so a trainer never reads half of it. */
async function writeChaosFile(
  target: ChaosTarget,
  rank: number,
  body: Record<string, unknown>,
): Promise<void> {
  const dir = join(target.chaosDir, target.namespace, target.name);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `rank-${rank}.json`);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(body));
  await rename(tmp, path);
}

/**
 * Labels a node (or every node not labelled so) `Schedulable` again, as HyperPod's health agent does after
 * a repair or a passed deep health check: capacity comes back (elastic jobs grow after their delay).
 */
async function healNodes(target: ChaosTarget, node: string | undefined): Promise<ChaosResult> {
  const kc = new KubeConfig();
  kc.loadFromString(target.kubeconfigYaml);
  const core = kc.makeApiClient(CoreV1Api);
  const names = node
    ? [node]
    : (await core.listNode({})).items
        .filter((n) => (n.metadata?.labels?.[NODE_HEALTH_LABEL] ?? 'Schedulable') !== 'Schedulable')
        .map((n) => n.metadata?.name ?? '')
        .filter((n) => n !== '');
  const at = Date.now();
  for (const name of names) {
    await core.patchNode(
      { name, body: { metadata: { labels: { [NODE_HEALTH_LABEL]: 'Schedulable' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
  return {
    fault: 'node-heal',
    at,
    target: names.length > 0 ? `node ${names.join(', ')}` : 'no node',
    ...(names.length === 1 ? { node: names[0] } : {}),
  };
}

/** Injects one fault into a running job. */
export async function injectChaos(
  target: ChaosTarget,
  fault: ChaosFault,
  options: ChaosOptions = {},
): Promise<ChaosResult> {
  const rank = options.rank ?? 0;
  if (fault === 'node-heal') return healNodes(target, options.node);
  switch (fault) {
    case 'crash':
      await writeChaosFile(target, rank, { fault, exitCode: options.exitCode ?? 1 });
      return { fault, at: Date.now(), target: `rank ${rank}` };
    case 'hang':
      await writeChaosFile(target, rank, { fault });
      return { fault, at: Date.now(), target: `rank ${rank}` };
    case 'spike':
    case 'slow':
      await writeChaosFile(target, rank, { fault, steps: options.steps ?? 5 });
      return { fault, at: Date.now(), target: `rank ${rank}` };
    case 'kill-pod':
    case 'node-fault': {
      const { nprocPerNode, pods } = await jobPods(target);
      const groupRank = Math.floor(rank / nprocPerNode);
      const pod = pods.find((p) => p.rank === groupRank);
      if (!pod) throw new Error(`no pod holds rank ${rank} of ${target.namespace}/${target.name}`);
      const kc = new KubeConfig();
      kc.loadFromString(target.kubeconfigYaml);
      const core = kc.makeApiClient(CoreV1Api);
      if (fault === 'kill-pod') {
        const at = Date.now();
        await core.deleteNamespacedPod({
          namespace: target.namespace,
          name: pod.name,
          gracePeriodSeconds: 0,
        });
        return {
          fault,
          at,
          target: `pod ${pod.name}`,
          pod: pod.name,
          ...(pod.node ? { node: pod.node } : {}),
        };
      }
      if (!pod.node) throw new Error(`pod ${pod.name} is not on a node yet`);
      const at = Date.now();
      await core.patchNode(
        {
          name: pod.node,
          body: {
            metadata: {
              labels: { [NODE_HEALTH_LABEL]: options.health ?? 'UnschedulablePendingReplacement' },
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return { fault, at, target: `node ${pod.node}`, pod: pod.name, node: pod.node };
    }
  }
}
