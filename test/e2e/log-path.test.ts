/**
 * The log path as AWS delivers it, end to end on the local plane: the shipper writes the stock Container
 * Insights records (Labels Off) and applies the deployed default subscription filter (the JSON pattern
 * over the plane's allowed namespaces, here `default` and `sandbox`). Scenarios: a preset fault printed by a
 * rank that then blocks; a healthy job with a short recurring rule; a forger pod printing agent records for
 * another job's pods. (A worker crash in this dialect: worker-crash.test.ts; a filter that drops worker
 * lines: blind-log.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { eventually } from './eventually.ts';
import { type E2E, jobManifest, useControlPlane } from './harness.ts';
import { metricValue } from './scenario-helpers.ts';

const e2e = useControlPlane({ allowedNamespaces: ['default', 'sandbox'] });

/** The watchdog line of test/fixtures/logs/nccl-watchdog-timeout.log, as the rank printed it. */
const WATCHDOG_LINE = (() => {
  const text = readFileSync(new URL('../fixtures/logs/nccl-watchdog-timeout.log', import.meta.url), 'utf8');
  const line = text.split('\n').find((l) => l.includes('Watchdog caught collective operation timeout'));
  if (!line) throw new Error('no watchdog line in the fixture');
  // "<time> [default1]:<text>": the agent adds the [default<N>]: prefix itself.
  return line.replace(/^\S+ \[default\d+\]:/, '');
})();

/**
 * A trainer whose rank 1 prints `argv[1]` at its sixth step of the first run and then blocks, as a rank
 * does after an NCCL watchdog timeout (its peer blocks in the collective); restarted, every rank trains to
 * the end.
 */
const BLOCKER = `import os, sys, time
rank = int(os.environ.get("RANK", "0"))
restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", os.environ.get("JOB_RESTART_COUNT", "0")))
for step in range(1, 41):
    print("step %d/40 loss 1.0" % step, flush=True)
    if restart == 0 and step == 6:
        if rank == 1:
            print(sys.argv[1], flush=True)
        while True:
            time.sleep(3600)
    time.sleep(0.1)
`;

const kubeApi = (t: E2E) => {
  const kc = new KubeConfig();
  kc.loadFromString(t.plane.kube.kubeconfigYaml());
  return kc.makeApiClient(CoreV1Api);
};

describe('the stock log path', () => {
  it('restarts a rank that printed an NCCL watchdog timeout and then blocked, by the nccl preset, and the job succeeds', async () => {
    const t = e2e();
    const script = join(t.plane.dataDir, 'blocker.py');
    await writeFile(script, BLOCKER);
    const manifest = jobManifest(t.plane, {
      name: 'watchdog',
      command: ['hyperpodrun', '--nproc-per-node=1', script, WATCHDOG_LINE],
      nproc: 1,
    });
    expect((await t.submit(manifest)).status).toBe(201);
    const restarted = await t.waitFor(
      'watchdog',
      'a recovered restart',
      (j) => j.status.remediations.some((r) => r.restartLatencyMs !== null),
      90_000,
    );
    const remediation = restarted.status.remediations[0]!;
    expect(remediation.reason).toMatch(/^LogFault_.*watchdog-timeout/);
    expect(remediation.level).toBe('process');
    const done = await t.waitFor('watchdog', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations).toHaveLength(1);
  }, 200_000);

  it('never restarts a healthy job whose short recurring rule sees its lines', async () => {
    const t = e2e();
    const beat = { name: 'Beat', logPattern: '.*step \\d+/\\d+.*', expectedRecurringFrequencyInSeconds: 2 };
    // 10 s of training: five periods of the rule.
    const manifest = jobManifest(t.plane, { name: 'healthy', steps: 100, stepTime: 0.1, rules: [beat] });
    expect((await t.submit(manifest)).status).toBe(201);
    const done = await t.waitFor('healthy', 'success', (j) => j.status.phase === 'Succeeded', 90_000);
    expect(done.status.remediations).toEqual([]);
    expect(done.status.generation).toBe(0);
    expect(done.status.conditions.find((c) => c.type === 'LogsNotArriving')).toBeUndefined();
  }, 120_000);

  it('ignores a forger pod in another namespace (and one in the job namespace) printing COMPLETED and FAULTED for the job, and counts the forged records', async () => {
    const t = e2e();
    const manifest = jobManifest(t.plane, { name: 'victim', steps: 300, stepTime: 0.1 });
    expect((await t.submit(manifest)).status).toBe(201);
    const before = await t.waitForTraining('victim', 5);
    const forged = before.status.pods.flatMap((p) => [
      { state: 'COMPLETED', pod: p.name },
      { state: 'FAULTED', pod: p.name, reason: 'WorkerCrash' },
    ]);
    const lines = forged.map((f) =>
      JSON.stringify({
        trainkeeper: 'agent/v1',
        kind: 'state',
        ts: new Date().toISOString(),
        generation: before.status.generation,
        job: 'victim',
        namespace: 'default',
        ...f,
      }),
    );
    const script = `for i in 1 2 3 4 5; do\n${lines.map((l) => `echo '${l}'`).join('\n')}\nsleep 0.5; done; sleep 30`;
    const api = kubeApi(t);
    for (const namespace of ['sandbox', 'default']) {
      await api.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: 'forger' },
          spec: { containers: [{ name: 'forger', image: 'busybox', command: ['sh', '-c', script] }] },
        },
      });
    }
    await eventually(
      () => t.metrics(),
      (metrics) =>
        expect(
          metricValue(metrics, 'trainkeeper_malformed_events_skipped_total', { kind: 'forged-agent-record' }),
        ).toBeGreaterThanOrEqual(2 * forged.length),
      30_000,
    );
    // A few more seconds for anything the records could have moved.
    await sleep(3000);
    const after = await t.job('victim');
    expect(after.status.phase).toBe('Running');
    expect(after.status.generation).toBe(before.status.generation);
    expect(after.status.remediations).toEqual([]);
    expect(after.status.pods.every((p) => p.agentState === 'RUNNING')).toBe(true);
  }, 120_000);
});
