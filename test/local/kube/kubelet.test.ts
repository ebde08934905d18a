/**
 * The process kubelet with real processes, observed through the real @kubernetes/client-node: pod
 * lifecycle and exit codes, restart policy, graceful and forced deletion (SIGTERM → SIGKILL, process group
 * with grandchildren), the downward API, logs, the pods/proxy subresource to an HTTP server run as a pod,
 * and a lost node.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { PodLogEvent } from '../../../local/kube/index.ts';
import { eventually, kubeRequest, useLocalKube } from '../../support/kube.ts';
import { acceptedFromOutside, externalAddresses } from './loopback.ts';

const workDir = mkdtempSync(join(tmpdir(), 'tk-kubelet-'));
const binDir = join(workDir, 'bin');
const podsDir = join(workDir, 'pods');
/** A stand-in for an image's contents, copied into every pod's directory. */
const imageDir = join(workDir, 'app');
mkdirSync(imageDir);
writeFileSync(join(imageDir, 'train.sh'), 'echo training\n');
const env = useLocalKube({
  nodes: [{ name: 'node-a' }, { name: 'node-b' }, { name: 'node-c' }],
  podCapacity: 4,
  podsDir,
  imageFiles: [imageDir],
  pathPrepend: [binDir],
  restartBackoffMs: 50,
  env: { FROM_KUBELET: 'base' },
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

let counter = 0;
/** Runs `sh -c script`. As in Kubernetes, `$$` in args is an escaped `$`: write `$$$$` for the shell's PID. */
const shPod = (
  script: string,
  extra: Partial<V1Pod['spec']> = {},
  labels: Record<string, string> = {},
): V1Pod => ({
  metadata: { name: `sh-${++counter}`, labels: { test: 'kubelet', ...labels } },
  spec: {
    restartPolicy: 'Never',
    containers: [{ name: 'main', image: 'ignored', command: ['sh', '-c'], args: [script] }],
    ...extra,
  },
});

const ns = 'kubelet';

async function phaseOf(name: string, phases: string[]): Promise<V1Pod> {
  return eventually(
    async () => {
      const pod = await env.core.readNamespacedPod({ namespace: ns, name });
      return phases.includes(pod.status?.phase ?? '') ? pod : undefined;
    },
    15_000,
    `pod ${name} to reach ${phases.join('/')}`,
  );
}

async function gone(name: string): Promise<void> {
  await eventually(
    async () => {
      try {
        await env.core.readNamespacedPod({ namespace: ns, name });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    15_000,
    `pod ${name} to be removed`,
  );
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('pod lifecycle', () => {
  it('runs a pod to Succeeded with exit code 0, reason Completed, pod IP and start time', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('echo hello; echo oops >&2'),
    });
    const done = await phaseOf(pod.metadata!.name!, ['Succeeded', 'Failed']);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.podIP).toMatch(/^127\.\d+\.\d+\.\d+$/);
    expect(done.status?.startTime).toBeInstanceOf(Date);
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    const log = await env.core.readNamespacedPodLog({ namespace: ns, name: pod.metadata!.name! });
    expect(log).toBe('hello\noops\n');
    const tail = await env.core.readNamespacedPodLog({
      namespace: ns,
      name: pod.metadata!.name!,
      tailLines: 1,
      timestamps: true,
    });
    expect(tail).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z oops\n$/);
  });

  it('marks a pod Failed with the exit code of its process', async () => {
    const pod = await env.core.createNamespacedPod({ namespace: ns, body: shPod('exit 3') });
    const done = await phaseOf(pod.metadata!.name!, ['Succeeded', 'Failed']);
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
  });

  it('reports exit code 137 without an OOM kill as Error, as a kubelet does', async () => {
    const pod = await env.core.createNamespacedPod({ namespace: ns, body: shPod('kill -9 $$$$') });
    const done = await phaseOf(pod.metadata!.name!, ['Failed']);
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 137,
      signal: 9,
      reason: 'Error',
    });
  });

  it('reports a container taken by the OOM killer as OOMKilled with exit code 137, in lastState once restarted', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('echo up; exec sleep 300', { restartPolicy: 'OnFailure' }),
    });
    const name = pod.metadata!.name!;
    await phaseOf(name, ['Running']);
    expect(env.kube.oomKill(ns, 'no-such-pod')).toBe(false);
    expect(env.kube.oomKill(ns, name)).toBe(true);
    const restarted = await eventually(async () => {
      const p = await env.core.readNamespacedPod({ namespace: ns, name });
      return p.status?.containerStatuses?.[0]?.lastState?.terminated ? p : undefined;
    });
    expect(restarted.status?.containerStatuses?.[0]?.lastState?.terminated).toMatchObject({
      exitCode: 137,
      reason: 'OOMKilled',
    });
    // The next exit of the same container, not an OOM kill, is an Error again.
    await eventually(async () => {
      const p = await env.core.readNamespacedPod({ namespace: ns, name });
      return p.status?.containerStatuses?.[0]?.state?.running !== undefined;
    });
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
    await gone(name);
  });

  it('restarts a failing container under restartPolicy OnFailure until it succeeds', async () => {
    const marker = `marker-${counter + 1}`;
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod(`if [ -f ${marker} ]; then echo second; exit 0; fi; touch ${marker}; echo first; exit 1`, {
        restartPolicy: 'OnFailure',
      }),
    });
    const done = await phaseOf(pod.metadata!.name!, ['Succeeded', 'Failed']);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.containerStatuses?.[0]?.restartCount).toBe(1);
    const log = await env.core.readNamespacedPodLog({ namespace: ns, name: pod.metadata!.name! });
    expect(log).toBe('first\nsecond\n');
  });

  it('gives the process the container env with the downward API, $(VAR) expansion, PATH and the agent port', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'downward', labels: { 'trainkeeper.io/job': 'job-1' }, annotations: { note: 'n' } },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: 'trainer',
          containers: [
            {
              name: 'main',
              command: ['sh', '-c', 'env | sort'],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
                {
                  name: 'JOB',
                  valueFrom: { fieldRef: { fieldPath: "metadata.labels['trainkeeper.io/job']" } },
                },
                { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
                { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
                { name: 'GREETING', value: 'hi-$(POD_NAME)-$$(LITERAL)' },
                { name: 'TRAINKEEPER_AGENT_PORT', value: '8080' },
              ],
            },
          ],
        },
      },
    });
    const done = await phaseOf('downward', ['Succeeded', 'Failed']);
    const log = await env.core.readNamespacedPodLog({ namespace: ns, name: 'downward' });
    const vars = Object.fromEntries(
      log
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(vars).toMatchObject({
      POD_NAME: 'downward',
      POD_NS: ns,
      POD_UID: pod.metadata!.uid,
      JOB: 'job-1',
      NODE: done.spec!.nodeName,
      POD_IP: done.status!.podIP,
      HOST_IP: done.status!.hostIP,
      SA: 'trainer',
      GREETING: 'hi-downward-$(LITERAL)',
      FROM_KUBELET: 'base',
    });
    expect(vars.PATH!.split(':')[0]).toBe(binDir);
    // The kubelet's own free port wins over the manifest's 8080.
    expect(Number(vars.TRAINKEEPER_AGENT_PORT)).toBeGreaterThan(0);
    expect(vars.TRAINKEEPER_AGENT_PORT).not.toBe('8080');
    // The agent listens on the pod's loopback IP, not on every interface of the user's machine.
    expect(vars.TRAINKEEPER_AGENT_HOST).toBe(done.status!.podIP);
    expect(vars.HOME).toBeTruthy();
  });

  it("follows a running container's log until the container ends", async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('echo first; sleep 0.5; echo second; sleep 0.2'),
    });
    const name = pod.metadata!.name!;
    await eventually(async () =>
      (await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '')).includes('first'),
    );
    const followed = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/${name}/log?follow=true`);
    expect(followed.body).toBe('first\nsecond\n');
  });

  it('hands every output line to onLog listeners with pod, node, labels and stream', async () => {
    const events: PodLogEvent[] = [];
    const off = env.kube.onLog((e) => events.push(e));
    try {
      const pod = await env.core.createNamespacedPod({
        namespace: ns,
        body: shPod('echo out-line; echo err-line >&2', {}, { app: 'logs' }),
      });
      const done = await phaseOf(pod.metadata!.name!, ['Succeeded']);
      await eventually(() => events.filter((e) => e.pod === pod.metadata!.name).length === 2);
      const mine = events.filter((e) => e.pod === pod.metadata!.name);
      expect(mine.map((e) => [e.stream, e.line]).sort()).toEqual([
        ['stderr', 'err-line'],
        ['stdout', 'out-line'],
      ]);
      expect(mine[0]).toMatchObject({ namespace: ns, container: 'main', node: done.spec!.nodeName });
      expect(mine[0]!.labels).toMatchObject({ app: 'logs' });
      expect(mine[0]!.timestamp).toBeGreaterThan(0);
    } finally {
      off();
    }
  });
});

describe('pod working directory', () => {
  it("runs each pod in its own directory under podsDir, never the host's current directory, and removes it with the pod", async () => {
    const body = shPod('pwd; cat app/train.sh; echo scratch > written.txt; exec sleep 300');
    const pod = await env.core.createNamespacedPod({ namespace: ns, body });
    const name = pod.metadata!.name!;
    await eventually(async () =>
      (await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '')).includes('training'),
    );
    const [cwd] = (await env.core.readNamespacedPodLog({ namespace: ns, name })).split('\n');
    expect(cwd).toBe(join(podsDir, ns, `${name}-${pod.metadata!.uid}`));
    expect(cwd).not.toBe(process.cwd());
    await eventually(() => existsSync(join(cwd!, 'written.txt')));
    expect(existsSync(join(process.cwd(), 'written.txt'))).toBe(false);
    // The image stand-in is a copy: the pod's writes never reach the source.
    expect(readFileSync(join(imageDir, 'train.sh'), 'utf8')).toBe('echo training\n');
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 1 });
    await gone(name);
    await eventually(() => !existsSync(cwd!));
  });

  it.each([
    ['a relative workingDir', 'work/dir', 'work/dir'],
    ['an absolute workingDir', '/workspace', 'workspace'],
    ['a workingDir that climbs out with ..', '../../../../..', ''],
  ])('resolves %s inside the pod directory', async (_case, workingDir, inside) => {
    const body = shPod('pwd');
    body.spec!.containers[0]!.workingDir = workingDir;
    const pod = await env.core.createNamespacedPod({ namespace: ns, body });
    const name = pod.metadata!.name!;
    await phaseOf(name, ['Succeeded']);
    const log = await env.core.readNamespacedPodLog({ namespace: ns, name });
    expect(log.trim()).toBe(join(podsDir, ns, `${name}-${pod.metadata!.uid}`, inside));
  });
});

describe('deletion', () => {
  it('sends SIGTERM, waits the grace period, SIGKILLs the process group with its grandchildren, then removes the pod', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod(
        "(trap '' TERM; sleep 300) & echo child=$!; trap 'echo got-term' TERM; echo ready; while true; do sleep 0.1; done",
      ),
    });
    const name = pod.metadata!.name!;
    const log = await eventually(async () => {
      const text = await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '');
      return text.includes('ready') ? text : undefined;
    });
    const child = Number(/child=(\d+)/.exec(log)![1]);
    expect(isAlive(child)).toBe(true);
    const deleting = await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 1 });
    expect(deleting.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    // Terminating: still there, SIGTERM delivered and ignored.
    const during = await env.core.readNamespacedPod({ namespace: ns, name });
    expect(during.metadata?.deletionGracePeriodSeconds).toBe(1);
    await eventually(async () =>
      (await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '')).includes('got-term'),
    );
    await gone(name);
    await eventually(() => !isAlive(child), 5000, 'the grandchild to die');
  });

  it('kills a descendant that moved to its own process group (as the agent’s workers do) with the pod', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('setsid sleep 300 & echo child=$!; echo ready; while true; do sleep 0.1; done'),
    });
    const name = pod.metadata!.name!;
    const log = await eventually(async () => {
      const text = await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '');
      return text.includes('ready') ? text : undefined;
    });
    const child = Number(/child=(\d+)/.exec(log)![1]);
    expect(isAlive(child)).toBe(true);
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
    await gone(name);
    await eventually(() => !isAlive(child), 5000, 'the detached descendant to die');
  });

  it('takes the grace period from a DeleteOptions body', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod("trap '' TERM; exec sleep 300"),
    });
    const name = pod.metadata!.name!;
    await phaseOf(name, ['Running']);
    const res = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/${name}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 1 }),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).metadata.deletionGracePeriodSeconds).toBe(1);
    await gone(name);
  });

  it('removes a pod whose process exits on SIGTERM without waiting for the grace period', async () => {
    const pod = await env.core.createNamespacedPod({ namespace: ns, body: shPod('echo up; exec sleep 300') });
    const name = pod.metadata!.name!;
    await phaseOf(name, ['Running']);
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 600 });
    await gone(name);
  });

  it('kills the process at once on a forced delete (grace 0)', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod("trap '' TERM; echo pid=$$$$; sleep 300"),
    });
    const name = pod.metadata!.name!;
    const log = await eventually(async () => {
      const text = await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '');
      return text.includes('pid=') ? text : undefined;
    });
    const pid = Number(/pid=(\d+)/.exec(log)![1]);
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
    await expect(env.core.readNamespacedPod({ namespace: ns, name })).rejects.toMatchObject({ code: 404 });
    await eventually(() => !isAlive(pid), 5000, 'the process to die');
  });
});

describe('pods/proxy', () => {
  const server = `
    const http = require('node:http');
    http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-from-pod', process.env.POD_NAME);
        res.end(JSON.stringify({ method: req.method, url: req.url, body, test: req.headers['x-test'] ?? null, local: req.socket.localAddress }));
      });
    }).listen(Number(process.env.TRAINKEEPER_AGENT_PORT), process.env.POD_IP, () => console.log('listening'));
  `;

  it('forwards method, path, query, headers and body to the pod and relays the answer', async () => {
    await env.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'agent' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'agent',
              command: ['node', '-e', server],
              ports: [{ containerPort: 8080 }],
              env: [
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
            },
          ],
        },
      },
    });
    await eventually(async () =>
      (await env.core.readNamespacedPodLog({ namespace: ns, name: 'agent' }).catch(() => '')).includes(
        'listening',
      ),
    );
    const pod = await env.core.readNamespacedPod({ namespace: ns, name: 'agent' });
    const viaClient = await env.core.connectGetNamespacedPodProxyWithPath({
      namespace: ns,
      name: 'agent:8080',
      path: 'status',
    });
    const parsed = JSON.parse(typeof viaClient === 'string' ? viaClient : JSON.stringify(viaClient));
    expect(parsed).toMatchObject({ method: 'GET', url: '/status', local: pod.status!.podIP });
    const res = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/agent:8080/proxy/start?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test': 'yes' },
      body: JSON.stringify({ rank: 0 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-from-pod']).toBe('agent');
    expect(JSON.parse(res.body)).toMatchObject({
      method: 'POST',
      url: '/start?x=1',
      body: '{"rank":0}',
      test: 'yes',
    });
    const plain = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/agent/proxy/status`);
    expect(JSON.parse(plain.body)).toMatchObject({ url: '/status' });
  });

  it("runs a real agent on the pod's loopback IP: reachable through pods/proxy, refused on the host's network addresses", async () => {
    const agentBin = fileURLToPath(new URL('../../../bin/trainkeeper-agent.js', import.meta.url));
    await env.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'real-agent' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'pytorch',
              command: [process.execPath, agentBin, '--nproc-per-node', '1', 'train.sh'],
              ports: [{ containerPort: 8080 }],
            },
          ],
        },
      },
    });
    const log = await eventually(async () => {
      const text = await env.core.readNamespacedPodLog({ namespace: ns, name: 'real-agent' }).catch(() => '');
      return /listening on \S+:\d+/.test(text) ? text : undefined;
    }, 30_000);
    const [, host, port] = /listening on (\S+):(\d+)/.exec(log)!;
    const pod = await env.core.readNamespacedPod({ namespace: ns, name: 'real-agent' });
    expect(host).toBe(pod.status!.podIP);
    expect(host).toMatch(/^127\./);
    const status = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/real-agent:8080/proxy/status`);
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body)).toMatchObject({ status: 'ready' });
    expect(externalAddresses().length).toBeGreaterThan(0);
    expect(await acceptedFromOutside(Number(port))).toEqual([]);
    await env.core.deleteNamespacedPod({ namespace: ns, name: 'real-agent', gracePeriodSeconds: 0 });
  }, 60_000);

  it('answers 503 ServiceUnavailable when nothing listens in the pod', async () => {
    const pod = await env.core.createNamespacedPod({ namespace: ns, body: shPod('exec sleep 300') });
    const name = pod.metadata!.name!;
    await phaseOf(name, ['Running']);
    const res = await kubeRequest(env.kube, `/api/v1/namespaces/${ns}/pods/${name}/proxy/status`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable' });
  });
});

describe('a lost node', () => {
  it('goes NotReady, SIGKILLs its processes, fails its pods with NodeLost and takes no new pods', async () => {
    const pod = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('echo pid=$$$$; exec sleep 300', { nodeSelector: { 'kubernetes.io/hostname': 'node-c' } }),
    });
    const name = pod.metadata!.name!;
    const log = await eventually(async () => {
      const text = await env.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => '');
      return text.includes('pid=') ? text : undefined;
    });
    const pid = Number(/pid=(\d+)/.exec(log)![1]);
    env.kube.loseNode('node-c');
    const failed = await env.core.readNamespacedPod({ namespace: ns, name });
    expect(failed.status).toMatchObject({ phase: 'Failed', reason: 'NodeLost' });
    const node = await env.core.readNode({ name: 'node-c' });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    await eventually(() => !isAlive(pid), 5000, 'the process on the lost node to die');
    const next = await env.core.createNamespacedPod({
      namespace: ns,
      body: shPod('exit 0', { nodeSelector: { 'kubernetes.io/hostname': 'node-c' } }),
    });
    const pending = await eventually(async () => {
      const p = await env.core.readNamespacedPod({ namespace: ns, name: next.metadata!.name! });
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
        ? p
        : undefined;
    });
    expect(pending.spec?.nodeName).toBeUndefined();
    expect(pending.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message).toContain(
      'not ready',
    );
    // The control plane removes pods of lost nodes; a Failed pod goes at once even with a grace period.
    await env.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 30 });
    await expect(env.core.readNamespacedPod({ namespace: ns, name })).rejects.toMatchObject({ code: 404 });
  });

  it('lets kubectl-style label changes through the API drive node health', async () => {
    await env.core.patchNode(
      {
        name: 'node-b',
        body: { metadata: { labels: { 'sagemaker.amazonaws.com/node-health-status': 'Unschedulable' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const node = await env.core.readNode({ name: 'node-b' });
    expect(node.metadata?.labels?.['sagemaker.amazonaws.com/node-health-status']).toBe('Unschedulable');
    expect(node.spec?.providerID).toMatch(/^aws:\/\/\/us-west-2a\/i-0[0-9a-f]{16}$/);
  });
});
