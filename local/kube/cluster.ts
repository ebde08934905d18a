/**
 * A fake cluster on one machine: Node objects that look like SageMaker HyperPod worker nodes, the
 * scheduler binding pods to them and the process kubelet running the pods. The API server (api-server.ts)
 * is its front door; `startLocalKube` (index.ts) puts them together.
 */
import { randomBytes } from 'node:crypto';
import { type KubeletOptions, ProcessKubelet } from './kubelet.ts';
import { Scheduler } from './scheduler.ts';
import { type KubeObject, kubeTime, ObjectStore } from './store.ts';
import { type Condition, setCondition } from './types.ts';

/** HyperPod's node-health label (same value as core/observations.ts NODE_HEALTH_LABEL). */
export const HEALTH_LABEL = 'sagemaker.amazonaws.com/node-health-status';

/** A fake node. */
export interface NodeSpec {
  name: string;
  /** Extra labels (over the defaults: hostname, instance type, zone, health Schedulable). */
  labels?: Record<string, string>;
  /** `node.kubernetes.io/instance-type`. Default `ml.p5.48xlarge`. */
  instanceType?: string;
  /** Pods this node takes (`status.allocatable.pods`). Default: the cluster's podCapacity. */
  podCapacity?: number;
  /** EC2 instance id in the providerID. Default: a random `i-0…`. */
  instanceId?: string;
}

/** Options of LocalCluster. */
export interface LocalClusterOptions extends Omit<KubeletOptions, 'store'> {
  /** A count (`node-1` … `node-N`) or explicit nodes. Default 2. */
  nodes?: number | NodeSpec[];
  /** Default pods per node. Default 1 (a GPU node is fully taken by one training pod). */
  podCapacity?: number;
  store?: ObjectStore;
}

/**
 * The store, nodes, scheduler and kubelet of one local cluster. Invariants: node names are unique; the
 * `default` and `kube-system` namespaces exist; `stop()` leaves no process behind.
 */
export class LocalCluster {
  readonly store: ObjectStore;
  readonly scheduler: Scheduler;
  readonly kubelet: ProcessKubelet;
  private readonly podCapacity: number;

  constructor(options: LocalClusterOptions = {}) {
    this.store = options.store ?? new ObjectStore();
    this.podCapacity = options.podCapacity ?? 1;
    for (const ns of ['default', 'kube-system']) {
      if (!this.store.get('namespaces', undefined, ns)) {
        this.store.create('namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns },
          spec: { finalizers: ['kubernetes'] },
          status: { phase: 'Active' },
        });
      }
    }
    this.scheduler = new Scheduler({ store: this.store, podCapacity: this.podCapacity });
    // The kubelet runs only pods bound to nodes that exist (a pod naming an unknown node stays Pending).
    const store = this.store;
    this.kubelet = new ProcessKubelet({
      ownsNode: (node) => store.get('nodes', undefined, node) !== undefined,
      ...options,
      store,
    });
    const nodes = options.nodes ?? 2;
    const specs =
      typeof nodes === 'number'
        ? Array.from({ length: nodes }, (_, i) => ({ name: `node-${i + 1}` }))
        : nodes;
    for (const spec of specs) this.addNode(spec);
    this.kubelet.start();
    this.scheduler.start();
  }

  /** Creates a Ready node that looks like a HyperPod worker (labels, providerID, GPU capacity). */
  addNode(spec: NodeSpec): KubeObject {
    const instanceId = spec.instanceId ?? `i-0${randomBytes(8).toString('hex')}`;
    const capacity = String(spec.podCapacity ?? this.podCapacity);
    const now = kubeTime(this.store.now());
    const ip = this.kubelet.nodeIp(spec.name);
    return this.store.create('nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: spec.name,
        labels: {
          'kubernetes.io/hostname': spec.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'node.kubernetes.io/instance-type': spec.instanceType ?? 'ml.p5.48xlarge',
          'topology.kubernetes.io/zone': 'us-west-2a',
          'sagemaker.amazonaws.com/compute-type': 'hyperpod',
          [HEALTH_LABEL]: 'Schedulable',
          ...(spec.labels ?? {}),
        },
      },
      spec: { providerID: `aws:///us-west-2a/${instanceId}` },
      status: {
        capacity: { cpu: '192', memory: '2097152Mi', 'nvidia.com/gpu': '8', pods: capacity },
        allocatable: { cpu: '192', memory: '2097152Mi', 'nvidia.com/gpu': '8', pods: capacity },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        addresses: [
          { type: 'InternalIP', address: ip },
          { type: 'Hostname', address: spec.name },
        ],
        nodeInfo: {
          kubeletVersion: 'v1.31.0-trainkeeper-local',
          containerRuntimeVersion: 'local-process://1',
          operatingSystem: 'linux',
          architecture: 'amd64',
          osImage: 'local',
          kernelVersion: '',
          kubeProxyVersion: '',
          machineID: instanceId,
          systemUUID: instanceId,
          bootID: instanceId,
        },
      },
    });
  }

  /**
   * Kills a node like a dead machine: NotReady at once, every process on it SIGKILLed, its pods Failed
   * with reason NodeLost (see ProcessKubelet.loseNode for how this differs from real Kubernetes).
   */
  loseNode(name: string): void {
    this.setReady(name, false);
    this.kubelet.loseNode(name);
  }

  /** Brings a lost node back: Ready again, new pods may run there. */
  restoreNode(name: string): void {
    this.setReady(name, true);
    this.kubelet.restoreNode(name);
  }

  /**
   * Changes node labels as HyperPod's health agent does (a `null` value removes a label). The scheduler
   * retries pending pods after the change.
   */
  setNodeLabels(name: string, labels: Record<string, string | null>): KubeObject {
    const node = this.store.mutate('nodes', undefined, name, (n) => {
      const next = { ...(n.metadata.labels ?? {}) };
      for (const [k, v] of Object.entries(labels)) {
        if (v === null) delete next[k];
        else next[k] = v;
      }
      n.metadata.labels = next;
    });
    if (!node) throw new Error(`node "${name}" does not exist`);
    return node;
  }

  /** Stops scheduling and kills every pod process. */
  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.kubelet.stop();
  }

  private setReady(name: string, ready: boolean): void {
    const now = kubeTime(this.store.now());
    const node = this.store.mutate('nodes', undefined, name, (n) => {
      n.status ??= {};
      n.status.conditions = setCondition(
        (n.status.conditions ?? []) as Condition[],
        ready
          ? {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'kubelet is posting ready status',
              lastHeartbeatTime: now,
            }
          : {
              type: 'Ready',
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
              lastHeartbeatTime: now,
            },
        now,
      );
    });
    if (!node) throw new Error(`node "${name}" does not exist`);
  }
}
