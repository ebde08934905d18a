/**
 * The local API server driven by the real @kubernetes/client-node 1.4.0: CRUD, selectors, the three patch
 * dialects, graceful deletion, watches from a resourceVersion, informers, errors as Status objects, auth,
 * discovery and fault injection. Pods here carry a node selector nothing matches, so they stay Pending and
 * no process runs (the kubelet tests cover running pods).
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { eventually, kubeRequest, useLocalKube } from '../../support/kube.ts';
import { acceptedFromOutside } from './loopback.ts';

const env = useLocalKube({ nodes: 1, bookmarkIntervalMs: 100 });

const pendingPod = (name: string, labels: Record<string, string> = {}): V1Pod => ({
  metadata: { name, labels },
  spec: {
    nodeSelector: { 'example.com/nowhere': 'true' },
    containers: [{ name: 'main', image: 'busybox', command: ['sleep', '60'] }],
  },
});

async function apiError(
  promise: Promise<unknown>,
): Promise<{ code: number; status: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      return { code: err.code, status: body as Record<string, unknown> };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('pods through the real client', () => {
  it('creates a pod with defaults, then gets it back with uid, creationTimestamp and resourceVersion', async () => {
    const created = await env.core.createNamespacedPod({
      namespace: 'crud',
      body: pendingPod('p1', { app: 'a' }),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.spec?.restartPolicy).toBe('Always');
    expect(created.status?.phase).toBe('Pending');
    const got = await env.core.readNamespacedPod({ namespace: 'crud', name: 'p1' });
    expect(got.metadata?.uid).toBe(created.metadata?.uid);
    // The scheduler may have written PodScheduled since: the resourceVersion only grows.
    expect(Number(got.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(created.metadata?.resourceVersion),
    );
    // The namespace was created on first use.
    const ns = await env.core.readNamespace({ name: 'crud' });
    expect(ns.status?.phase).toBe('Active');
  });

  it('fills the name from generateName and answers 409 AlreadyExists for a taken name', async () => {
    const generated = await env.core.createNamespacedPod({
      namespace: 'crud',
      body: { ...pendingPod(''), metadata: { generateName: 'gen-' } },
    });
    expect(generated.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
    const { code, status } = await apiError(
      env.core.createNamespacedPod({ namespace: 'crud', body: pendingPod(generated.metadata!.name!) }),
    );
    expect(code).toBe(409);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409 });
  });

  it('answers 422 Invalid for a name that is not a DNS subdomain and for a pod without containers', async () => {
    const bad = await apiError(
      env.core.createNamespacedPod({ namespace: 'crud', body: pendingPod('Bad_Name') }),
    );
    expect(bad.code).toBe(422);
    expect(bad.status.reason).toBe('Invalid');
    const empty = await apiError(
      env.core.createNamespacedPod({
        namespace: 'crud',
        body: { metadata: { name: 'empty' }, spec: { containers: [] } },
      }),
    );
    expect(empty.code).toBe(422);
    expect(JSON.stringify(empty.status)).toContain('spec.containers');
  });

  it('answers 404 NotFound as a Status for a missing pod', async () => {
    const { code, status } = await apiError(env.core.readNamespacedPod({ namespace: 'crud', name: 'nope' }));
    expect(code).toBe(404);
    expect(status).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
  });

  it('lists with label selectors of every operator and with field selectors', async () => {
    const ns = 'select';
    await env.core.createNamespacedPod({
      namespace: ns,
      body: pendingPod('a', { job: 'j1', role: 'worker' }),
    });
    await env.core.createNamespacedPod({
      namespace: ns,
      body: pendingPod('b', { job: 'j1', role: 'spare' }),
    });
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('c', { job: 'j2' }) });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await env.core.listNamespacedPod({ namespace: ns, labelSelector, fieldSelector })).items
        .map((p) => p.metadata?.name)
        .sort();
    expect(await names('job=j1')).toEqual(['a', 'b']);
    expect(await names('job==j1,role!=spare')).toEqual(['a']);
    expect(await names('role in (spare,worker)')).toEqual(['a', 'b']);
    expect(await names('job notin (j1)')).toEqual(['c']);
    expect(await names('role')).toEqual(['a', 'b']);
    expect(await names('!role')).toEqual(['c']);
    expect(await names(undefined, 'metadata.name=b')).toEqual(['b']);
    expect(await names(undefined, 'status.phase=Pending,spec.nodeName=')).toEqual(['a', 'b', 'c']);
    const all = await env.core.listPodForAllNamespaces({ fieldSelector: `metadata.namespace=${ns}` });
    expect(all.items).toHaveLength(3);
    const bad = await apiError(env.core.listNamespacedPod({ namespace: ns, labelSelector: 'job in (j1' }));
    expect(bad.code).toBe(400);
  });

  it('patches with merge, strategic merge and JSON patch, and answers 415 for another content type', async () => {
    const ns = 'patch';
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('p', { a: '1' }) });
    const merged = await env.core.patchNamespacedPod(
      { namespace: ns, name: 'p', body: { metadata: { labels: { b: '2', a: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(merged.metadata?.labels).toEqual({ b: '2' });
    const strategic = await env.core.patchNamespacedPod(
      {
        namespace: ns,
        name: 'p',
        body: { spec: { containers: [{ name: 'main', env: [{ name: 'X', value: 'y' }] }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(strategic.spec?.containers[0]).toMatchObject({
      name: 'main',
      image: 'busybox',
      env: [{ name: 'X', value: 'y' }],
    });
    // No content type set: client-node sends JSON Patch.
    const patched = await env.core.patchNamespacedPod({
      namespace: ns,
      name: 'p',
      body: [{ op: 'add', path: '/metadata/annotations', value: { note: 'hi' } }],
    });
    expect(patched.metadata?.annotations).toEqual({ note: 'hi' });
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(
      Number(merged.metadata?.resourceVersion),
    );
    const failed = await apiError(
      env.core.patchNamespacedPod({
        namespace: ns,
        name: 'p',
        body: [{ op: 'test', path: '/metadata/name', value: 'x' }],
      }),
    );
    expect(failed.code).toBe(422);
    const unsupported = await apiError(
      env.core.patchNamespacedPod(
        { namespace: ns, name: 'p', body: { metadata: {} } },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      ),
    );
    expect(unsupported.code).toBe(415);
    expect(unsupported.status.reason).toBe('UnsupportedMediaType');
  });

  it('writes status only through the status subresource and checks resourceVersion on update', async () => {
    const ns = 'status';
    const pod = await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('s') });
    const viaMain = await env.core.patchNamespacedPod(
      { namespace: ns, name: 's', body: { status: { phase: 'Running' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(viaMain.status?.phase).toBe('Pending');
    const viaStatus = await env.core.patchNamespacedPodStatus(
      { namespace: ns, name: 's', body: { status: { phase: 'Running', podIP: '10.1.2.3' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(viaStatus.status).toMatchObject({ phase: 'Running', podIP: '10.1.2.3' });
    const stale = await apiError(env.core.replaceNamespacedPod({ namespace: ns, name: 's', body: pod }));
    expect(stale.code).toBe(409);
    expect(stale.status.reason).toBe('Conflict');
    const fresh = await env.core.readNamespacedPod({ namespace: ns, name: 's' });
    fresh.metadata!.labels = { updated: 'yes' };
    const replaced = await env.core.replaceNamespacedPod({ namespace: ns, name: 's', body: fresh });
    expect(replaced.metadata?.labels).toEqual({ updated: 'yes' });
  });

  it('removes an unscheduled pod at once on delete and answers 404 for a second delete', async () => {
    const ns = 'delete';
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('d') });
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'd', gracePeriodSeconds: 30 });
    const again = await apiError(env.core.deleteNamespacedPod({ namespace: ns, name: 'd' }));
    expect(again.code).toBe(404);
  });
});

describe('watches and informers', () => {
  it('replays the changes after a resourceVersion and then streams new ones', async () => {
    const ns = 'watch';
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('w1', { w: 'yes' }) });
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('w2', { w: 'yes' }) });
    // Let the scheduler mark both Unschedulable first, so the only changes below are the test's own.
    const settled = await eventually(async () => {
      const list = await env.core.listNamespacedPod({ namespace: ns });
      const done = list.items.every((p) => p.status?.conditions?.some((c) => c.type === 'PodScheduled'));
      return done ? list.metadata?.resourceVersion : undefined;
    });
    await env.core.patchNamespacedPod(
      { namespace: ns, name: 'w1', body: { metadata: { labels: { extra: '1' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const seen: string[] = [];
    const req = await new Watch(env.kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { resourceVersion: settled, labelSelector: 'w=yes' },
      (type, obj: V1Pod) => seen.push(`${type}:${obj.metadata?.name}`),
      () => {},
    );
    await eventually(() => seen.includes('MODIFIED:w1'), 5000, 'the replayed MODIFIED');
    // Leaving the selector arrives as DELETED, as from the real server.
    await env.core.patchNamespacedPod(
      { namespace: ns, name: 'w2', body: { metadata: { labels: { w: 'no' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'w1' });
    await eventually(() => seen.includes('DELETED:w1'), 5000, 'the DELETED event');
    expect(seen).toEqual(['MODIFIED:w1', 'DELETED:w2', 'DELETED:w1']);
    req.abort();
    await eventually(() => env.kube.server.openWatches === 0, 5000, 'the watch to be released');
  });

  it('watches one object through the legacy /watch/ path', async () => {
    const ns = 'legacy';
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('one') });
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('two') });
    const seen: string[] = [];
    const req = await new Watch(env.kc).watch(
      `/api/v1/watch/namespaces/${ns}/pods/two`,
      {},
      (type, obj: V1Pod) => seen.push(`${type}:${obj.metadata?.name}`),
      () => {},
    );
    await eventually(() => seen.includes('ADDED:two'));
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'one' });
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'two' });
    await eventually(() => seen.includes('DELETED:two'));
    expect(seen.filter((s) => s.endsWith(':one'))).toEqual([]);
    req.abort();
  });

  it('answers a compacted resourceVersion with an ERROR event carrying 410 Expired', async () => {
    const { ObjectStore } = await import('../../../local/kube/store.ts');
    const { LocalApiServer } = await import('../../../local/kube/api-server.ts');
    const store = new ObjectStore({ historyLimit: 3 });
    const server = new LocalApiServer({ store, token: 't' });
    const url = await server.listen();
    try {
      for (let i = 0; i < 6; i++) {
        store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `n${i}` } });
      }
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const events: { type: string; code?: number; reason?: string }[] = [];
      let done = false;
      await new Watch(kc).watch(
        '/api/v1/namespaces',
        { resourceVersion: '1' },
        (type, obj: { code?: number; reason?: string }) =>
          events.push({ type, code: obj.code, reason: obj.reason }),
        () => {
          done = true;
        },
      );
      await eventually(() => done, 5000, 'the watch to end');
      expect(events).toEqual([{ type: 'ERROR', code: 410, reason: 'Expired' }]);
    } finally {
      await server.close();
    }
  });

  it('sends BOOKMARK events when allowed and ends the stream after timeoutSeconds', async () => {
    const types: string[] = [];
    let ended = false;
    await new Watch(env.kc).watch(
      '/api/v1/nodes',
      { allowWatchBookmarks: true, timeoutSeconds: 1 },
      (type) => types.push(type),
      () => {
        ended = true;
      },
    );
    await eventually(() => ended, 5000, 'the watch timeout');
    expect(types[0]).toBe('ADDED');
    expect(types).toContain('BOOKMARK');
  });

  it('keeps an informer cache in step with creates, updates and deletes', async () => {
    const ns = 'informer';
    const informer = makeInformer(
      env.kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => env.core.listNamespacedPod({ namespace: ns }),
      'app=inf',
    );
    const added: string[] = [];
    const deleted: string[] = [];
    informer.on('add', (p: V1Pod) => added.push(p.metadata!.name!));
    informer.on('delete', (p: V1Pod) => deleted.push(p.metadata!.name!));
    await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('before', { app: 'inf' }) });
    await informer.start();
    try {
      await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('after', { app: 'inf' }) });
      await env.core.createNamespacedPod({ namespace: ns, body: pendingPod('other', { app: 'x' }) });
      await eventually(() => informer.list(ns).length === 2, 5000, 'two cached pods');
      await env.core.deleteNamespacedPod({ namespace: ns, name: 'before' });
      await eventually(() => deleted.includes('before'), 5000, 'the delete');
      expect(added.sort()).toEqual(['after', 'before']);
      expect(informer.list(ns).map((p) => p.metadata?.name)).toEqual(['after']);
    } finally {
      await informer.stop();
    }
  });
});

describe('server behaviour', () => {
  it('answers 401 without the bearer token', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: env.kube.url, caData: env.kube.caData }],
      users: [{ name: 'u', token: 'wrong' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const { code } = await apiError(kc.makeApiClient(CoreV1Api).listNamespace());
    expect(code).toBe(401);
    const raw = await kubeRequest(env.kube, '/api/v1/namespaces', { token: null });
    expect(raw.status).toBe(401);
    expect(JSON.parse(raw.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  it("listens on loopback only: the host's other addresses are refused", async () => {
    const url = new URL(env.kube.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(await acceptedFromOutside(Number(url.port))).toEqual([]);
  });

  it('serves the discovery documents kubectl reads', async () => {
    const get = async (path: string) => JSON.parse((await kubeRequest(env.kube, path)).body);
    expect(await get('/version')).toMatchObject({ major: '1' });
    expect(await get('/api')).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    expect(await get('/apis')).toMatchObject({ kind: 'APIGroupList', groups: [] });
    const resources = (await get('/api/v1')) as { resources: { name: string; namespaced: boolean }[] };
    expect(resources.resources.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'pods',
        'pods/status',
        'pods/log',
        'pods/proxy',
        'services',
        'nodes',
        'events',
        'namespaces',
      ]),
    );
  });

  it('serves the OpenAPI v3 documents kubectl validates with, announcing fieldValidation on every kind', async () => {
    const root = JSON.parse((await kubeRequest(env.kube, '/openapi/v3')).body);
    const url = root.paths['api/v1'].serverRelativeURL as string;
    expect(url).toMatch(/^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);
    const doc = JSON.parse((await kubeRequest(env.kube, url)).body);
    expect(doc.openapi).toBe('3.0.0');
    for (const [path, kind] of [
      ['/api/v1/namespaces/{namespace}/pods/{name}', 'Pod'],
      ['/api/v1/namespaces/{namespace}/services/{name}', 'Service'],
      ['/api/v1/namespaces/{namespace}/events/{name}', 'Event'],
      ['/api/v1/nodes/{name}', 'Node'],
      ['/api/v1/namespaces/{name}', 'Namespace'],
    ] as const) {
      const patch = doc.paths[path].patch;
      expect(patch['x-kubernetes-group-version-kind']).toEqual({ group: '', version: 'v1', kind });
      expect(patch.parameters.map((p: { name: string }) => p.name)).toContain('fieldValidation');
      expect(doc.components.schemas[`io.k8s.api.core.v1.${kind}`].properties).toHaveProperty('metadata');
    }
  });

  it('validates fields as asked: Strict refuses unknown ones, Warn (the default) names them, Ignore passes', async () => {
    const body = (name: string) =>
      JSON.stringify({ ...pendingPod(name), sepc: {}, metadata: { name, lables: { a: 'b' } } });
    const post = (query: string, name: string) =>
      kubeRequest(env.kube, `/api/v1/namespaces/default/pods${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(name),
      });
    const strict = await post('?fieldValidation=Strict', 'fv-strict');
    expect(strict.status).toBe(400);
    expect(JSON.parse(strict.body).message).toBe(
      'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "sepc", unknown field "metadata.lables"',
    );
    const warned = await post('', 'fv-warn');
    expect(warned.status).toBe(201);
    expect(warned.headers.warning).toBe(
      '299 - "unknown field \\"sepc\\"", 299 - "unknown field \\"metadata.lables\\""',
    );
    const ignored = await post('?fieldValidation=Ignore', 'fv-ignore');
    expect(ignored.status).toBe(201);
    expect(ignored.headers.warning).toBeUndefined();
    expect((await post('?fieldValidation=Loose', 'fv-bad')).status).toBe(400);
    const patched = await kubeRequest(
      env.kube,
      '/api/v1/namespaces/default/pods/fv-warn?fieldValidation=Strict',
      {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ metadata: { labels: { ok: '1' } } }),
      },
    );
    expect(patched.status).toBe(200);
  });

  it('fails the next matching requests with injected 429 and 500 faults, Retry-After included', async () => {
    env.kube.server.injectFaults({
      status: 429,
      count: 2,
      retryAfterSeconds: 1,
      match: (method, path) => method === 'GET' && path.startsWith('/api/v1/nodes'),
    });
    const first = await apiError(env.core.listNode());
    expect(first.code).toBe(429);
    expect(first.status.reason).toBe('TooManyRequests');
    // Other requests are not affected.
    await env.core.listNamespace();
    const res = await kubeRequest(env.kube, '/api/v1/nodes');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect((await env.core.listNode()).items).toHaveLength(1);
    env.kube.server.injectFaults({ status: 500, count: 1 });
    expect((await apiError(env.core.listNamespace())).code).toBe(500);
    expect((await env.core.listNamespace()).items.length).toBeGreaterThan(0);
  });

  it('creates services with a cluster IP and records events', async () => {
    const svc = await env.core.createNamespacedService({
      namespace: 'svc',
      body: { metadata: { name: 'job-0' }, spec: { clusterIP: 'None', selector: { job: 'j' } } },
    });
    expect(svc.spec?.clusterIP).toBe('None');
    const ev = await env.core.createNamespacedEvent({
      namespace: 'svc',
      body: {
        metadata: { generateName: 'job.' },
        involvedObject: { kind: 'Pod', name: 'p', namespace: 'svc' },
        reason: 'FaultDetected',
        message: 'x',
        type: 'Warning',
      },
    });
    const listed = await env.core.listNamespacedEvent({
      namespace: 'svc',
      fieldSelector: 'involvedObject.name=p',
    });
    expect(listed.items.map((e) => e.metadata?.name)).toEqual([ev.metadata?.name]);
  });
});
