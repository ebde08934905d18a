import { describe, expect, it } from 'vitest';
import {
  buildPod,
  buildService,
  KUEUE,
  podGroupTotalCount,
  stableHostname,
} from '../../../adapters/kube/pod-builder.ts';
import { AGENT_ENV } from '../../../core/agent-protocol.ts';
import { ValidationError } from '../../../core/errors.ts';
import { NODE_HEALTH_LABEL, POD_LABELS } from '../../../core/observations.ts';
import type { PodTemplateSpec } from '../../../core/spec/types.ts';
import { jobSpec, plan } from './fixtures.ts';

// biome-ignore lint/suspicious/noExplicitAny: the test walks nested, untyped pod JSON
type Json = Record<string, any>;
const specOf = (pod: ReturnType<typeof buildPod>) => pod.spec as unknown as Json;
const envOf = (pod: ReturnType<typeof buildPod>, container = 0) =>
  Object.fromEntries(
    (specOf(pod).containers[container].env as Json[]).map((e) => [
      e.name,
      e.value ?? e.valueFrom.fieldRef.fieldPath,
    ]),
  );
const nodeTerms = (pod: ReturnType<typeof buildPod>) =>
  specOf(pod).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms as
    | Json[]
    | undefined;

const withSpec = (spec: Json): PodTemplateSpec => ({
  spec: { containers: [{ name: 'trainer', image: 't' }], ...spec },
});

describe('buildPod', () => {
  it('names the pod from the plan and places it in the job namespace', () => {
    const pod = buildPod(jobSpec(), plan(1, 3), {});
    expect(pod.metadata?.name).toBe('llama-pods-1-g3');
    expect(pod.metadata?.namespace).toBe('team-a');
  });

  it.each([
    ['a ranked pod', plan(0, 2), { index: '0', generation: '2', spare: 'false' }],
    ['a spare pod', plan(2, 5, { spare: true }), { index: '2', generation: '5', spare: 'true' }],
  ])('labels %s with its job, replica, index, generation, spare and HPJob', (_, p, want) => {
    const labels = buildPod(jobSpec(), p).metadata?.labels;
    expect(labels).toEqual({
      app: 'llama',
      [POD_LABELS.job]: 'llama',
      [POD_LABELS.replica]: 'pods',
      [POD_LABELS.index]: want.index,
      [POD_LABELS.generation]: want.generation,
      [POD_LABELS.spare]: want.spare,
      HPJob: 'llama',
    });
  });

  it('lets the identity labels win over a template label of the same name', () => {
    const tpl: PodTemplateSpec = {
      metadata: { labels: { [POD_LABELS.job]: 'other', team: 'a' } },
      spec: { containers: [{ name: 'c' }] },
    };
    const labels = buildPod(jobSpec({}, tpl), plan(0)).metadata?.labels;
    expect(labels?.[POD_LABELS.job]).toBe('llama');
    expect(labels?.team).toBe('a');
  });

  it('gives every container the agent environment, with pod name, IP and node from the downward API', () => {
    const tpl = withSpec({
      containers: [
        {
          name: 'a',
          env: [
            { name: 'NNODES', value: '99' },
            { name: 'KEEP', value: 'x' },
          ],
        },
        { name: 'b' },
      ],
    });
    const pod = buildPod(jobSpec({ nprocPerNode: 'gpu' }, tpl), plan(1));
    for (const i of [0, 1]) {
      expect(envOf(pod, i)).toMatchObject({
        [AGENT_ENV.jobName]: 'llama',
        [AGENT_ENV.namespace]: 'team-a',
        [AGENT_ENV.podName]: 'metadata.name',
        [AGENT_ENV.podIp]: 'status.podIP',
        [AGENT_ENV.nodeName]: 'spec.nodeName',
        [AGENT_ENV.replica]: 'pods',
        [AGENT_ENV.index]: '1',
        NNODES: '2',
        NPROC_PER_NODE: 'gpu',
      });
    }
    expect(envOf(pod, 0).KEEP).toBe('x');
    expect((specOf(pod).containers[0].env as Json[]).filter((e) => e.name === 'NNODES')).toHaveLength(1);
    expect(envOf(pod)[AGENT_ENV.agentPort]).toBeUndefined();
  });

  it.each([
    ['no ports', [{ name: 'c' }], [{ containerPort: 8080, protocol: 'TCP', name: 'agent' }]],
    [
      'another port',
      [{ name: 'c', ports: [{ containerPort: 29500 }] }],
      [{ containerPort: 29500 }, { containerPort: 8080, protocol: 'TCP', name: 'agent' }],
    ],
    ['the agent port already', [{ name: 'c', ports: [{ containerPort: 8080 }] }], [{ containerPort: 8080 }]],
    [
      'a port named agent on another number',
      [{ name: 'c', ports: [{ containerPort: 1, name: 'agent' }] }],
      [
        { containerPort: 1, name: 'agent' },
        { containerPort: 8080, protocol: 'TCP' },
      ],
    ],
  ])('declares container port 8080 when the template has %s', (_, containers, ports) => {
    const pod = buildPod(jobSpec({}, withSpec({ containers })), plan(0));
    expect(specOf(pod).containers[0].ports).toEqual(ports);
  });

  it('uses a non-default agent port for the container port and tells the agent through its env', () => {
    const pod = buildPod(jobSpec(), plan(0), { agentPort: 18080 });
    expect(specOf(pod).containers[0].ports).toEqual([
      { containerPort: 18080, protocol: 'TCP', name: 'agent' },
    ]);
    expect(envOf(pod)[AGENT_ENV.agentPort]).toBe('18080');
  });

  it('sets restartPolicy Never even when the template asks for another', () => {
    const pod = buildPod(jobSpec({}, withSpec({ restartPolicy: 'OnFailure' })), plan(0));
    expect(specOf(pod).restartPolicy).toBe('Never');
  });

  it.each([
    [
      'requires a Schedulable node when the template says nothing',
      withSpec({}),
      [],
      [[{ key: NODE_HEALTH_LABEL, operator: 'In', values: ['Schedulable'] }]],
    ],
    [
      'keeps away from the avoided nodes, sorted and deduplicated',
      withSpec({}),
      ['n2', 'n1', 'n2'],
      [
        [
          { key: NODE_HEALTH_LABEL, operator: 'In', values: ['Schedulable'] },
          { key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['n1', 'n2'] },
        ],
      ],
    ],
    [
      'leaves the health constraint to a template that sets its own',
      withSpec({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: NODE_HEALTH_LABEL, operator: 'Exists' }] }],
            },
          },
        },
      }),
      [],
      [[{ key: NODE_HEALTH_LABEL, operator: 'Exists' }]],
    ],
    [
      'leaves the health constraint to a template nodeSelector on that label',
      withSpec({ nodeSelector: { [NODE_HEALTH_LABEL]: 'Schedulable' } }),
      [],
      undefined,
    ],
    [
      'adds the requirements to every ORed selector term',
      withSpec({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'gpu', operator: 'In', values: ['a100'] }] },
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['x'] }] },
              ],
            },
          },
        },
      }),
      ['bad'],
      [
        [
          { key: 'gpu', operator: 'In', values: ['a100'] },
          { key: NODE_HEALTH_LABEL, operator: 'In', values: ['Schedulable'] },
          { key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['bad'] },
        ],
        [
          { key: NODE_HEALTH_LABEL, operator: 'In', values: ['Schedulable'] },
          { key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['bad'] },
        ],
      ],
    ],
  ])('%s', (_, tpl, avoidNodes, want) => {
    const terms = nodeTerms(buildPod(jobSpec({}, tpl), plan(0, 0, { avoidNodes })));
    expect(terms?.map((t) => t.matchExpressions)).toEqual(want);
  });

  it('spreads the job one pod per node unless the template has its own pod anti-affinity', () => {
    const ours = specOf(buildPod(jobSpec(), plan(0))).affinity.podAntiAffinity;
    expect(ours).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [
        {
          labelSelector: { matchLabels: { [POD_LABELS.job]: 'llama' } },
          topologyKey: 'kubernetes.io/hostname',
        },
      ],
    });
    const theirs = { preferredDuringSchedulingIgnoredDuringExecution: [] };
    const pod = buildPod(jobSpec({}, withSpec({ affinity: { podAntiAffinity: theirs } })), plan(0));
    expect(specOf(pod).affinity.podAntiAffinity).toEqual(theirs);
  });

  it('gives each index a generation-free hostname under the job subdomain', () => {
    const a = specOf(buildPod(jobSpec(), plan(0, 0)));
    const b = specOf(buildPod(jobSpec(), plan(0, 7)));
    expect([a.hostname, a.subdomain]).toEqual(['llama-pods-0', 'llama']);
    expect(b.hostname).toBe(a.hostname);
  });

  it.each([
    ['llama', 'pods', 0, 'llama-pods-0'],
    ['x'.repeat(60), 'pods', 0, undefined],
    ['Job', 'Worker', 3, 'job-worker-3'],
  ])('derives the stable hostname of %s/%s/%i', (job, replica, index, want) => {
    expect(stableHostname(job, replica, index)).toBe(want);
  });

  it.each([
    ['no queue label', {}, {}, undefined],
    [
      'a queue',
      { [KUEUE.queueName]: 'q1' },
      { [KUEUE.queueName]: 'q1', [KUEUE.podGroupName]: 'llama' },
      { [KUEUE.podGroupTotalCount]: '3' },
    ],
    [
      'a queue and a priority class',
      { [KUEUE.queueName]: 'q1', [KUEUE.priorityClass]: 'high' },
      { [KUEUE.queueName]: 'q1', [KUEUE.podGroupName]: 'llama', [KUEUE.priorityClass]: 'high' },
      { [KUEUE.podGroupTotalCount]: '3' },
    ],
  ])('adds Kueue plain pod-group metadata for a job with %s', (_, jobLabels, wantLabels, wantAnnotations) => {
    const pod = buildPod(jobSpec({ labels: jobLabels }), plan(0));
    expect(pod.metadata?.labels).toMatchObject(wantLabels);
    expect(Object.keys(pod.metadata?.labels ?? {}).filter((k) => k.startsWith('kueue'))).toHaveLength(
      Object.keys(wantLabels).length,
    );
    expect(pod.metadata?.annotations).toEqual(wantAnnotations);
  });

  it('counts replicas and spares of every replica spec in the pod group', () => {
    const spec = jobSpec();
    spec.replicaSpecs.push({ ...structuredClone(spec.replicaSpecs[0]!), name: 'b', replicas: 4, spares: 0 });
    expect(podGroupTotalCount(spec)).toBe(7);
  });

  it('does not modify the job spec template', () => {
    const spec = jobSpec();
    const before = structuredClone(spec);
    buildPod(spec, plan(0, 0, { avoidNodes: ['n1'] }));
    expect(spec).toEqual(before);
  });

  it.each([
    ['an unknown replica spec', jobSpec(), plan(0, 0, { replica: 'nope' }), 'spec.replicaSpecs'],
    [
      'a template without containers',
      jobSpec({}, { spec: { containers: [] } }),
      plan(0),
      'spec.replicaSpecs[0].template.spec.containers',
    ],
  ])('rejects %s with a field path', (_, spec, p, path) => {
    try {
      buildPod(spec, p);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues[0]?.path).toBe(path);
    }
  });
});

describe('buildService', () => {
  it('builds a headless service named after the job that selects its pods and publishes not-ready ones', () => {
    expect(buildService(jobSpec())).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'llama', namespace: 'team-a', labels: { [POD_LABELS.job]: 'llama', HPJob: 'llama' } },
      spec: {
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: { [POD_LABELS.job]: 'llama' },
        ports: [{ name: 'agent', port: 8080, protocol: 'TCP' }],
      },
    });
  });
});
