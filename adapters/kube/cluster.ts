/**
 * The `Cluster` port over the Kubernetes API with `@kubernetes/client-node` 1.4.0: EKS in the cloud, the
 * local API server on a laptop and in tests (same code, another KubeConfig).
 *
 * Invariants:
 * - Every write is idempotent: creates treat 409 as done, deletes treat 404 as done, Events have
 *   deterministic names so a duplicate delivery records nothing twice.
 * - Every API call is retried per `RetryPolicy` (429 with Retry-After, 5xx, connection resets) and
 *   counted in `stats` (calls by operation, errors by operation and code).
 * - Agent calls go through the `pods/proxy` subresource (`<pod>:<port>`), at most `agentConcurrency` in
 *   flight across every fan-out of the adapter (one `Limiter`: concurrent fan-outs share it, and a call's
 *   timeout starts when it has a slot, never while it queues for a socket), each bounded by a timeout
 *   (the `/stop` timeout covers the agent's own stop timeout + a margin, since the agent answers `/stop`
 *   once its workers are gone: a stop waiting for READY holds its slot, so those waits are bounded too).
 *   They never throw: each pod gets an `AgentCallResult` (or none, for calls a fan-out's `shouldStart`
 *   kept from starting). `unreachable` is true only when the agent could not be reached (connection refused
 *   or timeout, 502/503/504 from the proxy, pod gone), never for API-server throttling, so a busy API
 *   server cannot make the control plane replace healthy pods.
 */
import http from 'node:http';
import https from 'node:https';
import {
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import type { PodPlan } from '../../core/actions.ts';
import {
  AGENT_PORT,
  type ElasticEventBody,
  type InProcessRestartBody,
  type StartBody,
  StatusBody,
  type StopBody,
} from '../../core/agent-protocol.ts';
import { serviceName } from '../../core/decide/naming.ts';
import { AlreadyExistsError, NotFoundError } from '../../core/errors.ts';
import type { JobEvent } from '../../core/job.ts';
import {
  NODE_HEALTH_LABEL,
  type ObservedNode,
  type ObservedPod,
  POD_LABELS,
} from '../../core/observations.ts';
import type { AgentCallOptions, AgentCallResult, Cluster, JobRef } from '../../core/ports.ts';
import type { JobSpec } from '../../core/spec/types.ts';
import { DEFAULT_AGENT_CONCURRENCY, Limiter, mapBounded, valuesOrThrow } from './concurrency.ts';
import { buildPod, buildService } from './pod-builder.ts';
import {
  classifyError,
  DEFAULT_RETRY_POLICY,
  isRetryableFailure,
  KubeApiStats,
  type KubeFailure,
  type RetryPolicy,
  withRetries,
} from './retry.ts';

/**
 * Every (resource, verb) the adapter uses, in RBAC terms (core API group). deploy/kubernetes/rbac.yaml
 * grants exactly these; test/adapters/kube/rbac.test.ts checks both directions. `scope` says which object grants it.
 */
export const KUBE_PERMISSIONS = [
  { scope: 'cluster', resource: 'nodes', verbs: ['get', 'list', 'watch'] },
  { scope: 'namespace', resource: 'pods', verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { scope: 'namespace', resource: 'pods/proxy', verbs: ['get', 'create'] },
  { scope: 'namespace', resource: 'pods/log', verbs: ['get'] },
  { scope: 'namespace', resource: 'services', verbs: ['get', 'create', 'patch'] },
  { scope: 'namespace', resource: 'events', verbs: ['create', 'patch'] },
] as const;

/** Tunables of the adapter; all optional. */
export interface KubeClusterOptions {
  /**
   * Agent calls in flight at once, over all fan-outs of this adapter (default `DEFAULT_AGENT_CONCURRENCY`).
   * One adapter serves one Lambda invocation at a time, so this is the invocation's limit.
   */
  agentConcurrency?: number;
  /** Pod creates/deletes/node reads in flight at once (default 32). */
  apiConcurrency?: number;
  /** Timeout of /status, /start and /shutdown calls (default 10 s). */
  agentTimeoutMs?: number;
  /** The agent's stop timeout when the /stop body gives none (default 30 s, as the agent's). */
  defaultStopTimeoutSeconds?: number;
  /** Added to the stop timeout for the /stop call (default 10 s). */
  stopMarginMs?: number;
  /** The agent's port, named in the proxy path `pod:<port>` (default 8080). */
  agentPort?: number;
  retryPolicy?: RetryPolicy;
  /** Shared counters (default: a fresh one, readable as `cluster.stats`). */
  stats?: KubeApiStats;
  /** Page size of pod lists (default 500). */
  listPageSize?: number;
  /** `getNodes` for more names than this lists all nodes once instead of reading each (default 16). */
  nodeListThreshold?: number;
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** HTTP statuses from the pods/proxy that mean the agent itself could not be reached. */
const PROXY_UNREACHABLE = new Set([502, 503, 504]);

/** Thrown inside a proxy attempt for statuses worth retrying (429, 500, 501); carries what classifyError reads. */
class ProxyHttpError extends Error {
  constructor(
    readonly code: number,
    readonly headers: http.IncomingHttpHeaders,
    readonly body: string,
  ) {
    super(`proxy answered ${code}`);
  }
}

/** Parses `aws:///us-west-2a/i-0abc…` or a `hyperpod-i-0abc…` node name into an EC2 instance id. */
export function instanceIdOf(node: { name: string; providerID?: string }): string | undefined {
  const re = /(?:^|[/-])(i-[0-9a-f]{8,17})$/;
  return node.providerID?.match(re)?.[1] ?? node.name.match(re)?.[1];
}

const toMillis = (d: Date | string | undefined): number | undefined => {
  if (d === undefined) return undefined;
  const ms = d instanceof Date ? d.getTime() : Date.parse(d);
  return Number.isNaN(ms) ? undefined : ms;
};

const POD_PHASES = new Set(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']);

/** Translates a V1Pod into the core's ObservedPod (containers without status yet are `waiting`). */
export function observePod(pod: V1Pod): ObservedPod {
  const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
  const names = [...new Set([...(pod.spec?.containers ?? []).map((c) => c.name), ...statuses.keys()])];
  const phase = pod.status?.phase;
  const deletionTimestamp = toMillis(pod.metadata?.deletionTimestamp);
  const createdAt = toMillis(pod.metadata?.creationTimestamp);
  return {
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    labels: { ...(pod.metadata?.labels ?? {}) },
    phase: phase && POD_PHASES.has(phase) ? (phase as ObservedPod['phase']) : 'Unknown',
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    ...(pod.status?.podIP ? { podIP: pod.status.podIP } : {}),
    ...(deletionTimestamp === undefined ? {} : { deletionTimestamp }),
    ...(createdAt === undefined ? {} : { createdAt }),
    containers: names.map((name) => {
      const s = statuses.get(name);
      const restartCount = s?.restartCount ?? 0;
      if (s?.state?.terminated) {
        const t = s.state.terminated;
        return {
          name,
          state: 'terminated' as const,
          exitCode: t.exitCode,
          ...(t.reason ? { reason: t.reason } : {}),
          restartCount,
        };
      }
      if (s?.state?.running) return { name, state: 'running' as const, restartCount };
      const reason = s?.state?.waiting?.reason;
      return { name, state: 'waiting' as const, ...(reason ? { reason } : {}), restartCount };
    }),
  };
}

/** Translates a V1Node into the core's ObservedNode (Ready condition, HyperPod health label, instance id). */
export function observeNode(node: V1Node): ObservedNode {
  const name = node.metadata?.name ?? '';
  const labels = { ...(node.metadata?.labels ?? {}) };
  const ready = (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  const health = labels[NODE_HEALTH_LABEL];
  const instanceId = instanceIdOf({
    name,
    ...(node.spec?.providerID ? { providerID: node.spec.providerID } : {}),
  });
  return {
    name,
    labels,
    ready,
    ...(health ? { health } : {}),
    ...(instanceId ? { instanceId } : {}),
    ...(node.spec?.unschedulable ? { unschedulable: true } : {}),
  };
}

/** A deterministic, DNS-subdomain-safe Event name: duplicate deliveries of one event collide (409). */
export function kubeEventName(ref: JobRef, event: JobEvent): string {
  let h = 0x811c9dc5;
  for (const ch of `${event.generation}|${event.reason}|${event.message}`) {
    h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  }
  return `${ref.name}.${event.at.toString(16)}.${h.toString(16).padStart(8, '0')}`.slice(0, 253);
}

/** The pod an Event about the job is attached to: rank 0 of the newest generation, else the first pod. */
export function eventTarget(pods: ObservedPod[]): ObservedPod | undefined {
  const live = pods.filter((p) => p.deletionTimestamp === undefined);
  const pool = live.length > 0 ? live : pods;
  const gen = (p: ObservedPod) => Number(p.labels[POD_LABELS.generation] ?? -1);
  const rank0 = pool
    .filter((p) => p.labels[POD_LABELS.index] === '0' && p.labels[POD_LABELS.spare] !== 'true')
    .sort((a, b) => gen(b) - gen(a))[0];
  return rank0 ?? [...pool].sort((a, b) => a.name.localeCompare(b.name))[0];
}

/** The `Cluster` port on the Kubernetes API. Build it with `kubeClusterFromConfig`. */
export class KubeCluster implements Cluster {
  /** API calls and errors of this adapter (read by the bench and the metrics). */
  readonly stats: KubeApiStats;
  private readonly core: CoreV1Api;
  private readonly policy: RetryPolicy;
  private readonly agentConcurrency: number;
  private readonly agentLimiter: Limiter;
  private readonly apiConcurrency: number;
  private readonly agentTimeoutMs: number;
  private readonly defaultStopTimeoutSeconds: number;
  private readonly stopMarginMs: number;
  private readonly agentPort: number;
  private readonly listPageSize: number;
  private readonly nodeListThreshold: number;
  private proxyAgent: http.Agent | undefined;

  constructor(
    private readonly kc: KubeConfig,
    options: KubeClusterOptions = {},
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.stats = options.stats ?? new KubeApiStats();
    this.policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.agentConcurrency = options.agentConcurrency ?? DEFAULT_AGENT_CONCURRENCY;
    this.agentLimiter = new Limiter(this.agentConcurrency);
    this.apiConcurrency = options.apiConcurrency ?? 32;
    this.agentTimeoutMs = options.agentTimeoutMs ?? 10_000;
    this.defaultStopTimeoutSeconds = options.defaultStopTimeoutSeconds ?? 30;
    this.stopMarginMs = options.stopMarginMs ?? 10_000;
    this.agentPort = options.agentPort ?? AGENT_PORT;
    this.listPageSize = options.listPageSize ?? 500;
    this.nodeListThreshold = options.nodeListThreshold ?? 16;
  }

  private call<T>(
    operation: string,
    fn: () => Promise<T>,
    retryable?: (f: KubeFailure) => boolean,
  ): Promise<T> {
    return withRetries(operation, fn, {
      policy: this.policy,
      stats: this.stats,
      ...(retryable ? { retryable } : {}),
    });
  }

  async ensureService(spec: JobSpec): Promise<void> {
    const body = buildService(spec, { agentPort: this.agentPort });
    const namespace = spec.namespace;
    try {
      await this.call('createService', () => this.core.createNamespacedService({ namespace, body }));
      return;
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
    }
    // It exists: converge its selector and ports if someone changed them.
    const current = await this.call('getService', () =>
      this.core.readNamespacedService({ name: body.metadata!.name!, namespace }),
    );
    const same =
      JSON.stringify(current.spec?.selector ?? {}) === JSON.stringify(body.spec?.selector) &&
      JSON.stringify((current.spec?.ports ?? []).map((p) => p.port)) ===
        JSON.stringify((body.spec?.ports ?? []).map((p) => p.port));
    if (same) return;
    // JSON Patch `replace`: a merge patch would keep stray selector keys.
    await this.call('patchService', () =>
      this.core.patchNamespacedService(
        {
          name: body.metadata!.name!,
          namespace,
          body: [
            { op: 'replace', path: '/spec/selector', value: body.spec?.selector },
            { op: 'replace', path: '/spec/ports', value: body.spec?.ports },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    );
  }

  async createPods(spec: JobSpec, plans: PodPlan[]): Promise<void> {
    // Build all first: a bad plan fails before anything is created.
    const pods = plans.map((plan) => buildPod(spec, plan, { agentPort: this.agentPort }));
    const results = await mapBounded(pods, this.apiConcurrency, async (body) => {
      try {
        await this.call('createPod', () =>
          this.core.createNamespacedPod({ namespace: spec.namespace, body }),
        );
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
      }
    });
    valuesOrThrow(results);
  }

  async deletePods(
    namespace: string,
    names: string[],
    options: { gracePeriodSeconds?: number; force?: boolean } = {},
  ): Promise<void> {
    // `force` is kubectl's `--grace-period=0 --force`: the API server removes the object at once instead of
    // waiting for a kubelet that may be gone with its node.
    const gracePeriodSeconds = options.force ? 0 : options.gracePeriodSeconds;
    const results = await mapBounded([...new Set(names)], this.apiConcurrency, async (name) => {
      try {
        await this.call(options.force ? 'forceDeletePod' : 'deletePod', () =>
          this.core.deleteNamespacedPod({
            name,
            namespace,
            ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }),
            propagationPolicy: 'Background',
          }),
        );
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    });
    valuesOrThrow(results);
  }

  async listJobPods(ref: JobRef): Promise<ObservedPod[]> {
    const pods: ObservedPod[] = [];
    let cont: string | undefined;
    do {
      const page = await this.call('listPods', () =>
        this.core.listNamespacedPod({
          namespace: ref.namespace,
          labelSelector: `${POD_LABELS.job}=${ref.name}`,
          limit: this.listPageSize,
          ...(cont ? { _continue: cont } : {}),
        }),
      );
      pods.push(...page.items.map(observePod));
      cont = page.metadata?._continue || undefined;
    } while (cont);
    return pods;
  }

  async getNodes(names: string[]): Promise<ObservedNode[]> {
    const wanted = [...new Set(names)];
    if (wanted.length > this.nodeListThreshold) {
      // One list beats thousands of reads for a large job (one node per pod).
      const set = new Set(wanted);
      const list = await this.call('listNodes', () => this.core.listNode({}));
      const byName = new Map(
        list.items.filter((n) => set.has(n.metadata?.name ?? '')).map((n) => [n.metadata?.name, n]),
      );
      return wanted.flatMap((name) => {
        const node = byName.get(name);
        return node ? [observeNode(node)] : [];
      });
    }
    const results = await mapBounded(wanted, this.apiConcurrency, async (name) => {
      try {
        return observeNode(await this.call('getNode', () => this.core.readNode({ name })));
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    });
    return valuesOrThrow(results).filter((n): n is ObservedNode => n !== undefined);
  }

  async listNodes(): Promise<ObservedNode[]> {
    const list = await this.call('listNodes', () => this.core.listNode({ labelSelector: NODE_HEALTH_LABEL }));
    return list.items.map(observeNode);
  }

  startAgents(
    namespace: string,
    starts: { pod: string; body: StartBody }[],
    options: AgentCallOptions = {},
  ): Promise<AgentCallResult[]> {
    return this.fanOut(
      starts,
      (s) => this.agentCall(namespace, s.pod, 'POST', 'start', s.body, this.agentTimeoutMs),
      options,
    );
  }

  stopAgents(
    namespace: string,
    pods: string[],
    body: StopBody = {},
    options: AgentCallOptions = {},
  ): Promise<AgentCallResult[]> {
    const timeoutMs = (body.timeout ?? this.defaultStopTimeoutSeconds) * 1000 + this.stopMarginMs;
    return this.fanOut(
      pods,
      (pod) => this.agentCall(namespace, pod, 'POST', 'stop', body, timeoutMs),
      options,
    );
  }

  restartInProcess(
    namespace: string,
    starts: { pod: string; body: InProcessRestartBody }[],
  ): Promise<AgentCallResult[]> {
    return this.fanOut(
      starts,
      (s) => this.agentCall(namespace, s.pod, 'POST', 'inprocess-restart', s.body, this.agentTimeoutMs),
      {},
    );
  }

  shutdownAgents(namespace: string, pods: string[]): Promise<AgentCallResult[]> {
    return this.fanOut(pods, (pod) =>
      this.agentCall(namespace, pod, 'POST', 'shutdown', {}, this.agentTimeoutMs),
    );
  }

  signalElasticEvent(namespace: string, pods: string[], body: ElasticEventBody): Promise<AgentCallResult[]> {
    return this.fanOut(pods, (pod) =>
      this.agentCall(namespace, pod, 'POST', 'elastic-event', body, this.agentTimeoutMs),
    );
  }

  agentStatus(namespace: string, pods: string[], options: AgentCallOptions = {}): Promise<AgentCallResult[]> {
    return this.fanOut(
      pods,
      (pod) => this.agentCall(namespace, pod, 'GET', 'status', undefined, this.agentTimeoutMs),
      options,
    );
  }

  async recordKubeEvent(ref: JobRef, event: JobEvent): Promise<void> {
    const target = eventTarget(await this.listJobPods(ref));
    const at = new Date(event.at);
    const body: CoreV1Event = {
      metadata: { name: kubeEventName(ref, event), namespace: ref.namespace },
      involvedObject: target
        ? { apiVersion: 'v1', kind: 'Pod', name: target.name, namespace: ref.namespace }
        : { apiVersion: 'v1', kind: 'Service', name: serviceName(ref.name), namespace: ref.namespace },
      reason: event.reason,
      message: event.message.slice(0, 1024),
      type: event.type,
      source: { component: 'trainkeeper' },
      reportingComponent: 'trainkeeper',
      reportingInstance: 'trainkeeper',
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    try {
      await this.call('createEvent', () =>
        this.core.createNamespacedEvent({ namespace: ref.namespace, body }),
      );
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
    }
  }

  /**
   * One call per item through the shared limiter, results in input order. At most `agentConcurrency`
   * workers per fan-out, so thousands of pods never become thousands of pending promises. Once
   * `shouldStart` answers false, no further call of this fan-out is made and those items get no result.
   */
  private async fanOut<T>(
    items: T[],
    fn: (item: T) => Promise<AgentCallResult>,
    options: AgentCallOptions = {},
  ): Promise<AgentCallResult[]> {
    let ended = false;
    const settled = await mapBounded(items, this.agentConcurrency, async (item) => {
      if (ended) return undefined;
      return this.agentLimiter.run(async () => {
        if (ended || (options.shouldStart && !options.shouldStart())) {
          ended = true;
          return undefined;
        }
        return fn(item);
      });
    });
    // agentCall never rejects; a rejection here is a bug surfaced as a failed call, not a lost result.
    return settled.flatMap((r, i): AgentCallResult[] => {
      if (r.status === 'rejected') {
        return [{ pod: podOf(items[i]), ok: false, error: String(r.reason), unreachable: false }];
      }
      return r.value === undefined ? [] : [r.value];
    });
  }

  /** One agent call through `pods/proxy`, retried per policy for 429/500/501 and API-server connection errors. */
  private async agentCall(
    namespace: string,
    pod: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<AgentCallResult> {
    const operation = `agent:${path}`;
    let response: { status: number; body: string };
    try {
      response = await this.call(
        operation,
        async () => {
          const r = await this.proxyRequest(namespace, pod, method, path, body, timeoutMs);
          if (r.status === 429 || r.status === 500 || r.status === 501) {
            throw new ProxyHttpError(r.status, r.headers, r.body);
          }
          return r;
        },
        isRetryableAgentFailure,
      );
    } catch (err) {
      // A timeout means the agent did not answer in time (hung, or its node is gone): unreachable. Anything
      // else that survived the retries is the API server's trouble (throttling, 5xx, connection), which
      // says nothing about the agent.
      const f = classifyError((err as { cause?: unknown }).cause ?? err);
      return {
        pod,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        unreachable: f.kind === 'timeout',
      };
    }
    if (PROXY_UNREACHABLE.has(response.status)) {
      this.stats.recordError(operation, String(response.status));
      return {
        pod,
        ok: false,
        error: `proxy ${response.status}: ${response.body.slice(0, 300)}`,
        unreachable: true,
      };
    }
    if (response.status < 200 || response.status >= 300) {
      this.stats.recordError(operation, String(response.status));
      // A Kubernetes Status (not the agent) answering 404: the pod is gone, so is its agent.
      const podGone = response.status === 404 && /"kind"\s*:\s*"Status"/.test(response.body);
      return {
        pod,
        ok: false,
        error: `${podGone ? 'pod not found' : 'agent answered'} ${response.status}: ${response.body.slice(0, 300)}`,
        unreachable: podGone,
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      return {
        pod,
        ok: false,
        error: `agent answered non-JSON: ${response.body.slice(0, 200)}`,
        unreachable: false,
      };
    }
    const parsed = StatusBody.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        pod,
        ok: false,
        error: `invalid status body at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
        unreachable: false,
      };
    }
    return { pod, ok: true, status: parsed.data };
  }

  /**
   * A raw request to `/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/<path>` with the KubeConfig's TLS and
   * credentials (client-node's generated proxy methods cannot send a body). One keep-alive agent is reused.
   */
  private async proxyRequest(
    namespace: string,
    pod: string,
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('kubeconfig has no current cluster');
    const base = new URL(server);
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const isHttps = base.protocol === 'https:';
    if (!this.proxyAgent) {
      const tls = (opts.agent as https.Agent | undefined)?.options ?? {};
      this.proxyAgent = isHttps
        ? new https.Agent({ ...tls, keepAlive: true, maxSockets: this.agentConcurrency })
        : new http.Agent({ keepAlive: true, maxSockets: this.agentConcurrency });
    }
    const prefix = base.pathname.replace(/\/$/, '');
    const url = `${prefix}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(
      `${pod}:${this.agentPort}`,
    )}/proxy/${path}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = {
      ...((opts.headers as http.OutgoingHttpHeaders | undefined) ?? {}),
      ...JSON_HEADERS,
      ...(payload ? { 'content-length': payload.length } : {}),
    };
    const request = isHttps ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          path: url,
          method,
          headers,
          agent: this.proxyAgent,
          signal: AbortSignal.timeout(timeoutMs),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Closes the keep-alive sockets of agent calls (tests and the bench call it before exiting). */
  close(): void {
    this.proxyAgent?.destroy();
    this.proxyAgent = undefined;
  }
}

/**
 * Agent calls retry what the API server retries, except timeouts: the call already waited its whole
 * budget (for /stop, the agent's stop timeout), and a second wait would only delay the restart.
 */
const isRetryableAgentFailure = (f: KubeFailure): boolean => f.kind !== 'timeout' && isRetryableFailure(f);

function podOf(item: unknown): string {
  return typeof item === 'string' ? item : String((item as { pod?: unknown }).pod);
}

/** The adapter for a KubeConfig (EKS via `clusterKubeConfig`, or the local API server's). */
export function kubeClusterFromConfig(kc: KubeConfig, options: KubeClusterOptions = {}): KubeCluster {
  return new KubeCluster(kc, options);
}
