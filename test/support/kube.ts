/**
 * Vitest helper: a LocalKube (local/kube) per test file, started in beforeAll and stopped in afterAll (which
 * kills every pod process it started), plus a real `@kubernetes/client-node` KubeConfig and CoreV1Api
 * pointed at it the way the EKS adapter builds them (`loadFromOptions` with server + bearer token).
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { type LocalKube, type LocalKubeOptions, startLocalKube } from '../../local/kube/index.ts';

/** What `useLocalKube` gives a test file; the getters throw before beforeAll ran. */
export interface LocalKubeHandle {
  readonly kube: LocalKube;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
}

/** An EKS-style KubeConfig (server + token, no kubeconfig file) for a LocalKube. */
export function kubeConfigForLocal(kube: Pick<LocalKube, 'url' | 'token'>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: kube.url, skipTLSVerify: true }],
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
    await new Promise((r) => setTimeout(r, 25));
  }
}
