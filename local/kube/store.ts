/**
 * The local API server's storage: core/v1 objects in memory, one monotonic `resourceVersion` across all of
 * them, and a bounded history of changes that watches replay from. The HTTP layer (api-server.ts), the
 * scheduler and the kubelet all read and write through this one store, so every change reaches every watch
 * in order.
 */
import { randomUUID } from 'node:crypto';

/** The resources the local server serves, with their kinds and scope. */
export const RESOURCES = {
  pods: { kind: 'Pod', namespaced: true, shortNames: ['po'], verbsSub: ['status', 'log', 'proxy'] },
  services: { kind: 'Service', namespaced: true, shortNames: ['svc'], verbsSub: ['status'] },
  events: { kind: 'Event', namespaced: true, shortNames: ['ev'], verbsSub: [] },
  nodes: { kind: 'Node', namespaced: false, shortNames: ['no'], verbsSub: ['status'] },
  namespaces: { kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbsSub: ['status'] },
} as const;

/** One of the served resource names (the plural in the URL). */
export type Resource = keyof typeof RESOURCES;

/** Type guard for a URL segment naming a served resource. */
export const isResource = (name: string): name is Resource => Object.hasOwn(RESOURCES, name);

/** `metadata` as stored (timestamps are RFC 3339 strings, as on the wire). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  [key: string]: unknown;
}

/** A stored object: any core/v1 kind. Scheduler and kubelet narrow `spec`/`status` through types.ts. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** An object to create: the server fills uid, resourceVersion and creationTimestamp. */
export type NewObject = Omit<KubeObject, 'metadata'> & { metadata?: Partial<ObjectMeta> };

/** A change, as watches see it; `previous` is the object before a MODIFIED (for selector transitions). */
export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: Resource;
  object: KubeObject;
  previous?: KubeObject;
  resourceVersion: number;
}

/**
 * An API failure that maps to a Kubernetes `Status` (reason + HTTP code). Thrown by the store and the
 * HTTP layer; the server turns it into the response body.
 */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: {
      name?: string;
      kind?: string;
      causes?: { field: string; message: string }[];
      retryAfterSeconds?: number;
    },
  ) {
    super(message);
  }
}

/** RFC 3339 with second precision, like the API server's `metav1.Time`. */
export const kubeTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** DNS-1123 subdomain: what the API server requires of pod, service, node and namespace names. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Options of an ObjectStore. */
export interface StoreOptions {
  /** How many changes watches can replay (older resourceVersions get 410 Expired). Default 2000. */
  historyLimit?: number;
  /** Wall clock for timestamps (tests may pin it). */
  now?: () => number;
}

const key = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/**
 * In-memory object store with Kubernetes semantics.
 * Invariants: `resourceVersion` strictly increases with every write of any object; reads return copies, so
 * callers never mutate stored state; every write is published to subscribers synchronously, in order.
 */
export class ObjectStore {
  private rv = 0;
  private readonly objects = new Map<Resource, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  /** The newest resourceVersion dropped from history: a watch from below it has missed changes. */
  private compactedRv = 0;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private readonly historyLimit: number;
  private readonly pending: StoreEvent[] = [];
  private publishing = false;
  readonly now: () => number;

  constructor(options: StoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 2000;
    this.now = options.now ?? Date.now;
    for (const r of Object.keys(RESOURCES) as Resource[]) this.objects.set(r, new Map());
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Subscribes to every change; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A copy of one object, or undefined. */
  get(resource: Resource, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.objects
      .get(resource)!
      .get(key(RESOURCES[resource].namespaced ? namespace : undefined, name));
    return obj ? structuredClone(obj) : undefined;
  }

  /** Like get, but throws 404 NotFound. */
  mustGet(resource: Resource, namespace: string | undefined, name: string): KubeObject {
    const obj = this.get(resource, namespace, name);
    if (!obj) throw notFound(resource, name);
    return obj;
  }

  /** Copies of all objects of a resource, in one namespace or all, sorted by namespace then name. */
  list(resource: Resource, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.objects.get(resource)!.values()) {
      if (namespace === undefined || obj.metadata.namespace === namespace) out.push(structuredClone(obj));
    }
    return out.sort((a, b) =>
      key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)),
    );
  }

  /**
   * Creates an object: validates the name (or fills it from generateName), sets uid, creationTimestamp
   * and resourceVersion. 409 AlreadyExists when the name is taken, 422 Invalid for a bad name.
   */
  create(resource: Resource, input: NewObject): KubeObject {
    const info = RESOURCES[resource];
    const obj = structuredClone(input) as KubeObject;
    obj.apiVersion = 'v1';
    obj.kind = info.kind;
    obj.metadata ??= {} as ObjectMeta;
    const meta = obj.metadata;
    if (!info.namespaced) delete meta.namespace;
    const table = this.objects.get(resource)!;
    if (!meta.name && meta.generateName) {
      do {
        meta.name = meta.generateName + Math.random().toString(36).slice(2, 7);
      } while (table.has(key(meta.namespace, meta.name)));
    }
    this.validateName(resource, meta.name);
    if (table.has(key(meta.namespace, meta.name))) {
      throw new ApiError(409, 'AlreadyExists', `${resource} "${meta.name}" already exists`, {
        name: meta.name,
        kind: resource,
      });
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = kubeTime(this.now());
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    meta.resourceVersion = String(++this.rv);
    table.set(key(meta.namespace, meta.name), obj);
    this.publish({ type: 'ADDED', resource, object: obj, resourceVersion: this.rv });
    return structuredClone(obj);
  }

  /**
   * Replaces an existing object. Identity fields (name, namespace, uid, creationTimestamp) are kept from the
   * stored object; a `resourceVersion` in the input must equal the stored one (409 Conflict otherwise),
   * which gives PUT and patches their optimistic concurrency. An update that changes nothing does not
   * bump the resourceVersion or notify anyone.
   */
  update(resource: Resource, input: KubeObject): KubeObject {
    const table = this.objects.get(resource)!;
    const ns = RESOURCES[resource].namespaced ? input.metadata?.namespace : undefined;
    const name = input.metadata?.name;
    const current = table.get(key(ns, name));
    if (!current) throw notFound(resource, name);
    const obj = structuredClone(input);
    const sent = obj.metadata.resourceVersion;
    if (sent !== undefined && sent !== '' && sent !== current.metadata.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: resource },
      );
    }
    obj.apiVersion = current.apiVersion;
    obj.kind = current.kind;
    for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'generateName'] as const) {
      if (current.metadata[k] === undefined) delete obj.metadata[k];
      else obj.metadata[k] = current.metadata[k];
    }
    // Deletion, once requested, is not undone by an update.
    if (current.metadata.deletionTimestamp) {
      obj.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      obj.metadata.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    }
    obj.metadata.resourceVersion = current.metadata.resourceVersion;
    if (JSON.stringify(obj) === JSON.stringify(current)) return structuredClone(current);
    obj.metadata.resourceVersion = String(++this.rv);
    table.set(key(ns, name), obj);
    this.publish({ type: 'MODIFIED', resource, object: obj, previous: current, resourceVersion: this.rv });
    return structuredClone(obj);
  }

  /**
   * Read-modify-write for in-process writers (scheduler, kubelet): `fn` edits a copy of the stored object.
   * Returns undefined when the object is gone. Never conflicts: the process is single-threaded.
   */
  mutate(
    resource: Resource,
    namespace: string | undefined,
    name: string,
    fn: (obj: KubeObject) => void,
  ): KubeObject | undefined {
    const obj = this.get(resource, namespace, name);
    if (!obj) return undefined;
    fn(obj);
    return this.update(resource, obj);
  }

  /** Marks an object for deletion (graceful): sets deletionTimestamp and the grace period. */
  markDeleting(
    resource: Resource,
    namespace: string | undefined,
    name: string,
    graceSeconds: number,
  ): KubeObject {
    const obj = this.mustGet(resource, namespace, name);
    if (!obj.metadata.deletionTimestamp) {
      obj.metadata.deletionTimestamp = kubeTime(this.now() + graceSeconds * 1000);
      obj.metadata.deletionGracePeriodSeconds = graceSeconds;
    } else if ((obj.metadata.deletionGracePeriodSeconds ?? Number.POSITIVE_INFINITY) > graceSeconds) {
      // A shorter grace overrides a longer one, as in Kubernetes.
      obj.metadata.deletionTimestamp = kubeTime(this.now() + graceSeconds * 1000);
      obj.metadata.deletionGracePeriodSeconds = graceSeconds;
    } else {
      return obj;
    }
    const table = this.objects.get(resource)!;
    const current = table.get(key(obj.metadata.namespace, name))!;
    obj.metadata.resourceVersion = String(++this.rv);
    table.set(key(obj.metadata.namespace, name), obj);
    this.publish({ type: 'MODIFIED', resource, object: obj, previous: current, resourceVersion: this.rv });
    return structuredClone(obj);
  }

  /** Removes an object now; the DELETED event carries a new resourceVersion. 404 when absent. */
  remove(resource: Resource, namespace: string | undefined, name: string): KubeObject {
    const table = this.objects.get(resource)!;
    const k = key(RESOURCES[resource].namespaced ? namespace : undefined, name);
    const current = table.get(k);
    if (!current) throw notFound(resource, name);
    table.delete(k);
    const obj = structuredClone(current);
    obj.metadata.resourceVersion = String(++this.rv);
    this.publish({ type: 'DELETED', resource, object: obj, resourceVersion: this.rv });
    return structuredClone(obj);
  }

  /**
   * The changes after `resourceVersion`, oldest first, or 'expired' when some of them were already
   * dropped from the bounded history (the caller answers 410 Gone, reason Expired).
   */
  changesSince(resourceVersion: number): StoreEvent[] | 'expired' {
    if (resourceVersion < this.compactedRv) return 'expired';
    return this.history.filter((e) => e.resourceVersion > resourceVersion);
  }

  /**
   * Records the change and notifies subscribers. A subscriber that writes from inside its callback does not
   * re-enter: the nested change is queued and delivered after the current one reached every subscriber, so
   * all subscribers (watches included) see changes in resourceVersion order.
   */
  private publish(event: StoreEvent): void {
    this.history.push(event);
    while (this.history.length > this.historyLimit) this.compactedRv = this.history.shift()!.resourceVersion;
    this.pending.push(event);
    if (this.publishing) return;
    this.publishing = true;
    try {
      for (let next = this.pending.shift(); next; next = this.pending.shift()) {
        for (const listener of [...this.listeners]) {
          try {
            listener(next);
          } catch (err) {
            // One broken subscriber must not starve the others (or the writer) of changes.
            process.emitWarning(
              `local kube store subscriber failed: ${(err as Error)?.stack ?? String(err)}`,
            );
          }
        }
      }
    } finally {
      this.publishing = false;
    }
  }

  private validateName(resource: Resource, name: unknown): void {
    const label = resource === 'namespaces' || resource === 'services';
    const valid =
      typeof name === 'string' &&
      name.length > 0 &&
      name.length <= (label ? 63 : 253) &&
      (label ? DNS_LABEL : DNS_SUBDOMAIN).test(name);
    if (!valid) {
      const shown = typeof name === 'string' ? name : '';
      throw new ApiError(
        422,
        'Invalid',
        `${RESOURCES[resource].kind} "${shown}" is invalid: metadata.name: Invalid value: "${shown}": a lowercase RFC 1123 ${label ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.'`,
        {
          name: shown,
          kind: resource,
          causes: [{ field: 'metadata.name', message: `Invalid value: "${shown}"` }],
        },
      );
    }
  }
}

/** The 404 the API server answers for a missing object. */
export function notFound(resource: string, name: string | undefined): ApiError {
  return new ApiError(404, 'NotFound', `${resource} "${name ?? ''}" not found`, { name, kind: resource });
}
