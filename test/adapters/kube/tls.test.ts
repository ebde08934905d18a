/**
 * The EKS-shaped KubeConfig (HTTPS endpoint verified against the cluster CA, bearer token from the EKS
 * token provider) through both of the adapter's transports: client-node's CoreV1Api and the raw
 * `pods/proxy` requests. The server is a real HTTPS server with a certificate minted by openssl.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eksKubeConfig } from '../../../adapters/aws/cluster-endpoint.ts';
import { kubeClusterFromConfig } from '../../../adapters/kube/cluster.ts';

/** Minting a certificate needs the openssl binary (Debian ships it; the suite says so when it is missing). */
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl)
  console.warn('test/adapters/kube/tls.test.ts: skipped, no openssl binary to mint a certificate');

let dir: string;
let server: https.Server;
let url: string;
let ca: string;
const seen: { path: string; auth: string | undefined }[] = [];

beforeAll(async () => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), 'tk-kube-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
  server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, (req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    const body = req.url?.startsWith('/api/v1/nodes')
      ? { kind: 'NodeList', apiVersion: 'v1', metadata: {}, items: [] }
      : { status: 'ready' };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (!hasOpenssl) return;
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasOpenssl)('KubeCluster over HTTPS with the cluster CA and an EKS token', () => {
  it('lists nodes and calls an agent, verifying the server against the CA and sending the token', async () => {
    let n = 0;
    const kc = eksKubeConfig(
      { eksClusterName: 'c', endpoint: url, caData: Buffer.from(ca).toString('base64') },
      { getToken: async () => `k8s-aws-v1.token-${++n}` },
    );
    const cluster = kubeClusterFromConfig(kc);
    try {
      expect(await cluster.listNodes()).toEqual([]);
      const [r] = await cluster.agentStatus('team-a', ['p0']);
      expect(r).toEqual({ pod: 'p0', ok: true, status: { status: 'ready' } });
    } finally {
      cluster.close();
    }
    expect(seen.map((s) => s.path)).toEqual([
      '/api/v1/nodes?labelSelector=sagemaker.amazonaws.com%2Fnode-health-status',
      '/api/v1/namespaces/team-a/pods/p0%3A8080/proxy/status',
    ]);
    expect(seen.every((s) => s.auth?.startsWith('Bearer k8s-aws-v1.token-'))).toBe(true);
  });

  it('refuses a server whose certificate the CA does not vouch for', async () => {
    const other = mkdtempSync(join(tmpdir(), 'tk-kube-tls-other-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=other',
          '-keyout',
          join(other, 'key.pem'),
          '-out',
          join(other, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      const wrongCa = readFileSync(join(other, 'cert.pem')).toString('base64');
      const kc = eksKubeConfig(
        { eksClusterName: 'c', endpoint: url, caData: wrongCa },
        { getToken: async () => 't' },
      );
      const cluster = kubeClusterFromConfig(kc, {
        retryPolicy: { retries: 0, minDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
      });
      try {
        await expect(cluster.listNodes()).rejects.toThrow();
        const [r] = await cluster.agentStatus('team-a', ['p0']);
        expect(r).toMatchObject({ ok: false, unreachable: false });
      } finally {
        cluster.close();
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
