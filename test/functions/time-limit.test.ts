/**
 * The Lambda time limit in the middle of a restart, on real components (dynalite, the local Kubernetes
 * API, real `trainkeeper-agent` processes through `pods/proxy`): the trigger that restarts the job runs
 * out of time half-way through its agent calls, stops starting them, records the cut (the job is due at
 * once), and the next invocation finishes the restart: every agent started exactly once at the new
 * generation. The time limit is a Deadline port whose remaining time drops below the margin after a set
 * number of agent calls (the reconciler asks it once before each call), so the cut falls at a known call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../core/job.ts';
import type { Deadline, JobRef } from '../../core/ports.ts';
import { makeHandler as makeApi } from '../../functions/api.ts';
import type { Deps } from '../../functions/shell/reconcile.ts';
import { makeHandler as makeSweep } from '../../functions/sweep.ts';
import { apiEvent, manifest } from './fixtures.ts';
import { type Harness, NAMESPACE, startHarness } from './harness.ts';

const PODS = 4;
/** Bringing up real agent processes on a loaded machine takes a while. */
const TIMEOUT_MS = 240_000;
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, TIMEOUT_MS);
afterAll(async () => {
  await h?.stop();
});

const ref = (name: string): JobRef => ({ namespace: NAMESPACE, name });
const load = async (name: string): Promise<JobRecord> => {
  const job = await h.store.getJob(ref(name));
  if (!job) throw new Error(`job ${name} is missing`);
  return job;
};

/** A deadline with time for `calls` agent calls, then below any margin. */
const timeFor = (calls: number): Deadline => {
  let asked = 0;
  return { remainingMs: () => (++asked <= calls ? 60_000 : 1_000) };
};

/** Submits a PODS-pod job (one worker per pod) and brings it Running at generation 0 (kubelet + sweeps). */
async function runningJob(name: string): Promise<JobRecord> {
  const text = manifest(name, NAMESPACE, (m) => {
    const spec = m.spec as { nprocPerNode?: number; replicaSpecs: { replicas: number }[] };
    spec.nprocPerNode = 1;
    spec.replicaSpecs[0]!.replicas = PODS;
    (m.spec as Record<string, unknown>).trainkeeper = { presets: [] };
  });
  const res = await makeApi(h.deps)(
    apiEvent('POST', '/jobs', { body: text, headers: { 'content-type': 'application/json' } }),
  );
  expect(res.statusCode).toBe(201);
  const sweep = makeSweep(h.deps);
  let job = await load(name);
  for (let i = 0; i < 80 && job.phase !== 'Running'; i++) {
    await h.kubelet();
    await sweep({}).catch(() => undefined);
    job = await load(name);
    if (job.phase !== 'Running') await new Promise((r) => setTimeout(r, 100));
  }
  expect(job.phase).toBe('Running');
  return job;
}

/** The generations each pod's agent reported entering RUNNING at (its status lines on stdout). */
function runningGenerations(pod: string): number[] {
  return h.linesOf(pod).flatMap((line) => {
    try {
      const record = JSON.parse(line) as {
        trainkeeper?: string;
        kind?: string;
        state?: string;
        generation?: number;
      };
      return record.trainkeeper === 'agent/v1' && record.kind === 'state' && record.state === 'RUNNING'
        ? [record.generation as number]
        : [];
    } catch {
      return [];
    }
  });
}

describe('a restart cut short by the Lambda time limit', () => {
  it.each([
    // [case, agent calls the first invocation has time for, what is left for the second]
    ['half of the stops', PODS / 2, 'StopAgents'],
    ['every stop and two starts', PODS + 2, 'StartAgents'],
  ])(
    'after %s, is finished by the next invocation, every agent started once at the new generation',
    async (_, calls, left) => {
      const name = `cut-${calls}`;
      const before = await runningJob(name);
      const deadline = timeFor(calls);
      const limited: Deps = { ...h.deps, deadline };

      // Invocation 1: the restart command, with time for `calls` agent calls.
      const res = await makeApi(limited)(
        apiEvent('POST', `/jobs/${NAMESPACE}/${name}/restart`, {
          body: JSON.stringify({ level: 'process' }),
          headers: { 'content-type': 'application/json' },
        }),
      );
      expect(res.statusCode).toBe(202);
      const cut = await load(name);
      const generation = before.generation + 1;
      expect(cut.generation).toBe(generation);
      expect(cut.phase).toBe('Restarting');
      expect(cut.cutShortAt).toBeDefined();
      // Due at once: the sweep's due index lists it.
      expect(cut.nextCheckAt).toBe(cut.cutShortAt);
      expect(await h.store.listDueJobs(Date.now())).toContainEqual(ref(name));
      const onNew = cut.pods.filter((p) => p.agent?.state === 'RUNNING' && p.agent.generation === generation);
      const stopped = cut.pods.filter((p) => p.agent?.state === 'READY');
      if (left === 'StopAgents') {
        // Made: `calls` stops; the other agents still run generation 0 and nothing was started.
        expect(stopped).toHaveLength(calls);
        expect(onNew).toHaveLength(0);
      } else {
        expect(onNew).toHaveLength(2);
        expect(stopped).toHaveLength(PODS - 2);
      }

      // Invocation 2: one sweep, no time limit.
      const outcome = await makeSweep(h.deps)({});
      expect(outcome.jobs).toContainEqual(expect.objectContaining({ ref: ref(name), phase: 'Running' }));
      const done = await load(name);
      expect(done.phase).toBe('Running');
      expect(done.generation).toBe(generation);
      expect(done.cutShortAt).toBeUndefined();
      for (const pod of done.pods) {
        expect(pod.agent).toMatchObject({ state: 'RUNNING', generation });
        expect(
          runningGenerations(pod.name).filter((g) => g === generation),
          pod.name,
        ).toEqual([generation]);
      }
    },
    TIMEOUT_MS,
  );
});
