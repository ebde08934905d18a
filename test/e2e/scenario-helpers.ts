/**
 * Helpers the fault scenarios share on top of the harness: process reality (`ps`), pod logs through the
 * Kubernetes API, cancel, and the lifecycle timeline. Kept apart from harness.ts so scenario files written
 * in parallel never edit the same helper.
 */

import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { E2E, EventDoc, JobDoc } from './harness.ts';

const run = promisify(execFile);

/**
 * Live processes whose command line contains `needle` (e.g. a job's checkpoint dir, which every trainer
 * and agent of that job carries), excluding `ps` itself. The truth about leftovers, whatever the API says.
 */
export async function processesWith(needle: string): Promise<{ pid: number; args: string }[]> {
  const { stdout } = await run('ps', ['-eo', 'pid,args'], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l.includes(needle) && !/^\d+\s+ps\s/.test(l))
    .map((l) => {
      const [pid, ...args] = l.split(/\s+/);
      return { pid: Number(pid), args: args.join(' ') };
    });
}

/**
 * Polls until no process's command line contains `needle`; returns the survivors (empty on success) so
 * the test can assert `toEqual([])` and show what was left behind when it fails.
 */
export async function waitNoProcessesWith(
  needle: string,
  timeoutMs = 20_000,
): Promise<{ pid: number; args: string }[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await processesWith(needle);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(250);
    left = await processesWith(needle);
  }
  return left;
}

/** The checkpoint dir `jobManifest` gives a job: every one of its processes carries it on its command line. */
export const checkpointDir = (t: E2E, name: string, namespace = 'default'): string =>
  `${t.plane.dataDir}/checkpoints/${namespace}/${name}`;

/** A pod's container log through the Kubernetes API (`pods/{name}/log`), as `kubectl logs` reads it. */
export async function podLog(t: E2E, pod: string, namespace = 'default'): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromString(t.plane.kube.kubeconfigYaml());
  return kc.makeApiClient(CoreV1Api).readNamespacedPodLog({ name: pod, namespace });
}

/** `DELETE /jobs/{ns}/{name}`: cancels the job; returns the HTTP status. */
export async function cancel(t: E2E, name: string, namespace = 'default'): Promise<number> {
  const res = await fetch(`${t.api}/jobs/${namespace}/${name}`, { method: 'DELETE' });
  await res.body?.cancel();
  return res.status;
}

/** The lifecycle names of the timeline, oldest first. */
export const lifecycle = (events: EventDoc[]): string[] =>
  events.flatMap((e) => (e.lifecycle ? [e.lifecycle] : []));

/** The rank pods (spares excluded) of a job document, by rank. */
export const rankPods = (job: JobDoc): JobDoc['status']['pods'] =>
  job.status.pods.filter((p) => p.rank !== null && !p.spare).sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));

/** The value of one metric sample line (`name{labels} value`) whose labels contain every `labels` pair. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const body = m[3] ?? '';
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) {
      total += Number(m[4]);
      found = true;
    }
  }
  return found ? total : Number.NaN;
}

/**
 * The lifecycle timeline once it holds `last` (events are written after the job record, so a job document
 * can be Succeeded a moment before its JobSucceeded event is stored).
 */
export async function lifecycleUntil(
  t: E2E,
  name: string,
  last: string,
  timeoutMs = 15_000,
  namespace = 'default',
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let names = lifecycle(await t.events(name, namespace));
  while (!names.includes(last) && Date.now() < deadline) {
    await sleep(200);
    names = lifecycle(await t.events(name, namespace));
  }
  return names;
}

/** Polls until the local Kubernetes holds no pod of the job; returns what is left (empty on success). */
export async function waitNoPods(
  t: E2E,
  name: string,
  timeoutMs = 20_000,
  namespace = 'default',
): Promise<{ name: string; node?: string; phase: string }[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await t.kubePods(name, namespace);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(250);
    left = await t.kubePods(name, namespace);
  }
  return left;
}

/** The lifecycle events of a job that recovered from one fault and then succeeded (in any order). */
export const RECOVERED_AND_SUCCEEDED = [
  'JobSubmitted',
  'FaultDetected',
  'RestartStarted',
  'RestartCompleted',
  'JobSucceeded',
] as const;

/** Deletes a job's pods through the Kubernetes API (what `cleanPodPolicy: None` leaves after success). */
export async function deleteJobPods(t: E2E, name: string, namespace = 'default'): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromString(t.plane.kube.kubeconfigYaml());
  const core = kc.makeApiClient(CoreV1Api);
  for (const p of await t.kubePods(name, namespace)) {
    await core.deleteNamespacedPod({ namespace, name: p.name, gracePeriodSeconds: 0 });
  }
}

/** Asserts a finished job left no pod in the API server and no trainer/agent process on the machine. */
export async function expectNothingLeft(t: E2E, name: string): Promise<void> {
  expect(await waitNoPods(t, name)).toEqual([]);
  expect(await waitNoProcessesWith(checkpointDir(t, name))).toEqual([]);
}
