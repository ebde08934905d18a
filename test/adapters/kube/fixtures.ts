/**
 * Job specs for the kube adapter tests: a plain JobSpec value (as `parseJobManifest` would produce), with
 * overrides for the case at hand.
 */
import type { PodPlan } from '../../../core/actions.ts';
import type { JobSpec, PodTemplateSpec } from '../../../core/spec/types.ts';

/** A two-replica job with one spare, running `command` in a single container named `trainer`. */
export function jobSpec(overrides: Partial<JobSpec> = {}, template?: PodTemplateSpec): JobSpec {
  return {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    name: 'llama',
    namespace: 'team-a',
    labels: {},
    annotations: {},
    nprocPerNode: 2,
    replicaSpecs: [
      {
        name: 'pods',
        replicas: 2,
        spares: 1,
        template: template ?? {
          metadata: { labels: { app: 'llama' } },
          spec: { containers: [{ name: 'trainer', image: 'trainer:1', command: ['trainkeeper-agent'] }] },
        },
      },
    ],
    runPolicy: {
      cleanPodPolicy: 'All',
      ttlSecondsAfterFinished: 0,
      suspend: false,
      logMonitoringConfiguration: [],
    },
    trainkeeper: { presets: [] },
    ...overrides,
  };
}

/** A plan for index `index` of replica `pods`, generation `generation`. */
export function plan(index: number, generation = 0, extra: Partial<PodPlan> = {}): PodPlan {
  return {
    name: `llama-pods-${index}-g${generation}`,
    replica: 'pods',
    index,
    generation,
    spare: false,
    avoidNodes: [],
    ...extra,
  };
}
