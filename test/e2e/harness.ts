/**
 * The end-to-end harness: the full local control plane (dynalite, local Kubernetes with the process kubelet,
 * real `trainkeeper-agent` processes, the log shipper, the sweep timer and the loopback API) and small
 * helpers to submit jobs, inject faults and wait for states. Scenarios assert on job state, events,
 * metrics and process reality — never on calls.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { stringify } from 'yaml';
import { type ChaosFault, type ChaosOptions, type ChaosResult, injectChaos } from '../../local/chaos.ts';
import {
  type LocalControlPlane,
  type LocalControlPlaneOptions,
  startLocalControlPlane,
} from '../../local/control-plane.ts';

/** The job document the API serves (the fields the scenarios read). */
export interface JobDoc {
  metadata: { name: string; namespace: string; uid: string };
  spec: Record<string, unknown>;
  status: {
    phase: string;
    generation: number;
    conditions: { type: string; status: string; reason: string; message: string }[];
    restartCount: number;
    processRestartCount: number;
    restartStatus: { restartCount: number; fullJobRestartCount: number };
    latestFaultyPodInstanceList?: { restartType: string; faultyPodList: string[]; faultyRankList: number[] };
    masterAddr?: string;
    pods: {
      name: string;
      rank: number | null;
      spare: boolean;
      phase: string;
      node?: string;
      ip?: string;
      agentState?: string;
      agentGeneration?: number;
    }[];
    remediations: {
      generation: number;
      reason: string;
      level: string;
      detectionLatencyMs: number;
      restartLatencyMs: number | null;
      pods: string[];
      nodes: string[];
    }[];
    progress: { step?: number };
    nodeFaults: Record<string, number>;
  };
}

export interface EventDoc {
  at: number;
  type: string;
  reason: string;
  message: string;
  generation: number;
  lifecycle?: string;
}

export interface JobOptions {
  name: string;
  namespace?: string;
  replicas?: number;
  spares?: number;
  nproc?: number;
  steps?: number;
  stepTime?: number;
  checkpointEvery?: number;
  /** `logMonitoringConfiguration` entries; default: a progress rule only. */
  rules?: Record<string, unknown>[];
  runPolicy?: Record<string, unknown>;
  trainkeeper?: Record<string, unknown>;
  /** Replace the trainer command entirely (e.g. the PyTorch DDP trainer). */
  command?: string[];
}

/** A progress rule every harness job carries (so `status.progress.step` follows training). */
export const STEP_RULE = { name: 'TrainingStep', logPattern: '.*step (\\d+)/\\d+.*' };

/** A HyperPodPyTorchJob manifest running the simulated trainer under `hyperpodrun`. */
export function jobManifest(plane: LocalControlPlane, o: JobOptions): string {
  const nproc = o.nproc ?? 2;
  const command = o.command ?? [
    'hyperpodrun',
    `--nproc-per-node=${nproc}`,
    '--shutdown-signal=SIGTERM',
    '--shutdown-timeout=5',
    'examples/trainers/sim_trainer.py',
    `--steps=${o.steps ?? 150}`,
    `--step-time=${o.stepTime ?? 0.1}`,
    `--checkpoint-every=${o.checkpointEvery ?? 10}`,
    `--checkpoint-dir=${plane.dataDir}/checkpoints/${o.namespace ?? 'default'}/${o.name}`,
  ];
  return stringify({
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: { name: o.name, namespace: o.namespace ?? 'default' },
    spec: {
      nprocPerNode: String(nproc),
      runPolicy: {
        jobMaxRetryCount: 20,
        restartPolicy: { numRestartBeforeFullJobRestart: 10, evalPeriodSeconds: 3600, maxFullJobRestarts: 2 },
        ...o.runPolicy,
        logMonitoringConfiguration: [...(o.rules ?? []), STEP_RULE],
      },
      trainkeeper: { progressRule: 'TrainingStep', ...o.trainkeeper },
      replicaSpecs: [
        {
          name: 'pods',
          replicas: o.replicas ?? 2,
          spares: o.spares ?? 0,
          template: { spec: { containers: [{ name: 'pytorch', image: 'trainer:local', command }] } },
        },
      ],
    },
  });
}

/** One control plane per test file, stopped afterwards (no process left behind). */
export function useControlPlane(options: LocalControlPlaneOptions = {}): () => E2E {
  let e2e: E2E | undefined;
  beforeAll(async () => {
    e2e = new E2E(await startLocalControlPlane({ nodes: 4, ...options }));
  }, 120_000);
  afterAll(async () => {
    await e2e?.plane.stop();
  }, 120_000);
  return () => {
    if (!e2e) throw new Error('control plane not started');
    return e2e;
  };
}

export class E2E {
  constructor(readonly plane: LocalControlPlane) {}

  get api(): string {
    return this.plane.apiUrl;
  }

  /** Submits a manifest (YAML text); returns the HTTP status and body. */
  async submit(manifest: string): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.api}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: manifest,
    });
    return { status: res.status, body: await res.json() };
  }

  async job(name: string, namespace = 'default'): Promise<JobDoc> {
    const res = await fetch(`${this.api}/jobs/${namespace}/${name}`);
    if (!res.ok) throw new Error(`GET job ${namespace}/${name}: ${res.status} ${await res.text()}`);
    return (await res.json()) as JobDoc;
  }

  async events(name: string, namespace = 'default'): Promise<EventDoc[]> {
    const res = await fetch(`${this.api}/jobs/${namespace}/${name}/events?limit=1000`);
    return ((await res.json()) as { items: EventDoc[] }).items;
  }

  /** Polls the job until `predicate` holds; fails with the last document when it never does. */
  async waitFor(
    name: string,
    what: string,
    predicate: (job: JobDoc) => boolean,
    timeoutMs = 60_000,
    namespace = 'default',
  ): Promise<JobDoc> {
    const deadline = Date.now() + timeoutMs;
    let last: JobDoc | undefined;
    while (Date.now() < deadline) {
      last = await this.job(name, namespace);
      if (predicate(last)) return last;
      await sleep(200);
    }
    const events = await this.events(name, namespace).catch(() => []);
    throw new Error(
      `timed out waiting for ${what}: phase ${last?.status.phase}, generation ${last?.status.generation}\n` +
        events.map((e) => `  ${e.reason}: ${e.message}`).join('\n'),
    );
  }

  /** Waits until the job is Running and training has made `steps` steps of progress in this generation. */
  async waitForTraining(name: string, steps = 10, namespace = 'default'): Promise<JobDoc> {
    const running = await this.waitFor(
      name,
      'Running',
      (j) => j.status.phase === 'Running',
      60_000,
      namespace,
    );
    const from = running.status.progress.step ?? 0;
    return this.waitFor(
      name,
      `${steps} training steps`,
      (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= from + steps,
      60_000,
      namespace,
    );
  }

  chaos(
    name: string,
    fault: ChaosFault,
    options: ChaosOptions = {},
    namespace = 'default',
  ): Promise<ChaosResult> {
    return injectChaos(
      {
        apiUrl: this.api,
        kubeconfigYaml: this.plane.kube.kubeconfigYaml(),
        chaosDir: this.plane.chaosDir,
        namespace,
        name,
      },
      fault,
      options,
    );
  }

  /** Pods the local Kubernetes holds for a job (by the job label), through the real client. */
  async kubePods(
    name: string,
    namespace = 'default',
  ): Promise<{ name: string; node?: string; phase: string }[]> {
    const kc = new KubeConfig();
    kc.loadFromString(this.plane.kube.kubeconfigYaml());
    const list = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace, labelSelector: `trainkeeper.dev/job=${name}` });
    return list.items.map((p) => ({
      name: p.metadata?.name ?? '',
      ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
      phase: p.status?.phase ?? 'Unknown',
    }));
  }

  /** The Prometheus text the local API serves at /metrics. */
  async metrics(): Promise<string> {
    return (await fetch(`${this.api}/metrics`)).text();
  }
}
