/**
 * The local scheduler: binds pending pods to nodes of the store, with the predicates TrainKeeper's pods
 * rely on: nodeSelector, required node affinity (In/NotIn/Exists/DoesNotExist/Gt/Lt on node labels, and
 * `matchFields` on metadata.name), required pod affinity and anti-affinity on any topology key (in
 * practice `kubernetes.io/hostname`), NoSchedule/NoExecute taints, node Ready and `spec.unschedulable`,
 * and a pod capacity per node (`status.allocatable.pods`, default 1: a GPU node fully taken by one
 * training pod). It runs in-process on the store (no binding subresource round trip).
 *
 * A pod that fits nowhere stays Pending with PodScheduled=False/Unschedulable and a message counting the
 * reasons per node, and is retried on every change of pods or nodes (label changes included).
 */
import { matchesRequirements, requirementsFromObject, SelectorError } from './selectors.ts';
import { type KubeObject, kubeTime, type ObjectStore } from './store.ts';
import {
  type Condition,
  isTerminalPhase,
  type PodAffinityTerm,
  type PodSpec,
  setCondition,
} from './types.ts';

/** Options of the Scheduler. */
export interface SchedulerOptions {
  store: ObjectStore;
  /** Pods per node when a node does not say (`status.allocatable.pods`). Default 1. */
  podCapacity?: number;
}

type Verdict = { ok: true } | { ok: false; reason: string };

const nodeReady = (node: KubeObject) =>
  ((node.status?.conditions ?? []) as Condition[]).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Binds pods to nodes whenever pods or nodes change. Invariants: a pod is bound at most once and never to
 * a node failing a predicate; passes are coalesced (one per event-loop turn) and a pass that changes
 * nothing writes nothing, so the scheduler's own writes do not loop.
 */
export class Scheduler {
  private unsubscribe: (() => void) | undefined;
  private queued = false;
  private readonly store: ObjectStore;
  private readonly podCapacity: number;

  constructor(options: SchedulerOptions) {
    this.store = options.store;
    this.podCapacity = options.podCapacity ?? 1;
  }

  /** Starts watching the store and schedules a first pass. */
  start(): void {
    this.unsubscribe ??= this.store.subscribe((event) => {
      if (event.resource === 'pods' || event.resource === 'nodes') this.kick();
    });
    this.kick();
  }

  /** Stops scheduling. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private kick(): void {
    if (this.queued || !this.unsubscribe) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      if (this.unsubscribe) this.pass();
    });
  }

  /** One scheduling pass over every unbound pod, oldest first. Exposed for tests that step it by hand. */
  pass(): void {
    const nodes = this.store.list('nodes');
    const pods = this.store.list('pods');
    const active = pods.filter(
      (p) => (p.spec as unknown as PodSpec).nodeName && !isTerminalPhase(p.status?.phase),
    );
    const pending = pods
      .filter((p) => !(p.spec as unknown as PodSpec).nodeName && !p.metadata.deletionTimestamp)
      .filter((p) => p.status?.phase === 'Pending' || p.status?.phase === undefined)
      .sort(
        (a, b) =>
          a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) ||
          Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
      );
    for (const pod of pending) {
      const reasons = new Map<string, number>();
      const feasible: { node: KubeObject; load: number }[] = [];
      for (const node of nodes) {
        const verdict = this.fits(pod, node, nodes, active);
        if (verdict.ok) {
          const load = active.filter(
            (p) => (p.spec as unknown as PodSpec).nodeName === node.metadata.name,
          ).length;
          feasible.push({ node, load });
        } else {
          reasons.set(verdict.reason, (reasons.get(verdict.reason) ?? 0) + 1);
        }
      }
      feasible.sort((a, b) => a.load - b.load || a.node.metadata.name.localeCompare(b.node.metadata.name));
      const chosen = feasible[0];
      const now = kubeTime(this.store.now());
      if (chosen) {
        const bound = this.store.mutate('pods', pod.metadata.namespace, pod.metadata.name, (p) => {
          (p.spec as unknown as PodSpec).nodeName = chosen.node.metadata.name;
          p.status ??= {};
          p.status.conditions = setCondition(
            (p.status.conditions ?? []) as Condition[],
            { type: 'PodScheduled', status: 'True', lastProbeTime: null },
            now,
          );
        });
        if (bound) active.push(bound);
      } else {
        const detail = [...reasons.entries()]
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([reason, count]) => `${count} ${reason}`)
          .join(', ');
        const message = `0/${nodes.length} nodes are available${detail ? `: ${detail}` : ''}.`;
        const existing = ((pod.status?.conditions ?? []) as Condition[]).find(
          (c) => c.type === 'PodScheduled',
        );
        if (existing?.status === 'False' && existing.message === message) continue;
        this.store.mutate('pods', pod.metadata.namespace, pod.metadata.name, (p) => {
          p.status ??= {};
          p.status.conditions = setCondition(
            (p.status.conditions ?? []) as Condition[],
            { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null },
            now,
          );
        });
      }
    }
  }

  /** Whether `pod` may go on `node` now, or the reason it may not (the Unschedulable message's wording). */
  fits(pod: KubeObject, node: KubeObject, nodes: KubeObject[], active: KubeObject[]): Verdict {
    const spec = pod.spec as unknown as PodSpec;
    const labels = node.metadata.labels ?? {};
    if (!nodeReady(node)) return { ok: false, reason: 'node(s) were not ready' };
    if ((node.spec as { unschedulable?: boolean } | undefined)?.unschedulable) {
      return { ok: false, reason: 'node(s) were unschedulable' };
    }
    const taints = ((node.spec?.taints ?? []) as { key: string; value?: string; effect: string }[]).filter(
      (t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute',
    );
    const tolerated = (t: { key: string; value?: string; effect: string }) =>
      (spec.tolerations ?? []).some(
        (tol) =>
          (tol.effect === undefined || tol.effect === '' || tol.effect === t.effect) &&
          ((tol.operator === 'Exists' && (tol.key === undefined || tol.key === '' || tol.key === t.key)) ||
            (tol.operator !== 'Exists' && tol.key === t.key && (tol.value ?? '') === (t.value ?? ''))),
      );
    if (!taints.every(tolerated)) return { ok: false, reason: 'node(s) had untolerated taint' };
    if (!this.matchesNodeAffinity(spec, node)) {
      return { ok: false, reason: "node(s) didn't match Pod's node affinity/selector" };
    }
    const capacity = Number(
      (node.status?.allocatable as { pods?: string } | undefined)?.pods ?? this.podCapacity,
    );
    const load = active.filter((p) => (p.spec as unknown as PodSpec).nodeName === node.metadata.name).length;
    if (load >= capacity) return { ok: false, reason: 'Too many pods' };
    const namespace = pod.metadata.namespace;
    const domainPods = (term: PodAffinityTerm) => {
      const value = labels[term.topologyKey];
      if (value === undefined) return undefined;
      const domainNodes = new Set(
        nodes.filter((n) => n.metadata.labels?.[term.topologyKey] === value).map((n) => n.metadata.name),
      );
      const selector = requirementsFromObject(term.labelSelector);
      const namespaces = term.namespaces?.length ? term.namespaces : [namespace];
      return active.filter(
        (p) =>
          p.metadata.uid !== pod.metadata.uid &&
          domainNodes.has((p.spec as unknown as PodSpec).nodeName ?? '') &&
          namespaces.includes(p.metadata.namespace) &&
          matchesRequirements(selector, p.metadata.labels),
      );
    };
    try {
      for (const term of spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ??
        []) {
        if ((domainPods(term) ?? []).length > 0)
          return { ok: false, reason: "node(s) didn't match pod anti-affinity rules" };
      }
      for (const term of spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []) {
        const found = domainPods(term);
        if (found === undefined || found.length === 0) {
          // As in Kubernetes, the first pod of a group that matches its own affinity term may go anywhere.
          const self = matchesRequirements(requirementsFromObject(term.labelSelector), pod.metadata.labels);
          const anyMatching = active.some((p) =>
            matchesRequirements(requirementsFromObject(term.labelSelector), p.metadata.labels),
          );
          if (!(self && !anyMatching && found !== undefined)) {
            return { ok: false, reason: "node(s) didn't match pod affinity rules" };
          }
        }
      }
    } catch (err) {
      if (err instanceof SelectorError) return { ok: false, reason: `invalid affinity: ${err.message}` };
      throw err;
    }
    return { ok: true };
  }

  private matchesNodeAffinity(spec: PodSpec, node: KubeObject): boolean {
    const labels = node.metadata.labels ?? {};
    for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) if (labels[k] !== v) return false;
    const terms =
      spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    if (!terms || terms.length === 0) return true;
    // Terms are ORed; the expressions inside a term are ANDed; an empty term matches nothing.
    return terms.some((term) => {
      const exprs = term.matchExpressions ?? [];
      const fields = term.matchFields ?? [];
      if (exprs.length === 0 && fields.length === 0) return false;
      try {
        return (
          matchesRequirements(requirementsFromObject({ matchExpressions: exprs }), labels) &&
          matchesRequirements(requirementsFromObject({ matchExpressions: fields }), {
            'metadata.name': node.metadata.name,
          })
        );
      } catch (err) {
        if (err instanceof SelectorError) return false;
        throw err;
      }
    });
  }
}
