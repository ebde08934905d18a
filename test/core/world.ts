/**
 * A plain-value model of the cluster and the agents that executes decide's actions the way the shell and
 * a healthy cluster would (create → pod Running with an IP on a free node, agent READY; stop → READY;
 * start and in-process restart → RUNNING at faultCount), and answers with the observations the shell would feed back. No mocks:
 * it is a tiny simulator so that tests can drive decide through whole scenarios.
 */
import type { Action } from '../../core/actions.ts';
import type { AgentState, StatusBody } from '../../core/agent-protocol.ts';
import type { Observation, ObservedNode, ObservedPod } from '../../core/observations.ts';

export interface SimPod {
  name: string;
  node: string;
  ip: string;
  phase: ObservedPod['phase'];
  agent: AgentState;
  generation: number;
  /** The agent's last reason and message (what `/status` reports with its state). */
  reason?: string;
  message?: string;
  deleting?: boolean;
}

export interface SimNode {
  name: string;
  health: string;
  ready: boolean;
  instanceId: string;
}

export class World {
  pods = new Map<string, SimPod>();
  nodes = new Map<string, SimNode>();
  private nextIp = 1;
  /** Agents that do not answer (pod name). */
  unreachable = new Set<string>();
  /** When false, created pods stay Pending (unschedulable). */
  schedulable = true;
  /**
   * One pod per node, as the pod capacity of a training node makes it: a pod with no free healthy node
   * stays Pending and is bound when one frees up (at the next `observedPods`). Default false (any healthy
   * node takes any number of pods), which the non-elastic scenarios rely on.
   */
  exclusive = false;
  /** What agents do on an elastic event: their workers checkpoint and exit 0 (COMPLETED), or ignore it. */
  onElasticEvent: 'complete' | 'ignore' = 'complete';
  /**
   * What agents do on `/inprocess-restart`: their workers re-enter (RUNNING at the new generation), or they
   * do not within the agent's `--inprocess-timeout` (FAULTED at it, `InProcessRestartTimeout`), or the
   * request is lost on the way (nothing changes, the agent answers its old status).
   */
  onInProcessRestart: 'reenter' | 'timeout' | 'lost' = 'reenter';
  log: Action[] = [];

  constructor(
    readonly namespace: string,
    nodeCount: number,
  ) {
    for (let i = 0; i < nodeCount; i++) {
      const name = `node-${i}`;
      this.nodes.set(name, { name, health: 'Schedulable', ready: true, instanceId: `i-${i}` });
    }
  }

  private pickNode(avoid: string[]): string | undefined {
    const used = new Set([...this.pods.values()].map((p) => p.node));
    const healthy = [...this.nodes.values()].filter(
      (n) => n.health === 'Schedulable' && n.ready && !avoid.includes(n.name),
    );
    const free = healthy.find((n) => !used.has(n.name));
    return (this.exclusive ? free : (free ?? healthy[0]))?.name;
  }

  /** Binds Pending pods to free nodes (exclusive mode: the scheduler retrying as nodes free up). */
  private schedulePending(): void {
    if (!this.exclusive || !this.schedulable) return;
    for (const pod of this.pods.values()) {
      if (pod.phase !== 'Pending' || pod.node) continue;
      const node = this.pickNode([]);
      if (!node) return;
      pod.node = node;
      pod.ip = `10.0.0.${this.nextIp++}`;
      pod.phase = 'Running';
    }
  }

  /** Every node as the sweep lists them (the elastic capacity). */
  observedNodes(at: number): Observation {
    const nodes: ObservedNode[] = [...this.nodes.values()].map((n) => ({
      name: n.name,
      labels: {},
      ready: n.ready,
      health: n.health,
      instanceId: n.instanceId,
    }));
    return { type: 'NodesObserved', nodes, at };
  }

  status(pod: SimPod): StatusBody {
    return {
      status: pod.agent.toLowerCase(),
      faultCount: pod.generation,
      ...(pod.reason ? { reason: pod.reason } : {}),
      ...(pod.message ? { message: pod.message } : {}),
    };
  }

  /** Executes actions; returns the observations the shell would feed back (agent call answers). */
  apply(actions: Action[], at: number): Observation[] {
    const back: Observation[] = [];
    const answer = (name: string) => {
      const pod = this.pods.get(name);
      if (!pod || this.unreachable.has(name)) {
        back.push({ type: 'AgentPolled', pod: name, status: null, at });
        return;
      }
      back.push({ type: 'AgentPolled', pod: name, status: this.status(pod), at });
    };
    for (const a of actions) {
      this.log.push(a);
      switch (a.type) {
        case 'CreatePods':
          for (const plan of a.pods) {
            if (this.pods.has(plan.name)) continue;
            const node = this.schedulable ? this.pickNode(plan.avoidNodes) : undefined;
            this.pods.set(plan.name, {
              name: plan.name,
              node: node ?? '',
              ip: node ? `10.0.0.${this.nextIp++}` : '',
              phase: node ? 'Running' : 'Pending',
              agent: 'READY',
              generation: -1,
            });
          }
          break;
        case 'DeletePods':
          for (const name of a.pods) this.pods.delete(name);
          break;
        case 'StopAgents':
          for (const name of a.pods) {
            const pod = this.pods.get(name);
            if (pod && !this.unreachable.has(name)) pod.agent = 'READY';
            answer(name);
          }
          break;
        case 'StartAgents':
          for (const s of a.starts) {
            const pod = this.pods.get(s.pod);
            if (pod && !this.unreachable.has(s.pod)) {
              pod.agent = 'RUNNING';
              pod.generation = Number(s.body.faultCount);
            }
            answer(s.pod);
          }
          break;
        case 'RestartInProcess':
          for (const s of a.starts) {
            const pod = this.pods.get(s.pod);
            if (pod && !this.unreachable.has(s.pod) && this.onInProcessRestart !== 'lost') {
              const timedOut = this.onInProcessRestart === 'timeout';
              pod.agent = timedOut ? 'FAULTED' : 'RUNNING';
              pod.generation = Number(s.body.faultCount);
              pod.reason = timedOut ? 'InProcessRestartTimeout' : 'InProcessRestart';
              delete pod.message;
            }
            answer(s.pod);
          }
          break;
        case 'ShutdownAgents':
          for (const name of a.pods) {
            const pod = this.pods.get(name);
            if (pod) pod.agent = 'SHUTDOWN';
          }
          break;
        case 'PollAgents':
          for (const name of a.pods) answer(name);
          break;
        case 'SignalElasticEvent':
          for (const name of a.pods) {
            const pod = this.pods.get(name);
            if (pod && pod.generation === a.generation && this.onElasticEvent === 'complete')
              pod.agent = 'COMPLETED';
            answer(name);
          }
          break;
        default:
          break;
      }
    }
    return back;
  }

  observedPods(at: number): Observation {
    this.schedulePending();
    const pods: ObservedPod[] = [...this.pods.values()].map((p) => ({
      name: p.name,
      namespace: this.namespace,
      labels: {},
      phase: p.phase,
      ...(p.node ? { nodeName: p.node, podIP: p.ip } : {}),
      containers: [],
    }));
    const nodes: ObservedNode[] = [...this.nodes.values()].map((n) => ({
      name: n.name,
      labels: {},
      ready: n.ready,
      health: n.health,
      instanceId: n.instanceId,
    }));
    return { type: 'PodsObserved', pods, nodes, at };
  }
}
