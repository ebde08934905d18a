/**
 * The parts of the Pod and Node shapes the local scheduler and kubelet read, as they are on the wire
 * (timestamps are strings). Stored objects are plain JSON; these types only narrow `spec`/`status`.
 */
import type { LabelSelectorObject } from './selectors.ts';

/** A container env entry; only `value` and `valueFrom.fieldRef` are resolved locally. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; [key: string]: unknown };
}

/** The container fields the kubelet uses (the image is ignored: the command runs on this machine). */
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  /** Where the process starts, inside the pod's own directory (see kubelet.ts). */
  workingDir?: string;
  env?: EnvVar[];
  ports?: { containerPort: number; name?: string; protocol?: string }[];
}

/** A node-selector term of required node affinity. */
export interface NodeSelectorTerm {
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
  matchFields?: { key: string; operator: string; values?: string[] }[];
}

/** A required pod (anti-)affinity term. */
export interface PodAffinityTerm {
  labelSelector?: LabelSelectorObject;
  topologyKey: string;
  namespaces?: string[];
}

/** A toleration, matched against node taints with effect NoSchedule/NoExecute. */
export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: string;
}

/** The pod spec fields the scheduler and kubelet use. */
export interface PodSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: {
    nodeAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] };
    };
    podAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[] };
    podAntiAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[] };
  };
  tolerations?: Toleration[];
  containers: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
}

/** A status condition, as on pods and nodes. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
  lastHeartbeatTime?: string;
}

/** Sets (or replaces) a condition; keeps lastTransitionTime when the status does not change. */
export function setCondition(conditions: Condition[], next: Condition, now: string): Condition[] {
  const current = conditions.find((c) => c.type === next.type);
  const merged: Condition = {
    ...next,
    lastTransitionTime: current && current.status === next.status ? (current.lastTransitionTime ?? now) : now,
  };
  return [...conditions.filter((c) => c.type !== next.type), merged];
}

/** True for a pod phase that never changes again. */
export const isTerminalPhase = (phase: unknown): boolean => phase === 'Succeeded' || phase === 'Failed';
