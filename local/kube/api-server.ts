/**
 * The local Kubernetes API server: the core/v1 REST dialect that `@kubernetes/client-node` and kubectl
 * speak, for pods, services, nodes, events and namespaces, served from an ObjectStore.
 *
 * Transport: HTTPS when given a certificate (startLocalKube always gives one, see tls.ts: kubectl never sends
 * a bearer token over plain HTTP and client-node refuses `http:` without skipTLSVerify), plain HTTP
 * otherwise (for tests that build the server by hand and set skipTLSVerify). Authentication is real: every
 * request needs `Authorization: Bearer <token>`.
 *
 * Semantics kept from Kubernetes: monotonic resourceVersion; list + watch with label/field selectors and
 * replay from a resourceVersion (a compacted one gets a watch ERROR event carrying 410 Expired, as the real
 * server does); merge, strategic merge and JSON patches; graceful deletion through deletionTimestamp;
 * `pods/{name}/status`, `/log` and `/proxy`; errors as `Status` objects; the OpenAPI v3 documents and
 * `fieldValidation` kubectl relies on to validate (top level and metadata, see openapi.ts).
 * Not kept: list pagination (`limit` is ignored and everything is returned in one page), server-side apply
 * (415), protobuf, namespace finalization (deleting a namespace removes its objects at once).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DNS_1035_LABEL } from '../../core/decide/naming.ts';
import { CORE_V1_OPENAPI, fieldValidationOf, OPENAPI_V3_ROOT, unknownFields } from './openapi.ts';
import { jsonPatch, mergePatch, PatchError, strategicMerge } from './patch.ts';
import {
  matchesFields,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from './selectors.ts';
import {
  ApiError,
  isResource,
  type KubeObject,
  kubeTime,
  type ObjectStore,
  RESOURCES,
  type Resource,
  type StoreEvent,
} from './store.ts';
import { toTable, wantsTable } from './table.ts';

/** One captured output line of a container, as `pods/{name}/log` serves it. */
export interface LogLine {
  /** Epoch milliseconds when the kubelet read the line. */
  timestamp: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** Where the server reads container output from (the kubelet implements it). */
export interface PodLogSource {
  /** Buffered lines of a container, or undefined when it never started. `container` defaults to the first. */
  lines(namespace: string, pod: string, container?: string): LogLine[] | undefined;
  /** Calls `onLine` for each new line until the container ends (`onEnd`); returns an unsubscribe. */
  follow(
    namespace: string,
    pod: string,
    container: string | undefined,
    onLine: (line: LogLine) => void,
    onEnd: () => void,
  ): () => void;
}

/** Resolves where `pods/{name}[:port]/proxy` goes: a loopback host and port, or undefined (503). */
export type ProxyResolver = (
  pod: KubeObject,
  port: number | undefined,
) => { host: string; port: number } | undefined;

/** A scripted failure: the next `count` matching requests get `status` instead of being served. */
export interface FaultSpec {
  status: 429 | 500 | 502 | 503 | 504;
  count: number;
  /** Sent as `Retry-After` (and in the Status details), as the real server does for 429. */
  retryAfterSeconds?: number;
  /** Which requests fail; `path` is the request URL's path and query. Default: every request. */
  match?: (method: string, path: string) => boolean;
}

/** Options of LocalApiServer. */
export interface ApiServerOptions {
  store: ObjectStore;
  /** The bearer token every request must carry. */
  token: string;
  logs?: PodLogSource;
  proxy?: ProxyResolver;
  /** Added delay before every request is served (the fan-out benchmark's network stand-in). */
  latencyMs?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 5000 ms. */
  bookmarkIntervalMs?: number;
  /** Serve HTTPS with this certificate and key (PEM). Default: plain HTTP. */
  tls?: { cert: string; key: string };
}

const FAULT_REASONS: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

const MAX_BODY = 16 * 1024 * 1024;
const SERVER_VERSION = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.0-trainkeeper-local',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.22.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

type Query = URLSearchParams;

/**
 * The HTTP server. Start with `listen()`, stop with `close()` (which also ends open watches and proxied
 * connections). Invariants: every response is JSON (a `Status` on failure) except logs and proxied bodies;
 * open watches are tracked with `res.on('close')` and released when the client goes away.
 */
export class LocalApiServer {
  /** Per-request added latency; may be changed at run time. */
  latencyMs: number;
  private readonly store: ObjectStore;
  private readonly token: string;
  private readonly faults: FaultSpec[] = [];
  private readonly server: http.Server | https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<() => void>();
  private address = '';

  constructor(private readonly options: ApiServerOptions) {
    this.store = options.store;
    this.token = options.token;
    this.latencyMs = options.latencyMs ?? 0;
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    };
    this.server = options.tls
      ? https.createServer({ ...options.tls }, listener)
      : http.createServer(listener);
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * Listens on 127.0.0.1 only (`port` 0 = a free one) and returns the base URL. Loopback is not a choice:
   * the server is a guest on the user's machine and must not be reachable from the network.
   */
  async listen(port = 0): Promise<string> {
    const host = '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.address = `${this.options.tls ? 'https' : 'http'}://${host}:${addr.port}`;
    return this.address;
  }

  /** The base URL (after listen). */
  get url(): string {
    return this.address;
  }

  /** How many watch streams are open right now. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** Queues a scripted failure (see FaultSpec); faults are consumed in the order they were injected. */
  injectFaults(fault: FaultSpec): void {
    this.faults.push({ ...fault });
  }

  /** Drops every queued fault. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Ends every watch, closes every connection and stops listening. */
  async close(): Promise<void> {
    for (const end of [...this.watches]) end();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    }
    const faultIndex = this.faults.findIndex(
      (f) => f.count > 0 && (!f.match || f.match(method, url.pathname + url.search)),
    );
    if (faultIndex >= 0) {
      const fault = this.faults[faultIndex]!;
      fault.count--;
      if (fault.count <= 0) this.faults.splice(faultIndex, 1);
      if (fault.retryAfterSeconds !== undefined)
        res.setHeader('Retry-After', String(fault.retryAfterSeconds));
      throw new ApiError(fault.status, FAULT_REASONS[fault.status] ?? 'InternalError', 'injected fault', {
        ...(fault.retryAfterSeconds !== undefined ? { retryAfterSeconds: fault.retryAfterSeconds } : {}),
      });
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (method === 'GET') {
      if (path === '/version') return this.json(res, 200, SERVER_VERSION);
      if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        return;
      }
      if (path === '/api') {
        return this.json(res, 200, {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [
            { clientCIDR: '0.0.0.0/0', serverAddress: new URL(this.address).host },
          ],
        });
      }
      if (path === '/apis')
        return this.json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
      if (path === '/api/v1') return this.json(res, 200, discovery());
      // What kubectl reads before it validates a manifest (see openapi.ts).
      if (path === '/openapi/v3') return this.rawJson(res, OPENAPI_V3_ROOT);
      if (path === '/openapi/v3/api/v1') return this.rawJson(res, CORE_V1_OPENAPI);
    }
    if (!path.startsWith('/api/v1/')) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
    }
    const segments = path.slice('/api/v1/'.length).split('/').map(decodeURIComponent);
    const query = url.searchParams;
    let watch = query.get('watch') === 'true' || query.get('watch') === '1';
    if (segments[0] === 'watch') {
      segments.shift();
      watch = true;
    }
    // Route: [resource] | [resource, name, sub, ...] | ['namespaces', ns, resource, name, sub, ...]
    let namespace: string | undefined;
    let rest = segments;
    if (segments[0] === 'namespaces' && segments.length >= 3) {
      namespace = segments[1];
      rest = segments.slice(2);
    }
    const [resourceName = '', rawName, sub, ...subPath] = rest;
    if (!isResource(resourceName)) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
    }
    const resource: Resource = resourceName;
    const info = RESOURCES[resource];
    if (info.namespaced && rawName !== undefined && namespace === undefined) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
    }
    if (!info.namespaced && namespace !== undefined) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
    }
    if (rawName === undefined) {
      if (method === 'GET' && watch) return this.watch(res, resource, namespace, query);
      if (method === 'GET') return this.list(res, resource, namespace, query, wantsTable(req.headers.accept));
      if (method === 'POST') return this.create(req, res, resource, namespace, query);
      throw methodNotAllowed(method, path);
    }
    // `name:port` and `scheme:name:port` address a port for the proxy subresource.
    let name = rawName;
    let port: number | undefined;
    if (sub === 'proxy' && rawName.includes(':')) {
      const parts = rawName.split(':');
      if (parts.length === 3) parts.shift();
      name = parts[0]!;
      port = Number(parts[1]);
      if (!Number.isInteger(port) || port <= 0)
        throw new ApiError(400, 'BadRequest', `invalid port in "${rawName}"`);
    }
    if (sub === undefined) {
      if (method === 'GET' && watch) {
        // Legacy single-object watch (`/api/v1/watch/.../pods/{name}`): a watch narrowed to that name.
        const narrowed = new URLSearchParams(query);
        const fields = narrowed.get('fieldSelector');
        narrowed.set('fieldSelector', `${fields ? `${fields},` : ''}metadata.name=${name}`);
        return this.watch(res, resource, namespace, narrowed);
      }
      if (method === 'GET') {
        const obj = this.store.mustGet(resource, namespace, name);
        if (wantsTable(req.headers.accept)) {
          return this.json(
            res,
            200,
            toTable(resource, [obj], obj.metadata.resourceVersion, this.store.now()),
          );
        }
        return this.json(res, 200, obj);
      }
      if (method === 'PUT') return this.replace(req, res, resource, namespace, name, 'main', query);
      if (method === 'PATCH') return this.patch(req, res, resource, namespace, name, 'main', query);
      if (method === 'DELETE') return this.delete(req, res, resource, namespace, name, query);
      throw methodNotAllowed(method, path);
    }
    if (sub === 'status' && (info.verbsSub as readonly string[]).includes('status')) {
      if (method === 'GET') return this.json(res, 200, this.store.mustGet(resource, namespace, name));
      if (method === 'PUT') return this.replace(req, res, resource, namespace, name, 'status', query);
      if (method === 'PATCH') return this.patch(req, res, resource, namespace, name, 'status', query);
      throw methodNotAllowed(method, path);
    }
    if (resource === 'pods' && sub === 'log' && method === 'GET') {
      return this.podLog(res, namespace!, name, query);
    }
    if (resource === 'pods' && sub === 'proxy') {
      return this.proxy(req, res, namespace!, name, port, `/${subPath.join('/')}${url.search}`);
    }
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
  }

  private list(
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    query: Query,
    table = false,
  ): void {
    const matches = this.matcher(namespace, query);
    if (table) {
      const objects = this.store.list(resource, namespace).filter(matches);
      this.json(res, 200, toTable(resource, objects, String(this.store.resourceVersion), this.store.now()));
      return;
    }
    const items = this.store
      .list(resource, namespace)
      .filter(matches)
      .map(({ apiVersion: _a, kind: _k, ...item }) => item);
    this.json(res, 200, {
      kind: `${RESOURCES[resource].kind}List`,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.store.resourceVersion) },
      items,
    });
  }

  private matcher(namespace: string | undefined, query: Query): (obj: KubeObject) => boolean {
    try {
      const labels = parseLabelSelector(query.get('labelSelector') ?? undefined);
      const fields = parseFieldSelector(query.get('fieldSelector') ?? undefined);
      return (obj) =>
        (namespace === undefined || obj.metadata.namespace === namespace) &&
        matchesRequirements(labels, obj.metadata.labels) &&
        matchesFields(fields, obj);
    } catch (err) {
      if (err instanceof SelectorError) throw new ApiError(400, 'BadRequest', err.message);
      throw err;
    }
  }

  /**
   * A watch stream: newline-delimited WatchEvents. Without a resourceVersion (or "0") it starts with
   * synthetic ADDED events for the current objects; with one it replays the retained changes after it, or
   * sends one ERROR event (Status 410 Expired) and ends when they were compacted. Objects that stop or
   * start matching the selectors arrive as DELETED / ADDED, as from the real server.
   */
  private watch(res: ServerResponse, resource: Resource, namespace: string | undefined, query: Query): void {
    const matches = this.matcher(namespace, query);
    const rvParam = query.get('resourceVersion') ?? '';
    const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      throw new ApiError(400, 'BadRequest', `invalid resourceVersion "${rvParam}"`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    const send = (type: string, object: unknown) => {
      if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const deliver = (event: StoreEvent) => {
      if (event.resource !== resource) return;
      const now = matches(event.object);
      if (event.type === 'MODIFIED') {
        const before = event.previous ? matches(event.previous) : now;
        if (before && now) send('MODIFIED', event.object);
        else if (!before && now) send('ADDED', event.object);
        else if (before && !now) send('DELETED', event.object);
      } else if (now) {
        send(event.type, event.object);
      }
    };
    if (from === undefined) {
      for (const obj of this.store.list(resource, namespace).filter(matches)) send('ADDED', obj);
    } else {
      const changes = this.store.changesSince(from);
      if (changes === 'expired') {
        send('ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${from} (${this.store.resourceVersion})`,
          reason: 'Expired',
          code: 410,
        });
        res.end();
        return;
      }
      for (const event of changes) deliver(event);
    }
    const unsubscribe = this.store.subscribe(deliver);
    const timers: NodeJS.Timeout[] = [];
    if (query.get('allowWatchBookmarks') === 'true') {
      const interval = setInterval(
        () =>
          send('BOOKMARK', {
            kind: RESOURCES[resource].kind,
            apiVersion: 'v1',
            metadata: { resourceVersion: String(this.store.resourceVersion) },
          }),
        this.options.bookmarkIntervalMs ?? 5000,
      );
      timers.push(interval);
    }
    const end = () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.watches.delete(end);
      if (!res.writableEnded) res.end();
    };
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '');
    if (timeoutSeconds > 0) timers.push(setTimeout(end, timeoutSeconds * 1000));
    this.watches.add(end);
    // The response's close (not the request's) tells that the client went away.
    res.on('close', end);
  }

  private async create(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    query: Query,
  ): Promise<void> {
    const body = await readObject(req);
    this.validateFields(res, resource, body, query);
    body.metadata ??= {} as KubeObject['metadata'];
    if (RESOURCES[resource].namespaced) {
      const ns = namespace ?? body.metadata.namespace;
      if (!ns) throw new ApiError(400, 'BadRequest', 'a namespace is required to create a namespaced object');
      if (body.metadata.namespace && body.metadata.namespace !== ns) {
        throw new ApiError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      body.metadata.namespace = ns;
      this.ensureNamespace(ns);
    }
    applyDefaults(resource, body, this.store.now());
    const created = this.store.create(resource, body);
    this.json(res, 201, created);
  }

  /** Creates the namespace on first use, as a convenience (real clusters need it created first). */
  ensureNamespace(name: string): void {
    if (this.store.get('namespaces', undefined, name)) return;
    this.store.create('namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
  }

  private async replace(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    name: string,
    part: 'main' | 'status',
    query: Query,
  ): Promise<void> {
    const body = await readObject(req);
    this.validateFields(res, resource, body, query);
    if (body.metadata?.name !== undefined && body.metadata.name !== name) {
      throw new ApiError(
        400,
        'BadRequest',
        `the name of the object (${body.metadata.name}) does not match the URL (${name})`,
      );
    }
    const current = this.store.mustGet(resource, namespace, name);
    this.json(res, 200, this.store.update(resource, restrictTo(part, current, body)));
  }

  private async patch(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    name: string,
    part: 'main' | 'status',
    query: Query,
  ): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const apply =
      type === 'application/merge-patch+json'
        ? mergePatch
        : type === 'application/strategic-merge-patch+json'
          ? strategicMerge
          : type === 'application/json-patch+json'
            ? jsonPatch
            : undefined;
    if (!apply) {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${type}")`,
      );
    }
    const patchBody = await readJson(req);
    // A JSON patch names paths, not fields; merge and strategic patches are partial objects.
    if (apply !== jsonPatch) this.validateFields(res, resource, patchBody, query);
    const current = this.store.mustGet(resource, namespace, name);
    let patched: KubeObject;
    try {
      patched = apply(current, patchBody) as KubeObject;
    } catch (err) {
      if (err instanceof PatchError)
        throw new ApiError(422, 'Invalid', err.message, { name, kind: resource });
      throw err;
    }
    if (patched === null || typeof patched !== 'object' || Array.isArray(patched)) {
      throw new ApiError(422, 'Invalid', 'the patch must leave an object', { name, kind: resource });
    }
    patched.metadata ??= {} as KubeObject['metadata'];
    patched.metadata.name = name;
    if (namespace !== undefined) patched.metadata.namespace = namespace;
    this.json(res, 200, this.store.update(resource, restrictTo(part, current, patched)));
  }

  /**
   * Server-side field validation (`fieldValidation`, default Warn as on the real server): unknown fields
   * at the top level and in metadata (see openapi.ts) fail a Strict request with 400 and are named in
   * `Warning` headers otherwise.
   */
  private validateFields(res: ServerResponse, resource: Resource, body: unknown, query: Query): void {
    const directive = fieldValidationOf(query.get('fieldValidation'));
    if (directive === 'invalid') {
      throw new ApiError(
        400,
        'BadRequest',
        `fieldValidation: invalid value "${query.get('fieldValidation')}": must be one of Ignore, Warn, Strict`,
      );
    }
    if (directive === 'Ignore') return;
    const unknown = unknownFields(resource, body).map((f) => `unknown field "${f.slice(1)}"`);
    if (unknown.length === 0) return;
    if (directive === 'Strict') {
      const kind = RESOURCES[resource].kind;
      throw new ApiError(
        400,
        'BadRequest',
        `${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: ${unknown.join(', ')}`,
      );
    }
    res.setHeader(
      'Warning',
      unknown.map((w) => `299 - ${JSON.stringify(w)}`),
    );
  }

  private async delete(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    name: string,
    query: Query,
  ): Promise<void> {
    const options = (await readJson(req, true)) as {
      gracePeriodSeconds?: number;
      preconditions?: { uid?: string; resourceVersion?: string };
    } | null;
    const current = this.store.mustGet(resource, namespace, name);
    const pre = options?.preconditions;
    if (
      (pre?.uid && pre.uid !== current.metadata.uid) ||
      (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion)
    ) {
      throw new ApiError(409, 'Conflict', `Precondition failed for ${resource} "${name}"`, {
        name,
        kind: resource,
      });
    }
    const fromQuery = query.get('gracePeriodSeconds');
    let grace = fromQuery !== null && fromQuery !== '' ? Number(fromQuery) : options?.gracePeriodSeconds;
    if (grace !== undefined && (!Number.isFinite(grace) || grace < 0)) {
      throw new ApiError(422, 'Invalid', `invalid gracePeriodSeconds "${String(grace)}"`);
    }
    if (resource === 'pods') {
      const spec = (current.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
      const phase = (current.status as { phase?: string } | undefined)?.phase;
      grace ??= spec.terminationGracePeriodSeconds ?? 30;
      // A pod not (or no longer) running anywhere goes at once; a running one is left to its kubelet.
      if (grace > 0 && spec.nodeName && phase !== 'Succeeded' && phase !== 'Failed') {
        return this.json(res, 200, this.store.markDeleting('pods', namespace, name, Math.ceil(grace)));
      }
    }
    if (resource === 'namespaces') {
      for (const r of Object.keys(RESOURCES) as Resource[]) {
        if (!RESOURCES[r].namespaced) continue;
        for (const obj of this.store.list(r, name)) this.store.remove(r, name, obj.metadata.name);
      }
    }
    this.json(res, 200, this.store.remove(resource, namespace, name));
  }

  private podLog(res: ServerResponse, namespace: string, name: string, query: Query): void {
    const pod = this.store.mustGet('pods', namespace, name);
    const containers = ((pod.spec?.containers ?? []) as { name: string }[]).map((c) => c.name);
    const container = query.get('container') ?? containers[0];
    if (container === undefined || !containers.includes(container)) {
      throw new ApiError(400, 'BadRequest', `container ${container ?? '""'} is not valid for pod ${name}`);
    }
    const source = this.options.logs;
    const lines = source?.lines(namespace, name, container);
    if (!source || !lines) {
      throw new ApiError(
        400,
        'BadRequest',
        `container "${container}" in pod "${name}" is waiting to start: ContainerCreating`,
      );
    }
    const timestamps = query.get('timestamps') === 'true';
    const format = (l: LogLine) =>
      `${timestamps ? `${new Date(l.timestamp).toISOString().replace('Z', '000000Z')} ` : ''}${l.line}\n`;
    const tail = query.get('tailLines');
    const shown =
      tail !== null && tail !== '' ? lines.slice(Math.max(0, lines.length - Number(tail))) : lines;
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    for (const l of shown) res.write(format(l));
    if (query.get('follow') !== 'true') {
      res.end();
      return;
    }
    let stop = () => {};
    const end = () => {
      stop();
      this.watches.delete(end);
      if (!res.writableEnded) res.end();
    };
    stop = source.follow(namespace, name, container, (l) => res.write(format(l)), end);
    this.watches.add(end);
    res.on('close', end);
  }

  private async proxy(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    name: string,
    port: number | undefined,
    targetPath: string,
  ): Promise<void> {
    const pod = this.store.mustGet('pods', namespace, name);
    const target = this.options.proxy?.(pod, port);
    if (!target) {
      throw new ApiError(
        503,
        'ServiceUnavailable',
        `pod "${name}" has no reachable address for port ${port ?? 'default'}`,
      );
    }
    const headers = { ...req.headers };
    for (const h of ['authorization', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']) {
      delete headers[h];
    }
    await new Promise<void>((resolve) => {
      const upstream = http.request(
        { host: target.host, port: target.port, method: req.method, path: targetPath, headers },
        (up) => {
          const out = { ...up.headers };
          delete out.connection;
          delete out['keep-alive'];
          res.writeHead(up.statusCode ?? 502, out);
          up.pipe(res);
          up.on('end', resolve);
          up.on('error', () => resolve());
        },
      );
      upstream.on('error', (err) => {
        if (!res.headersSent) {
          this.fail(
            res,
            new ApiError(
              503,
              'ServiceUnavailable',
              `error trying to reach service: dial tcp ${target.host}:${target.port}: ${err.message}`,
            ),
          );
        } else res.destroy();
        resolve();
      });
      req.pipe(upstream);
    });
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** A JSON document that is already serialized (the OpenAPI documents). */
  private rawJson(res: ServerResponse, text: string): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    const api =
      err instanceof ApiError
        ? err
        : new ApiError(500, 'InternalError', `internal error: ${(err as Error)?.message}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.json(res, api.code, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: api.message,
      reason: api.reason,
      ...(api.details ? { details: api.details } : {}),
      code: api.code,
    });
  }
}

function methodNotAllowed(method: string, path: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `the server does not allow this method (${method}) on ${path}`,
  );
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 'RequestEntityTooLarge', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') {
    if (optional) return null;
    throw new ApiError(400, 'BadRequest', 'the request body is empty');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readObject(req: IncomingMessage): Promise<KubeObject> {
  const body = await readJson(req);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'BadRequest', 'the request body must be a JSON object');
  }
  return body as KubeObject;
}

/**
 * The main resource never changes `status` and the status subresource changes only `status` (and
 * nothing else), as in Kubernetes; the result carries the caller's resourceVersion for the conflict check.
 */
function restrictTo(part: 'main' | 'status', current: KubeObject, incoming: KubeObject): KubeObject {
  if (part === 'main') {
    const out = { ...incoming };
    if (current.status === undefined) delete out.status;
    else out.status = current.status;
    return out;
  }
  return {
    ...current,
    metadata: { ...current.metadata, resourceVersion: incoming.metadata?.resourceVersion ?? '' },
    status: incoming.status ?? {},
  };
}

/**
 * Fills the defaults the real API server would, so clients read the same shapes: pods get restartPolicy
 * Always, terminationGracePeriodSeconds 30, schedulerName, phase Pending; services a clusterIP. A Service
 * whose name is not a DNS-1035 label (e.g. starts with a digit) is 422 Invalid, as on a real cluster.
 * A pod without containers is 422 Invalid with the field path.
 */
function applyDefaults(resource: Resource, obj: KubeObject, now: number): void {
  if (resource === 'pods') {
    obj.spec ??= {};
    const spec = obj.spec;
    const containers = spec.containers;
    if (!Array.isArray(containers) || containers.length === 0) {
      throw new ApiError(
        422,
        'Invalid',
        `Pod "${obj.metadata.name ?? ''}" is invalid: spec.containers: Required value`,
        {
          name: obj.metadata.name,
          kind: 'Pod',
          causes: [{ field: 'spec.containers', message: 'Required value' }],
        },
      );
    }
    containers.forEach((c: { name?: unknown }, i: number) => {
      if (typeof c?.name !== 'string' || c.name === '') {
        throw new ApiError(422, 'Invalid', `Pod is invalid: spec.containers[${i}].name: Required value`, {
          kind: 'Pod',
          causes: [{ field: `spec.containers[${i}].name`, message: 'Required value' }],
        });
      }
    });
    spec.restartPolicy ??= 'Always';
    spec.terminationGracePeriodSeconds ??= 30;
    spec.schedulerName ??= 'default-scheduler';
    spec.dnsPolicy ??= 'ClusterFirst';
    spec.serviceAccountName ??= 'default';
    obj.status ??= {};
    const status = obj.status;
    status.phase = 'Pending';
    status.qosClass ??= 'BestEffort';
  } else if (resource === 'services') {
    // As the real API server: a Service name is a DNS-1035 label (a letter first), stricter than a pod's.
    const name = obj.metadata.name ?? '';
    if (!DNS_1035_LABEL.test(name)) {
      const message =
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an " +
        'alphabetic character, and end with an alphanumeric character';
      throw new ApiError(
        422,
        'Invalid',
        `Service "${name}" is invalid: metadata.name: Invalid value: "${name}": ${message}`,
        { name, kind: 'Service', causes: [{ field: 'metadata.name', message }] },
      );
    }
    obj.spec ??= {};
    const spec = obj.spec;
    spec.type ??= 'ClusterIP';
    if (spec.clusterIP === undefined) {
      spec.clusterIP = `10.96.${Math.floor(Math.random() * 255)}.${1 + Math.floor(Math.random() * 253)}`;
    }
    obj.status ??= { loadBalancer: {} };
  } else if (resource === 'namespaces') {
    obj.spec ??= { finalizers: ['kubernetes'] };
    obj.status = { phase: 'Active' };
  } else if (resource === 'events') {
    (obj as Record<string, unknown>).firstTimestamp ??= kubeTime(now);
    (obj as Record<string, unknown>).lastTimestamp ??= kubeTime(now);
  }
}

/** The `/api/v1` APIResourceList kubectl uses to map kinds to resources. */
function discovery(): unknown {
  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  const resources: unknown[] = [];
  for (const [name, info] of Object.entries(RESOURCES)) {
    resources.push({
      name,
      singularName: info.kind.toLowerCase(),
      namespaced: info.namespaced,
      kind: info.kind,
      verbs,
      shortNames: info.shortNames,
    });
    for (const sub of info.verbsSub) {
      resources.push({
        name: `${name}/${sub}`,
        singularName: '',
        namespaced: info.namespaced,
        kind: sub === 'status' ? info.kind : sub === 'log' ? 'Pod' : 'PodProxyOptions',
        verbs:
          sub === 'status'
            ? ['get', 'patch', 'update']
            : sub === 'log'
              ? ['get']
              : ['create', 'delete', 'get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'v1', resources };
}
