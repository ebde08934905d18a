/**
 * The pod builder: turns a job spec and one `PodPlan` into the Kubernetes Pod the control plane creates,
 * and the job into its headless Service. Pure: plain values in, plain V1Pod/V1Service-shaped objects out;
 * the user's template is never mutated (it is deep-copied first).
 *
 * What it adds to the user's template, and why:
 * - identity labels (`POD_LABELS`) so `listJobPods` and `decide` find and place every pod without parsing
 *   names, plus HyperPod's `HPJob=<job>` for tools that select job pods with it;
 * - the agent's environment (`AGENT_ENV`): job, namespace, replica, index, NNODES, NPROC_PER_NODE, and the
 *   pod's name/IP/node through the downward API;
 * - container port 8080 named `agent` when no container declares the agent port;
 * - `restartPolicy: Never`: the control plane restarts workers, not the kubelet;
 * - scheduling: HyperPod node health `Schedulable` (unless the template constrains that label itself),
 *   `kubernetes.io/hostname NotIn avoidNodes`, one pod of the job per node (unless the template has its own
 *   pod anti-affinity);
 * - `hostname`/`subdomain` so each index (rank 0 in particular) has a DNS name that survives restarts;
 * - Kueue plain-pod-group labels/annotations when the job's labels name a queue.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { PodPlan } from '../../core/actions.ts';
import { AGENT_ENV, AGENT_PORT } from '../../core/agent-protocol.ts';
import { serviceName } from '../../core/decide/naming.ts';
import { ValidationError } from '../../core/errors.ts';
import { NODE_HEALTH_LABEL, POD_LABELS } from '../../core/observations.ts';
import type { JobSpec } from '../../core/spec/types.ts';

/** Kueue label and annotation names (plain pod groups). */
export const KUEUE = {
  queueName: 'kueue.x-k8s.io/queue-name',
  priorityClass: 'kueue.x-k8s.io/priority-class',
  podGroupName: 'kueue.x-k8s.io/pod-group-name',
  podGroupTotalCount: 'kueue.x-k8s.io/pod-group-total-count',
} as const;

/** Well-known node label for the node name; the key of the avoid-nodes and anti-affinity rules. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** Options of `buildPod`. `agentPort` (default 8080) also sets `TRAINKEEPER_AGENT_PORT` when not 8080. */
export interface BuildPodOptions {
  agentPort?: number;
}

type Json = Record<string, unknown>;
type Container = Json & { name: string; env?: Json[]; ports?: Json[] };
type SelectorTerm = { matchExpressions?: Json[]; matchFields?: Json[] };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The stable per-index host name `<job>-<replica>-<index>` (no generation, so it survives restarts), or
 * undefined when it is not a valid DNS label (> 63 characters); the pod is then reachable by IP only.
 */
export function stableHostname(job: string, replica: string, index: number): string | undefined {
  const name = `${job}-${replica}-${index}`.toLowerCase();
  return name.length <= 63 && DNS_LABEL.test(name) ? name : undefined;
}

/**
 * The labels identifying a job pod (`POD_LABELS`). Kubernetes label values are strings, so numbers and
 * booleans are stringified; `decide` parses them back.
 */
export function podIdentityLabels(job: string, plan: PodPlan): Record<string, string> {
  return {
    [POD_LABELS.job]: job,
    [POD_LABELS.replica]: plan.replica,
    [POD_LABELS.index]: String(plan.index),
    [POD_LABELS.generation]: String(plan.generation),
    [POD_LABELS.spare]: String(plan.spare),
    [POD_LABELS.hpJob]: job,
  };
}

/** Pods in the job's Kueue pod group: every replica and spare of every replica spec. */
export function podGroupTotalCount(spec: JobSpec): number {
  return spec.replicaSpecs.reduce((n, r) => n + r.replicas + r.spares, 0);
}

const fieldEnv = (name: string, fieldPath: string): Json => ({
  name,
  valueFrom: { fieldRef: { fieldPath } },
});

function agentEnv(spec: JobSpec, plan: PodPlan, nnodes: number, agentPort: number): Json[] {
  const env: Json[] = [
    { name: AGENT_ENV.jobName, value: spec.name },
    { name: AGENT_ENV.namespace, value: spec.namespace },
    fieldEnv(AGENT_ENV.podName, 'metadata.name'),
    fieldEnv(AGENT_ENV.podIp, 'status.podIP'),
    fieldEnv(AGENT_ENV.nodeName, 'spec.nodeName'),
    { name: AGENT_ENV.replica, value: plan.replica },
    { name: AGENT_ENV.index, value: String(plan.index) },
    { name: AGENT_ENV.nnodes, value: String(nnodes) },
    { name: AGENT_ENV.nprocPerNode, value: String(spec.nprocPerNode) },
  ];
  if (agentPort !== AGENT_PORT) env.push({ name: AGENT_ENV.agentPort, value: String(agentPort) });
  return env;
}

/** Our env wins over a template entry of the same name (the agent must see the control plane's values). */
function mergeEnv(existing: Json[] | undefined, ours: Json[]): Json[] {
  const names = new Set(ours.map((e) => e.name));
  return [...(existing ?? []).filter((e) => !names.has(e.name)), ...ours];
}

function constrainsLabel(terms: SelectorTerm[], nodeSelector: unknown, label: string): boolean {
  if (nodeSelector && typeof nodeSelector === 'object' && label in nodeSelector) return true;
  return terms.some((t) => (t.matchExpressions ?? []).some((e) => e.key === label));
}

function withAffinity(podSpec: Json, spec: JobSpec, plan: PodPlan): Json {
  const affinity = { ...((podSpec.affinity as Json | undefined) ?? {}) };
  const nodeAffinity = { ...((affinity.nodeAffinity as Json | undefined) ?? {}) };
  const required = (nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution as Json | undefined) ?? {};
  let terms = ((required.nodeSelectorTerms as SelectorTerm[] | undefined) ?? []).map((t) => ({ ...t }));

  const extra: Json[] = [];
  if (!constrainsLabel(terms, podSpec.nodeSelector, NODE_HEALTH_LABEL)) {
    extra.push({ key: NODE_HEALTH_LABEL, operator: 'In', values: ['Schedulable'] });
  }
  const avoid = [...new Set(plan.avoidNodes)].sort();
  if (avoid.length > 0) extra.push({ key: HOSTNAME_LABEL, operator: 'NotIn', values: avoid });

  if (extra.length > 0) {
    // Node selector terms are ORed: every term must carry our requirements.
    if (terms.length === 0) terms = [{}];
    terms = terms.map((t) => ({ ...t, matchExpressions: [...(t.matchExpressions ?? []), ...extra] }));
    nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { ...required, nodeSelectorTerms: terms };
    affinity.nodeAffinity = nodeAffinity;
  }
  if (affinity.podAntiAffinity === undefined) {
    affinity.podAntiAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { [POD_LABELS.job]: spec.name } }, topologyKey: HOSTNAME_LABEL },
      ],
    };
  }
  return affinity;
}

/**
 * The container that runs `trainkeeper-agent` in a pod built from `spec`'s replica `replica`: the one
 * declaring the agent port, else the first (which `withAgentPort` gives the port). Agent records are
 * believed only from this container's output (functions/logs.ts). Undefined for an unknown replica or a
 * template without containers.
 */
export function agentContainerName(
  spec: JobSpec,
  replica: string,
  agentPort = AGENT_PORT,
): string | undefined {
  const containers = spec.replicaSpecs.find((r) => r.name === replica)?.template.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) return undefined;
  const list = containers as Container[];
  const declared = list.find((c) => (c.ports ?? []).some((p) => p.containerPort === agentPort));
  return (declared ?? list[0])?.name;
}

function withAgentPort(containers: Container[], agentPort: number): Container[] {
  const declared = containers.some((c) => (c.ports ?? []).some((p) => p.containerPort === agentPort));
  if (declared || containers.length === 0) return containers;
  const [first, ...rest] = containers as [Container, ...Container[]];
  const taken = (first.ports ?? []).some((p) => p.name === 'agent');
  const port: Json = { containerPort: agentPort, protocol: 'TCP', ...(taken ? {} : { name: 'agent' }) };
  return [{ ...first, ports: [...(first.ports ?? []), port] }, ...rest];
}

/**
 * One pod of the job for `plan`. Invariants: the result's name is `plan.name`; its labels include the
 * template's and, overriding them, the identity labels; `restartPolicy` is `Never`; the template object
 * is not modified. Throws ValidationError (with a field path) when the plan names an unknown replica spec
 * or the template has no container.
 */
export function buildPod(spec: JobSpec, plan: PodPlan, options: BuildPodOptions = {}): V1Pod {
  const agentPort = options.agentPort ?? AGENT_PORT;
  const replicaIndex = spec.replicaSpecs.findIndex((r) => r.name === plan.replica);
  const replica = spec.replicaSpecs[replicaIndex];
  if (!replica) {
    throw new ValidationError(`pod ${plan.name}: no replica spec named ${plan.replica}`, [
      { path: 'spec.replicaSpecs', message: `no replica spec named ${plan.replica}` },
    ]);
  }
  const template = structuredClone(replica.template);
  const templatePath = `spec.replicaSpecs[${replicaIndex}].template`;
  if (!Array.isArray(template.spec?.containers) || template.spec.containers.length === 0) {
    throw new ValidationError(`pod ${plan.name}: the template has no container`, [
      { path: `${templatePath}.spec.containers`, message: 'at least one container is required' },
    ]);
  }

  const labels: Record<string, string> = {
    ...(template.metadata?.labels ?? {}),
    ...podIdentityLabels(spec.name, plan),
  };
  const annotations: Record<string, string> = { ...(template.metadata?.annotations ?? {}) };
  const queue = spec.labels[KUEUE.queueName];
  if (queue) {
    labels[KUEUE.queueName] = queue;
    labels[KUEUE.podGroupName] = spec.name;
    annotations[KUEUE.podGroupTotalCount] = String(podGroupTotalCount(spec));
    const priority = spec.labels[KUEUE.priorityClass];
    if (priority) labels[KUEUE.priorityClass] = priority;
  }

  const env = agentEnv(spec, plan, replica.replicas, agentPort);
  const containers = withAgentPort(
    (template.spec.containers as Container[]).map((c) => ({ ...c, env: mergeEnv(c.env, env) })),
    agentPort,
  );
  const podSpec: Json = { ...template.spec, containers, restartPolicy: 'Never' };
  podSpec.affinity = withAffinity(podSpec, spec, plan);
  const hostname = stableHostname(spec.name, plan.replica, plan.index);
  if (hostname && DNS_LABEL.test(spec.name) && spec.name.length <= 63) {
    podSpec.hostname = hostname;
    // The job's headless Service, whose name is a DNS-1035 label (core/decide/naming.ts `serviceName`).
    podSpec.subdomain = serviceName(spec.name);
  }

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: plan.name,
      namespace: spec.namespace,
      labels,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: podSpec as unknown as V1Pod['spec'],
  };
}

/**
 * The job's headless Service (named after the job, in its namespace: `serviceName`, the job name with a
 * `j-` prefix when it starts with a digit, as Service names must start with a letter): gives each pod with
 * a `hostname` the DNS name `<hostname>.<service>.<namespace>.svc`. Publishes not-ready addresses so rank 0 resolves
 * before its readiness (the rendezvous happens before training is "ready").
 */
export function buildService(spec: JobSpec, options: BuildPodOptions = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(spec.name),
      namespace: spec.namespace,
      labels: { [POD_LABELS.job]: spec.name, [POD_LABELS.hpJob]: spec.name },
    },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: { [POD_LABELS.job]: spec.name },
      ports: [{ name: 'agent', port: options.agentPort ?? AGENT_PORT, protocol: 'TCP' }],
    },
  };
}
