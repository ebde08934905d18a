import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KubeCluster, kubeClusterFromConfig } from '../../../adapters/kube/cluster.ts';
import { TransientError } from '../../../core/errors.ts';
import { NODE_HEALTH_LABEL, POD_LABELS } from '../../../core/observations.ts';
import { freePort } from '../../../local/net.ts';
import { kubeConfigFor, startTestKube, type TestKube } from '../../support/local-api.ts';
import { jobSpec, plan } from './fixtures.ts';

const NS = 'team-a';
const fast = { retries: 3, minDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1_500 };
const agentBin = fileURLToPath(new URL('../../../bin/trainkeeper-agent.js', import.meta.url));

let kube: TestKube;
let cluster: KubeCluster;
let core: CoreV1Api;

beforeAll(async () => {
  kube = await startTestKube({ namespaces: [NS, 'other'] });
  core = kube.kc.makeApiClient(CoreV1Api);
});
afterAll(async () => {
  await kube.stop();
});
afterEach(async () => {
  cluster?.close();
  kube.server.clearFaults();
  kube.targets.clear();
  for (const p of kube.store.list('pods')) kube.store.remove('pods', p.metadata.namespace, p.metadata.name);
  for (const n of kube.store.list('nodes')) kube.store.remove('nodes', undefined, n.metadata.name);
  for (const e of kube.store.list('events'))
    kube.store.remove('events', e.metadata.namespace, e.metadata.name);
});
const fresh = (options = {}) => {
  cluster = kubeClusterFromConfig(kube.kc, { retryPolicy: fast, ...options });
  return cluster;
};

describe('pods', () => {
  it('creates the planned pods, tolerates creating them again, and lists only the job pods', async () => {
    const c = fresh();
    const spec = jobSpec();
    await c.createPods(spec, [plan(0), plan(1)]);
    await c.createPods(spec, [plan(0), plan(1), plan(2, 0, { spare: true })]);
    await c.createPods(jobSpec({ name: 'other-job' }), [{ ...plan(0), name: 'other-job-pods-0-g0' }]);
    const pods = await c.listJobPods({ namespace: NS, name: 'llama' });
    expect(pods.map((p) => p.name).sort()).toEqual(['llama-pods-0-g0', 'llama-pods-1-g0', 'llama-pods-2-g0']);
    const spare = pods.find((p) => p.name === 'llama-pods-2-g0');
    expect(spare?.labels[POD_LABELS.spare]).toBe('true');
    expect(spare?.phase).toBe('Pending');
    expect(spare?.containers).toEqual([{ name: 'trainer', state: 'waiting', restartCount: 0 }]);
    expect(c.stats.errors()).toEqual([{ operation: 'createPod', code: '409', count: 2 }]);
  });

  it('observes a running pod with its node, IP and container state', async () => {
    const c = fresh();
    await c.createPods(jobSpec(), [plan(0)]);
    kube.runPod(NS, 'llama-pods-0-g0', 'node-a', '10.1.2.3');
    const [pod] = await c.listJobPods({ namespace: NS, name: 'llama' });
    expect(pod).toMatchObject({
      name: 'llama-pods-0-g0',
      namespace: NS,
      phase: 'Running',
      nodeName: 'node-a',
      podIP: '10.1.2.3',
      containers: [{ name: 'trainer', state: 'running', restartCount: 0 }],
    });
    expect(pod?.createdAt).toBeGreaterThan(0);
    expect(pod?.deletionTimestamp).toBeUndefined();
  });

  it('deletes gracefully, tolerates missing pods, and force-deletes a pod stuck on a lost node', async () => {
    const c = fresh();
    await c.createPods(jobSpec(), [plan(0), plan(1)]);
    kube.runPod(NS, 'llama-pods-0-g0', 'lost-node');
    await c.deletePods(NS, ['llama-pods-0-g0', 'llama-pods-1-g0', 'never-existed'], {
      gracePeriodSeconds: 30,
    });
    let pods = await c.listJobPods({ namespace: NS, name: 'llama' });
    // The unbound pod goes at once; the running one waits for a kubelet that will never answer.
    expect(pods.map((p) => p.name)).toEqual(['llama-pods-0-g0']);
    expect(pods[0]?.deletionTimestamp).toBeGreaterThan(0);
    await c.deletePods(NS, ['llama-pods-0-g0'], { force: true });
    pods = await c.listJobPods({ namespace: NS, name: 'llama' });
    expect(pods).toEqual([]);
    expect(c.stats.calls().forceDeletePod).toBe(1);
  });
});

describe('service', () => {
  it('creates the headless service once and converges a drifted selector back', async () => {
    const c = fresh();
    await c.ensureService(jobSpec());
    await c.ensureService(jobSpec());
    let svc = await core.readNamespacedService({ name: 'llama', namespace: NS });
    expect(svc.spec?.clusterIP).toBe('None');
    expect(svc.spec?.selector).toEqual({ [POD_LABELS.job]: 'llama' });
    expect(c.stats.calls().patchService).toBeUndefined();
    const stored = kube.store.mustGet('services', NS, 'llama');
    kube.store.update('services', { ...stored, spec: { ...stored.spec, selector: { app: 'x' } } });
    await c.ensureService(jobSpec());
    svc = await core.readNamespacedService({ name: 'llama', namespace: NS });
    expect(svc.spec?.selector).toEqual({ [POD_LABELS.job]: 'llama' });
    expect(c.stats.calls().patchService).toBe(1);
  });

  it('names the service of a job whose name starts with a digit j-<job> (a Service name must start with a letter), and its pods’ subdomain after it', async () => {
    // The API server refuses a Service named after such a job, as a real one does.
    await expect(
      core.createNamespacedService({ namespace: NS, body: { metadata: { name: '7b-run' }, spec: {} } }),
    ).rejects.toMatchObject({ code: 422 });
    const c = fresh();
    const spec = jobSpec({ name: '7b-run' });
    await c.ensureService(spec);
    await c.ensureService(spec);
    const svc = await core.readNamespacedService({ name: 'j-7b-run', namespace: NS });
    expect(svc.spec?.selector).toEqual({ [POD_LABELS.job]: '7b-run' });
    const stored = kube.store.mustGet('services', NS, 'j-7b-run');
    kube.store.update('services', { ...stored, spec: { ...stored.spec, selector: { app: 'x' } } });
    await c.ensureService(spec);
    expect((await core.readNamespacedService({ name: 'j-7b-run', namespace: NS })).spec?.selector).toEqual({
      [POD_LABELS.job]: '7b-run',
    });
    await c.createPods(spec, [{ ...plan(0), name: '7b-run-pods-0-g0' }]);
    const pod = await core.readNamespacedPod({ name: '7b-run-pods-0-g0', namespace: NS });
    expect(pod.spec?.subdomain).toBe('j-7b-run');
    // A job without pods has its Events attached to its service, by the service's name.
    await c.recordKubeEvent(
      { namespace: NS, name: '9x' },
      { at: 1, type: 'Normal', reason: 'Created', message: 'submitted', generation: 0 },
    );
    const events = await core.listNamespacedEvent({ namespace: NS });
    expect(events.items.find((e) => e.involvedObject.name?.endsWith('9x'))?.involvedObject).toMatchObject({
      kind: 'Service',
      name: 'j-9x',
    });
  });
});

describe('nodes', () => {
  it('observes health label, readiness and instance id, and skips unknown nodes', async () => {
    const c = fresh();
    kube.addNode('hyperpod-i-0123456789abcdef0', { [NODE_HEALTH_LABEL]: 'Schedulable' });
    kube.addNode(
      'node-b',
      { [NODE_HEALTH_LABEL]: 'UnschedulablePendingReboot' },
      false,
      'aws:///us-west-2a/i-0fedcba987654321',
    );
    kube.addNode('plain', {}, true);
    const nodes = await c.getNodes(['node-b', 'hyperpod-i-0123456789abcdef0', 'gone']);
    expect(nodes.map(({ labels: _, ...n }) => n)).toEqual([
      {
        name: 'node-b',
        ready: false,
        health: 'UnschedulablePendingReboot',
        instanceId: 'i-0fedcba987654321',
      },
      {
        name: 'hyperpod-i-0123456789abcdef0',
        ready: true,
        health: 'Schedulable',
        instanceId: 'i-0123456789abcdef0',
      },
    ]);
    const listed = await c.listNodes();
    expect(listed.map((n) => n.name).sort()).toEqual(['hyperpod-i-0123456789abcdef0', 'node-b']);
  });

  it('observes a cordoned node as unschedulable (it adds no elastic capacity)', async () => {
    const c = fresh();
    kube.addNode('cordoned', { [NODE_HEALTH_LABEL]: 'Schedulable' });
    kube.store.mutate('nodes', undefined, 'cordoned', (n) => {
      n.spec = { ...(n.spec ?? {}), unschedulable: true };
    });
    const [node] = await c.getNodes(['cordoned']);
    expect(node).toMatchObject({ name: 'cordoned', health: 'Schedulable', unschedulable: true });
  });

  it('reads many nodes with one list call instead of one read each, same answer', async () => {
    for (let i = 0; i < 20; i++) kube.addNode(`n${i}`, { [NODE_HEALTH_LABEL]: 'Schedulable' }, i !== 3);
    const names = ['n3', 'gone', ...Array.from({ length: 18 }, (_, i) => `n${i + 2}`)];
    const few = fresh({ nodeListThreshold: 100 });
    const byReads = await few.getNodes(names);
    const many = fresh({ nodeListThreshold: 4 });
    const byList = await many.getNodes(names);
    expect(byList).toEqual(byReads);
    expect(byList.map((n) => n.name).slice(0, 2)).toEqual(['n3', 'n2']);
    expect(byList[0]?.ready).toBe(false);
    expect(many.stats.calls()).toEqual({ listNodes: 1 });
    expect(few.stats.calls().getNode).toBe(19); // n3 named twice, read once
  });
});

describe('events', () => {
  it('records an Event on the rank-0 pod of the newest generation, once per event', async () => {
    const c = fresh();
    await c.createPods(jobSpec(), [plan(1, 2), plan(0, 1), plan(0, 2)]);
    const event = {
      at: 1_790_000_000_000,
      type: 'Warning' as const,
      reason: 'WorkerCrash',
      message: 'rank 3 exited 1',
      generation: 2,
    };
    await c.recordKubeEvent({ namespace: NS, name: 'llama' }, event);
    await c.recordKubeEvent({ namespace: NS, name: 'llama' }, event);
    const events = await core.listNamespacedEvent({ namespace: NS });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({
      reason: 'WorkerCrash',
      message: 'rank 3 exited 1',
      type: 'Warning',
      involvedObject: { kind: 'Pod', name: 'llama-pods-0-g2', namespace: NS },
      source: { component: 'trainkeeper' },
    });
  });

  it('attaches the Event to the job service when the job has no pods', async () => {
    const c = fresh();
    await c.recordKubeEvent(
      { namespace: NS, name: 'llama' },
      { at: 1, type: 'Normal', reason: 'Created', message: 'submitted', generation: 0 },
    );
    const events = await core.listNamespacedEvent({ namespace: NS });
    expect(events.items[0]?.involvedObject).toMatchObject({ kind: 'Service', name: 'llama' });
  });
});

describe('retries', () => {
  it('waits out a 429 with Retry-After and then succeeds', async () => {
    const c = fresh();
    kube.server.injectFaults({ status: 429, count: 1, retryAfterSeconds: 1, match: (m) => m === 'GET' });
    const pods = await c.listJobPods({ namespace: NS, name: 'llama' });
    expect(pods).toEqual([]);
    expect(c.stats.errors()).toEqual([{ operation: 'listPods', code: '429', count: 1 }]);
    expect(c.stats.calls().listPods).toBe(2);
  });

  it('retries 500s and succeeds within the bound', async () => {
    const c = fresh();
    kube.server.injectFaults({ status: 500, count: 3, match: (m) => m === 'POST' });
    await c.createPods(jobSpec(), [plan(0)]);
    expect((await c.listJobPods({ namespace: NS, name: 'llama' })).map((p) => p.name)).toEqual([
      'llama-pods-0-g0',
    ]);
    expect(c.stats.calls().createPod).toBe(4);
  });

  it('gives up with a TransientError when the server keeps failing', async () => {
    const c = fresh();
    kube.server.injectFaults({ status: 503, count: 10 });
    await expect(c.listNodes()).rejects.toBeInstanceOf(TransientError);
    expect(c.stats.calls().listNodes).toBe(4);
  });
});

describe('connection resets', () => {
  it('retries a request whose connection the network resets', async () => {
    // A TCP relay in front of the API server that resets the first connection and relays the rest.
    const target = new URL(kube.server.url);
    let resets = 1;
    const relay = net.createServer((socket) => {
      if (resets-- > 0) {
        socket.resetAndDestroy();
        return;
      }
      const upstream = net.connect(Number(target.port), target.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    try {
      const token = kube.kc.getCurrentUser()?.token as string;
      const c = kubeClusterFromConfig(
        kubeConfigFor(`http://127.0.0.1:${(relay.address() as AddressInfo).port}`, token),
        {
          retryPolicy: fast,
        },
      );
      cluster = c;
      kube.addNode('n1', { [NODE_HEALTH_LABEL]: 'Schedulable' });
      expect((await c.listNodes()).map((n) => n.name)).toEqual(['n1']);
      expect(c.stats.errors()).toEqual([{ operation: 'listNodes', code: 'ECONNRESET', count: 1 }]);
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });
});

async function waitForAgent(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/status' }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`agent on ${port} did not come up`);
}

describe('agents through pods/proxy', () => {
  const agents: ChildProcess[] = [];
  let dir: string;
  const ports: number[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tk-kube-agent-'));
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      ports.push(port);
      const child = spawn(
        process.execPath,
        [
          agentBin,
          '--server-host',
          '127.0.0.1',
          '--server-port',
          String(port),
          '--rank-ip-file',
          join(dir, `ips-${i}.json`),
          '--shutdown-timeout',
          '2',
          '--nproc-per-node',
          '1',
          'sleep',
          '300',
        ],
        { stdio: 'ignore', env: { ...process.env, TRAINKEEPER_JOB_NAME: 'llama', NNODES: '2' } },
      );
      agents.push(child);
    }
    await Promise.all(ports.map(waitForAgent));
  });

  afterAll(async () => {
    // SIGTERM lets each agent stop its workers; SIGKILL only if it does not exit.
    await Promise.all(
      agents.map(async (a) => {
        if (a.exitCode !== null || a.signalCode !== null || !a.pid) return;
        const exited = new Promise((r) => a.once('exit', r));
        process.kill(a.pid, 'SIGTERM');
        const timer = setTimeout(() => a.pid && a.exitCode === null && process.kill(a.pid, 'SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  const route = async (c: KubeCluster) => {
    await c.createPods(jobSpec(), [plan(0), plan(1)]);
    kube.runPod(NS, 'llama-pods-0-g0', 'n0', '127.0.0.1');
    kube.runPod(NS, 'llama-pods-1-g0', 'n1', '127.0.0.1');
    kube.targets.set(`${NS}/llama-pods-0-g0`, ports[0] as number);
    kube.targets.set(`${NS}/llama-pods-1-g0`, ports[1] as number);
  };

  it('reads status, starts and stops real agents, one result per pod in order', async () => {
    const c = fresh();
    await route(c);
    const pods = ['llama-pods-0-g0', 'llama-pods-1-g0'];
    const before = await c.agentStatus(NS, pods);
    expect(before.map((r) => r.ok && r.status.status)).toEqual(['ready', 'ready']);
    const started = await c.startAgents(
      NS,
      pods.map((pod, rank) => ({
        pod,
        body: { rank, nnodes: 2, faultCount: 1, master_addr: '127.0.0.1', master_port: 29500 },
      })),
    );
    expect(started.map((r) => [r.pod, r.ok && r.status.status, r.ok && r.status.faultCount])).toEqual([
      ['llama-pods-0-g0', 'running', 1],
      ['llama-pods-1-g0', 'running', 1],
    ]);
    const stopped = await c.stopAgents(NS, pods, { timeout: 2 });
    expect(stopped.map((r) => r.ok && r.status.status)).toEqual(['ready', 'ready']);
    expect(c.stats.calls()).toMatchObject({ 'agent:status': 2, 'agent:start': 2, 'agent:stop': 2 });
  });

  it('raises the elastic event on the agents through pods/proxy, one answer per pod', async () => {
    const c = fresh();
    await route(c);
    const pods = ['llama-pods-0-g0', 'llama-pods-1-g0'];
    await c.startAgents(
      NS,
      pods.map((pod, rank) => ({
        pod,
        body: { rank, nnodes: 2, faultCount: 4, master_addr: '127.0.0.1', master_port: 29500 },
      })),
    );
    const signalled = await c.signalElasticEvent(NS, pods, {
      nnodes: 3,
      faultCount: 4,
      reason: 'CapacityAvailable',
    });
    expect(signalled.map((r) => [r.pod, r.ok && r.status.status, r.ok && r.status.faultCount])).toEqual([
      ['llama-pods-0-g0', 'running', 4],
      ['llama-pods-1-g0', 'running', 4],
    ]);
    expect(c.stats.calls()).toMatchObject({ 'agent:elastic-event': 2 });
    await c.stopAgents(NS, pods, { timeout: 2 });
  });

  it('sends /inprocess-restart through pods/proxy, one answer per pod (agents without the flag restart at process level)', async () => {
    const c = fresh();
    await route(c);
    const pods = ['llama-pods-0-g0', 'llama-pods-1-g0'];
    // Generations past the other cases' (an agent refuses a generation older than the one it ran).
    const body = (rank: number) => ({
      rank,
      nnodes: 2,
      faultCount: 21,
      master_addr: '127.0.0.1',
      master_port: 29500,
    });
    await c.startAgents(
      NS,
      pods.map((pod, rank) => ({ pod, body: { ...body(rank), faultCount: 20 } })),
    );
    const restarted = await c.restartInProcess(
      NS,
      pods.map((pod, rank) => ({ pod, body: body(rank) })),
    );
    expect(restarted.map((r) => [r.pod, r.ok ? r.status.restartMode : r.error])).toEqual([
      ['llama-pods-0-g0', 'process_level_restart'],
      ['llama-pods-1-g0', 'process_level_restart'],
    ]);
    expect(c.stats.calls()).toMatchObject({ 'agent:inprocess-restart': 2 });
    // The agents restart their workers themselves and run generation 21.
    const deadline = Date.now() + 10_000;
    let statuses = await c.agentStatus(NS, pods);
    while (statuses.some((r) => !r.ok || r.status.faultCount !== 21 || r.status.status !== 'running')) {
      if (Date.now() > deadline)
        throw new Error(`agents not running generation 21: ${JSON.stringify(statuses)}`);
      await sleep(100);
      statuses = await c.agentStatus(NS, pods);
    }
    await c.stopAgents(NS, pods, { timeout: 2 });
  });

  it('reports a 4xx from the agent as a failed call, not as unreachable', async () => {
    const c = fresh();
    await route(c);
    const [r] = await c.startAgents(NS, [
      {
        pod: 'llama-pods-0-g0',
        body: { rank: 0, nnodes: 2, faultCount: 1, master_addr: '', master_port: 1 },
      },
    ]);
    expect(r).toMatchObject({ pod: 'llama-pods-0-g0', ok: false, unreachable: false });
  });

  it('marks pods unreachable when the proxy cannot reach them or the pod is gone', async () => {
    const c = fresh();
    await route(c);
    kube.targets.delete(`${NS}/llama-pods-1-g0`);
    const closed = await freePort();
    await c.createPods(jobSpec(), [plan(2)]);
    kube.targets.set(`${NS}/llama-pods-2-g0`, closed);
    const results = await c.agentStatus(NS, [
      'llama-pods-0-g0',
      'llama-pods-1-g0',
      'llama-pods-2-g0',
      'no-such-pod',
    ]);
    expect(results.map((r) => [r.pod, r.ok, r.ok ? r.status.status : r.unreachable])).toEqual([
      ['llama-pods-0-g0', true, expect.any(String)],
      ['llama-pods-1-g0', false, true],
      ['llama-pods-2-g0', false, true],
      ['no-such-pod', false, true],
    ]);
  });

  it('retries agent calls the API server throttles or fails with 500', async () => {
    const c = fresh();
    await route(c);
    kube.server.injectFaults({
      status: 429,
      count: 1,
      retryAfterSeconds: 1,
      match: (_, p) => p.includes('/proxy/'),
    });
    kube.server.injectFaults({ status: 500, count: 1, match: (_, p) => p.includes('/proxy/') });
    const [r] = await c.agentStatus(NS, ['llama-pods-0-g0']);
    expect(r?.ok).toBe(true);
    expect(c.stats.calls()['agent:status']).toBe(3);
  });

  it('does not call a throttled-out agent unreachable', async () => {
    const c = fresh();
    await route(c);
    kube.server.injectFaults({
      status: 429,
      count: 10,
      retryAfterSeconds: 0,
      match: (_, p) => p.includes('/proxy/'),
    });
    const [r] = await c.agentStatus(NS, ['llama-pods-0-g0']);
    expect(r).toMatchObject({ ok: false, unreachable: false });
  });

  it('gives up on an agent that does not answer within the timeout and calls it unreachable', async () => {
    const hung = http.createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    try {
      const c = fresh({ agentTimeoutMs: 300 });
      await route(c);
      kube.targets.set(`${NS}/llama-pods-0-g0`, (hung.address() as AddressInfo).port);
      const [r] = await c.agentStatus(NS, ['llama-pods-0-g0']);
      expect(r).toMatchObject({ ok: false, unreachable: true });
      expect(c.stats.calls()['agent:status']).toBe(1);
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });
});

describe('agent fan-out', () => {
  /** One HTTP server answering for every pod after `delayMs`, counting calls and the peak in flight. */
  const stubAgents = async (delayMs: number) => {
    const seen = { calls: 0, inFlight: 0, peak: 0 };
    const server = http.createServer((req, res) => {
      seen.calls++;
      seen.inFlight++;
      seen.peak = Math.max(seen.peak, seen.inFlight);
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          seen.inFlight--;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'ready', reason: 'Stopped' }));
        }, delayMs),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      seen,
      port: (server.address() as AddressInfo).port,
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    };
  };

  const podsRoutedTo = async (c: KubeCluster, count: number, port: number): Promise<string[]> => {
    const plans = Array.from({ length: count }, (_, i) => plan(i));
    await c.createPods(jobSpec(), plans);
    for (const p of plans) {
      kube.runPod(NS, p.name, 'n0', '127.0.0.1');
      kube.targets.set(`${NS}/${p.name}`, port);
    }
    return plans.map((p) => p.name);
  };

  it('keeps one limit across concurrent fan-outs, and starts a call’s timeout when it gets its slot', async () => {
    const agents = await stubAgents(40);
    try {
      // 20 fan-outs of 2 pods at once through 2 slots: the last call waits ~19 calls' time (≈ 760 ms) for
      // its slot, longer than its 500 ms timeout, which must not count the wait (a queued call reported
      // unreachable would get a healthy pod replaced).
      const c = fresh({ agentConcurrency: 2, agentTimeoutMs: 500 });
      const pods = await podsRoutedTo(c, 40, agents.port);
      const fanOuts = Array.from({ length: 20 }, (_, i) => c.agentStatus(NS, pods.slice(2 * i, 2 * i + 2)));
      const results = (await Promise.all(fanOuts)).flat();
      expect(agents.seen.peak).toBeLessThanOrEqual(2);
      expect(agents.seen.calls).toBe(40);
      expect(results.map((r) => r.pod)).toEqual(pods);
      expect(results.filter((r) => !r.ok)).toEqual([]);
    } finally {
      await agents.close();
    }
  });

  it('starts no further call once shouldStart answers false, lets the calls in flight finish, and returns only their results', async () => {
    const agents = await stubAgents(20);
    try {
      const c = fresh({ agentConcurrency: 2 });
      const pods = await podsRoutedTo(c, 10, agents.port);
      let asked = 0;
      const stopped = await c.stopAgents(
        NS,
        pods,
        { below_generation: 1 },
        { shouldStart: () => ++asked <= 4 },
      );
      expect(stopped.map((r) => [r.pod, r.ok])).toEqual(pods.slice(0, 4).map((p) => [p, true]));
      expect(agents.seen.calls).toBe(4);
      expect(c.stats.calls()['agent:stop']).toBe(4);
      // Asked once per started call and once more for the call it refused; never again after that.
      expect(asked).toBe(5);
    } finally {
      await agents.close();
    }
  });
});
