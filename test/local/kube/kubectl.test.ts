/**
 * Debian's kubectl against the local API server: discovery, `get pods -o json`, `label node`, and the
 * generated kubeconfig. Skipped, loudly, only when kubectl is not installed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, useLocalKube } from '../../support/kube.ts';

const run = promisify(execFile);
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
if (!hasKubectl) {
  console.warn('\n!!! kubectl is not installed: SKIPPING the kubectl tests of the local API server !!!\n');
}

const env = useLocalKube({ nodes: 2 });
const home = mkdtempSync(join(tmpdir(), 'tk-kubectl-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** kubectl with the flags the brief names; HOME points at a scratch dir so no user config or cache leaks in. */
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(
    'kubectl',
    ['--server', env.kube.url, '--token', env.kube.token, '--insecure-skip-tls-verify', ...args],
    { env: { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: join(home, 'none') }, timeout: 30_000 },
  );
  return stdout;
}

describe.skipIf(!hasKubectl)('kubectl against the local API server', () => {
  it('lists pods as JSON with kubectl get pods -o json', async () => {
    await env.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'from-client', labels: { app: 'k' } },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', command: ['sh', '-c', 'exec sleep 300'] }],
        },
      },
    });
    await eventually(
      async () =>
        (await env.core.readNamespacedPod({ namespace: 'default', name: 'from-client' })).status?.phase ===
        'Running',
    );
    const list = JSON.parse(await kubectl('get', 'pods', '-o', 'json'));
    expect(list.kind).toBe('List');
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({
      kind: 'Pod',
      metadata: { name: 'from-client', namespace: 'default' },
      status: { phase: 'Running' },
    });
    const selected = JSON.parse(await kubectl('get', 'pods', '-l', 'app=nope', '-o', 'json'));
    expect(selected.items).toHaveLength(0);
  });

  it('prints the server-side Table kubectl asks for in human output', async () => {
    const wide = await kubectl('get', 'pods', '-o', 'wide', '-l', 'app=k');
    const [header, row] = wide.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE']);
    expect(row).toMatch(/^from-client\s+1\/1\s+Running\s+0\s+\d+s\s+127\.\d+\.\d+\.\d+\s+node-\d$/);
    const nodes = await kubectl('get', 'nodes');
    expect(nodes).toMatch(/node-1\s+Ready/);
  });

  it('relabels a node with kubectl label node, as an operator or HyperPod would', async () => {
    await kubectl(
      'label',
      'node',
      'node-1',
      'sagemaker.amazonaws.com/node-health-status=Unschedulable',
      '--overwrite',
    );
    const node = await env.core.readNode({ name: 'node-1' });
    expect(node.metadata?.labels?.['sagemaker.amazonaws.com/node-health-status']).toBe('Unschedulable');
    await kubectl('label', 'node', 'node-1', 'example.com/extra=1');
    await kubectl('label', 'node', 'node-1', 'example.com/extra-');
    const after = await env.core.readNode({ name: 'node-1' });
    expect(after.metadata?.labels).not.toHaveProperty('example.com/extra');
    const nodes = JSON.parse(await kubectl('get', 'nodes', '-o', 'json'));
    expect(nodes.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toEqual([
      'node-1',
      'node-2',
    ]);
  });

  it('applies a pod manifest with validation on (no --validate=false) and refuses one with unknown fields', async () => {
    const file = join(home, 'applied.yaml');
    const manifest = (labels: string, extra = '') =>
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: applied\n  labels: {${labels}}\n${extra}spec:\n  restartPolicy: Never\n  containers:\n    - name: main\n      image: busybox\n      command: [sh, -c, 'exec sleep 300']\n`;
    writeFileSync(file, manifest('app: a'));
    expect(await kubectl('apply', '-f', file)).toMatch(/pod\/applied created/);
    writeFileSync(file, manifest('app: b, extra: x'));
    expect(await kubectl('apply', '-f', file)).toMatch(/pod\/applied configured/);
    const pod = await env.core.readNamespacedPod({ namespace: 'default', name: 'applied' });
    expect(pod.metadata?.labels).toEqual({ app: 'b', extra: 'x' });
    writeFileSync(file, manifest('app: c', 'sepc: {}\n').replace('name: applied', 'name: typo'));
    const refused = await kubectl('apply', '-f', file).then(
      () => '',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    expect(refused).toMatch(/strict decoding error: unknown field "sepc"/);
    await expect(env.core.readNamespacedPod({ namespace: 'default', name: 'typo' })).rejects.toThrow();
    await env.core.deleteNamespacedPod({ namespace: 'default', name: 'applied', gracePeriodSeconds: 0 });
  });

  it('works from the generated kubeconfig', async () => {
    const file = join(home, 'kubeconfig.yaml');
    await env.kube.writeKubeconfig(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { stdout } = await run('kubectl', ['--kubeconfig', file, 'get', 'namespaces', '-o', 'json'], {
      env: { PATH: process.env.PATH ?? '', HOME: home },
      timeout: 30_000,
    });
    const names = JSON.parse(stdout).items.map((n: { metadata: { name: string } }) => n.metadata.name);
    expect(names).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });
});
