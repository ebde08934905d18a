/**
 * Vitest helper: a LocalKube (local/kube) per test file, started in beforeAll and stopped in afterAll (which
 * kills every pod process it started), plus a real `@kubernetes/client-node` KubeConfig and CoreV1Api
 * pointed at it the way the EKS adapter builds them (`loadFromOptions` with server + bearer token).
 */

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { type LocalKube, type LocalKubeOptions, startLocalKube } from '../../local/kube/index.ts';

/** What `useLocalKube` gives a test file; the getters throw before beforeAll ran. */
export interface LocalKubeHandle {
  readonly kube: LocalKube;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
}

/**
 * An EKS-style KubeConfig for a LocalKube: server + CA data + bearer token, no kubeconfig file, exactly
 * what the adapter builds from DescribeCluster (plain-HTTP servers get skipTLSVerify, which client-node
 * demands for `http:`).
 */
export function kubeConfigForLocal(kube: Pick<LocalKube, 'url' | 'token' | 'caData'>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      kube.caData
        ? { name: 'local', server: kube.url, caData: kube.caData, skipTLSVerify: false }
        : { name: 'local', server: kube.url, skipTLSVerify: true },
    ],
    users: [{ name: 'trainkeeper', token: kube.token }],
    contexts: [{ name: 'local', cluster: 'local', user: 'trainkeeper' }],
    currentContext: 'local',
  });
  return kc;
}

/** Starts a LocalKube for the calling test file and stops it after the file's last test. */
export function useLocalKube(options: LocalKubeOptions = {}): LocalKubeHandle {
  let kube: LocalKube | undefined;
  let kc: KubeConfig | undefined;
  let core: CoreV1Api | undefined;
  beforeAll(async () => {
    kube = await startLocalKube(options);
    kc = kubeConfigForLocal(kube);
    core = kc.makeApiClient(CoreV1Api);
  });
  afterAll(async () => {
    await kube?.stop();
  });
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useLocalKube: the local cluster is not started (beforeAll)');
    return value;
  };
  return {
    get kube() {
      return need(kube);
    },
    get kc() {
      return need(kc);
    },
    get core() {
      return need(core);
    },
  };
}

/** A raw request to the LocalKube (trusting its CA), for what the typed client cannot send. */
export function kubeRequest(
  kube: Pick<LocalKube, 'url' | 'token' | 'ca'>,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; token?: string | null } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(path, kube.url);
  const token = init.token === undefined ? kube.token : init.token;
  const headers: Record<string, string> = {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    // Node sends DELETE bodies unframed unless told their length.
    ...(init.body !== undefined ? { 'content-length': String(Buffer.byteLength(init.body)) } : {}),
    ...(init.headers ?? {}),
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: init.method ?? 'GET', headers, ...(kube.ca ? { ca: kube.ca } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(25);
  }
}
