import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jobManifest, useControlPlane } from './harness.ts';
import {
  checkpointDir,
  deleteJobPods,
  expectNothingLeft,
  lifecycleUntil,
  podLog,
  RECOVERED_AND_SUCCEEDED,
  rankPods,
} from './scenario-helpers.ts';
import { finals, hasTorch, runReference, TORCH_PY, warnWithoutTorch } from './torch.ts';

warnWithoutTorch('the end-to-end PyTorch DDP scenario');

const e2e = useControlPlane();
const STEPS = 30;
const TRAINER = 'examples/trainers/ddp_trainer.py';
const TRAINER_ARGS = [`--steps=${STEPS}`, '--checkpoint-every=5', '--step-time=0.3'];
const refDir = mkdtempSync(join(tmpdir(), 'trainkeeper-ddp-ref-'));
afterAll(() => rmSync(refDir, { recursive: true, force: true }));

describe.skipIf(!hasTorch)('real PyTorch DDP (gloo, CPU) under the control plane', () => {
  it('recovers a crashed rank from its checkpoint to exactly the parameters of an uninterrupted run', async () => {
    const t = e2e();
    const name = 'ddp';
    const reference = runReference(TRAINER, [...TRAINER_ARGS, `--checkpoint-dir=${refDir}`]);
    const manifest = jobManifest(t.plane, {
      name,
      // Pods stay after success (cleanPodPolicy None) so their logs can be read through the Kubernetes API.
      runPolicy: { cleanPodPolicy: 'None' },
      command: [
        'hyperpodrun',
        '--nproc-per-node=2',
        '--shutdown-signal=SIGTERM',
        '--shutdown-timeout=5',
        '--python',
        TORCH_PY,
        TRAINER,
        ...TRAINER_ARGS,
        `--checkpoint-dir=${checkpointDir(t, name)}`,
      ],
    });
    expect((await t.submit(manifest)).status).toBe(201);
    const before = await t.waitFor(
      name,
      'DDP training past its first checkpoint',
      (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= 6,
      90_000,
    );
    const pods = rankPods(before).map((p) => p.name);

    await t.chaos(name, 'crash', { rank: 1, exitCode: 3 });
    const after = await t.waitFor(
      name,
      'a recovered process-level restart',
      (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
      90_000,
    );
    expect(after.status.remediations[0]!.level).toBe('process');
    // The trainer's crash prints "RuntimeError: CUDA error: ..." and then exits: the cuda preset on that line
    // and the agent's exit report race, and whichever the control plane sees first names the remediation.
    expect(after.status.remediations[0]!.reason).toMatch(
      /^(WorkerCrash|WorkerFault|LogFault_preset\.cuda\.cuda-error)$/,
    );
    expect(after.status.generation).toBe(before.status.generation + 1);
    expect(rankPods(after).map((p) => p.name)).toEqual(pods);

    const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 120_000);
    expect(done.status.remediations.map((r) => `${r.generation} ${r.reason} ${r.level}`)).toHaveLength(1);
    expect(await lifecycleUntil(t, name, 'JobSucceeded')).toEqual(
      expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]),
    );

    // Every rank of the recovered run printed the same final line, and it is the reference's.
    const logs = await Promise.all(pods.map((p) => podLog(t, p)));
    expect(logs[0]).toMatch(/Resuming from checkpoint step (5|10|15|20|25)\b/);
    const recovered = finals(logs.join('\n'));
    const ref = await reference;
    expect(ref.code).toBe(0);
    const expected = finals(ref.out);
    expect(expected.size).toBe(1);
    expect([...expected][0]).toMatch(new RegExp(`^final step=${STEPS} params_sha256=[0-9a-f]{64}$`));
    expect(recovered).toEqual(expected);

    // cleanPodPolicy None left the pods: delete them, then nothing of the job may survive.
    await deleteJobPods(t, name);
    await expectNothingLeft(t, name);
  }, 240_000);
});
