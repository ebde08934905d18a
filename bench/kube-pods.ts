/**
 * The pods the Kubernetes benches restart (bench/kube.bench.ts, bench/restart-scale-stand-ins.ts): one job of
 * the adapter tests' fixture spec, put straight into the local API server's store. Side-effect free, so a
 * bench may import it without the stand-ins' IPC handlers.
 */
import { buildPod } from '../adapters/kube/pod-builder.ts';
import type { KubeObject, ObjectStore } from '../local/kube/store.ts';
import { jobSpec } from '../test/adapters/kube/fixtures.ts';

/** The namespace of the measured job's pods. */
export const NAMESPACE = 'team-a';
/** Pod name of rank `index` at generation 0. */
export const podName = (index: number): string => `llama-pods-${index}-g0`;

/**
 * Puts `count` pods of the fixture job (`podName(0…count−1)`) into the local API server's store directly: the
 * benches measure restarts, not the pods' creation. Returns their names.
 */
export function seedPods(store: ObjectStore, count: number): string[] {
  const spec = jobSpec({ replicaSpecs: [{ ...jobSpec().replicaSpecs[0]!, replicas: count, spares: 0 }] });
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    const plan = {
      name: podName(index),
      replica: 'pods',
      index,
      generation: 0,
      spare: false,
      avoidNodes: [],
    };
    store.create('pods', buildPod(spec, plan) as unknown as KubeObject);
    names.push(plan.name);
  }
  return names;
}
