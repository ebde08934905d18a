/**
 * The in-process restart tier (issue 19) end to end on the local plane, with real PyTorch (gloo, CPU): a
 * 2-pod × 2-worker DDP job that opted in (`spec.trainkeeper.inProcessRestart`, agents started with
 * `--inprocess-restart`) loses one worker mid-run; the control plane restarts at level `inprocess`, the
 * agents replace only the dead worker, the survivors keep their processes, and the job ends with exactly
 * the parameters of an uninterrupted run.
 */
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

warnWithoutTorch('the end-to-end in-process restart scenario');

const e2e = useControlPlane();
const STEPS = 30;
const TRAINER = 'examples/trainers/inprocess_trainer.py';
const TRAINER_ARGS = [`--steps=${STEPS}`, '--checkpoint-every=5', '--step-time=0.3'];
const refDir = mkdtempSync(join(tmpdir(), 'trainkeeper-inprocess-ref-'));
afterAll(() => rmSync(refDir, { recursive: true, force: true }));

/** The PIDs global rank `rank` printed on each entry of the training function (`starting: … pid=N`), in order. */
const entryPids = (log: string, rank: number): number[] =>
  [...log.matchAll(new RegExp(`\\[rank ${rank}\\] starting: .*\\bpid=(\\d+)`, 'g'))].map((m) => Number(m[1]));

describe.skipIf(!hasTorch)(
  'in-process restart of real PyTorch DDP (gloo, CPU) under the control plane',
  () => {
    it('recovers a crashed rank at level inprocess: survivors keep their processes, parameters match an uninterrupted run', async () => {
      const t = e2e();
      const name = 'ddp-inprocess';
      const reference = runReference(TRAINER, [...TRAINER_ARGS, `--checkpoint-dir=${refDir}`]);
      const manifest = jobManifest(t.plane, {
        name,
        // Pods stay after success (cleanPodPolicy None) so their logs can be read through the Kubernetes API.
        runPolicy: { cleanPodPolicy: 'None' },
        trainkeeper: { inProcessRestart: true },
        command: [
          'hyperpodrun',
          '--nproc-per-node=2',
          '--inprocess-restart',
          '--inprocess-timeout=60',
          '--shutdown-signal=SIGTERM',
          '--shutdown-timeout=5',
          '--python',
          TORCH_PY,
          TRAINER,
          ...TRAINER_ARGS,
          `--checkpoint-dir=${checkpointDir(t, name)}`,
        ],
      });
      const submitted = await t.submit(manifest);
      expect(submitted.status).toBe(201);
      const before = await t.waitFor(
        name,
        'DDP training under way',
        (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= 4,
        120_000,
      );
      const pods = rankPods(before).map((p) => p.name);

      // Global rank 1 = local rank 1 of the rank-0 pod.
      await t.chaos(name, 'crash', { rank: 1, exitCode: 3 });
      const after = await t.waitFor(
        name,
        'a recovered restart',
        (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
        120_000,
      );
      const [remediation] = after.status.remediations;
      expect(remediation).toMatchObject({ level: 'inprocess', generation: before.status.generation + 1 });
      // The agent's crash report, or the cuda preset on the trainer's "CUDA error" line, whichever came first.
      expect(remediation!.reason).toMatch(/^(WorkerCrash|LogFault_preset\.cuda\.)/);
      expect(rankPods(after).map((p) => p.name)).toEqual(pods);
      console.log(
        `in-process restart: detected in ${remediation!.detectionLatencyMs} ms, recovered in ${remediation!.restartLatencyMs} ms`,
      );

      const done = await t.waitFor(name, 'success', (j) => j.status.phase === 'Succeeded', 180_000);
      // One restart, in place: no escalation to process level, no other fault.
      expect(done.status.remediations.map((r) => [r.generation, r.level])).toEqual([
        [before.status.generation + 1, 'inprocess'],
      ]);
      expect(done.status.processRestartCount).toBe(1);
      const lifecycle = await lifecycleUntil(t, name, 'JobSucceeded');
      expect(lifecycle).toEqual(expect.arrayContaining([...RECOVERED_AND_SUCCEEDED]));

      // Survivors entered the training function twice in the same process; rank 1 is a new process.
      const log = (await Promise.all(pods.map((p) => podLog(t, p)))).join('\n');
      for (const rank of [0, 2, 3]) {
        const pids = entryPids(log, rank);
        expect(pids, `rank ${rank} entries`).toHaveLength(2);
        expect(new Set(pids).size, `rank ${rank} PIDs`).toBe(1);
      }
      const crashed = entryPids(log, 1);
      expect(crashed).toHaveLength(2);
      expect(new Set(crashed).size).toBe(2);
      // Only the replacement read a checkpoint (and was then given the survivors' state); the survivors kept theirs.
      const resumed = [...log.matchAll(/\[rank (\d+)\] Resuming from checkpoint/g)].map((m) => Number(m[1]));
      expect(resumed.every((rank) => rank === 1)).toBe(true);

      // Every rank printed the same final line, and it is the uninterrupted run's.
      const ref = await reference;
      expect(ref.code).toBe(0);
      const expected = finals(ref.out);
      expect(expected.size).toBe(1);
      expect([...expected][0]).toMatch(new RegExp(`^final step=${STEPS} params_sha256=[0-9a-f]{64}$`));
      expect(finals(log)).toEqual(expected);

      // cleanPodPolicy None left the pods: delete them, then nothing of the job may survive.
      await deleteJobPods(t, name);
      await expectNothingLeft(t, name);
    }, 360_000);
  },
);
