import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(root, 'test/fixtures/logs');
const dir = mkdtempSync(join(tmpdir(), 'tk-rules-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real `trainkeeper` command; resolves with exit code, stdout and stderr. */
function trainkeeper(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'bin/trainkeeper.js'), ...args],
      { cwd: root },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const manifest = (rules: string, extra = ''): string => {
  const file = join(dir, `job-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata:
  name: gpt
spec:
  nprocPerNode: "8"
${extra}  runPolicy:
    logMonitoringConfiguration:
${rules}
  replicaSpecs:
    - name: pods
      replicas: 2
      template:
        spec:
          containers:
            - name: pytorch
              image: trainer:1
`,
  );
  return file;
};

const hangRule = `      - name: TrainingHang
        logPattern: '.*iteration\\s+(\\d+)/'
        expectedStartCutOffInSeconds: 120
        expectedRecurringFrequencyInSeconds: 300`;

describe('trainkeeper rules check', () => {
  it('prints one JSON object per finding, reports a silence at the line where its deadline passed, and exits 3', async () => {
    const job = manifest(hangRule);
    const { code, stdout } = await trainkeeper([
      'rules',
      'check',
      '--job',
      job,
      '--log',
      join(fixtures, 'nccl-watchdog-timeout.log'),
      '--output',
      'json',
    ]);
    expect(code).toBe(3);
    const findings = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(findings.map((f) => [f.rule, f.verdict, f.reason, f.stream, f.rank, f.at, f.lineNumber])).toEqual([
      ['TrainingHang', 'HANGING', 'LogHang_TrainingHang', 'job', null, '2026-03-02T09:20:31.934Z', 24],
      [
        'preset.nccl.watchdog-timeout',
        'FAULTED',
        'LogFault_preset.nccl.watchdog-timeout',
        'nccl-watchdog-timeout.log/1',
        1,
        '2026-03-02T09:25:31.971Z',
        24,
      ],
    ]);
    expect(Object.keys(findings[0])).toEqual([
      'rule',
      'verdict',
      'reason',
      'stream',
      'rank',
      'at',
      'lineNumber',
      'text',
      'value',
    ]);
    expect(findings[1].text).toMatch(/^\[rank1\]:.*Watchdog caught collective operation timeout/);
  });

  it('exits 0 with no output for a clean log', async () => {
    const { code, stdout } = await trainkeeper([
      'rules',
      'check',
      '--job',
      manifest(hangRule),
      '--log',
      join(fixtures, 'clean.log'),
      '-o',
      'json',
    ]);
    expect([code, stdout]).toEqual([0, '']);
  });

  it('--no-presets runs only the manifest rules; presets can also be narrowed in the manifest', async () => {
    const job = manifest(hangRule);
    const oom = join(fixtures, 'oom.log');
    expect((await trainkeeper(['rules', 'check', '--job', job, '--log', oom, '--no-presets'])).code).toBe(0);
    const onlyNccl = manifest(hangRule, '  trainkeeper:\n    presets: [nccl]\n');
    expect((await trainkeeper(['rules', 'check', '--job', onlyNccl, '--log', oom])).code).toBe(0);
    const withOom = await trainkeeper(['rules', 'check', '--job', job, '--log', oom]);
    expect(withOom.code).toBe(3);
    expect(withOom.stdout).toMatch(
      /^line 19 {2}FAULTED {2}LogFault_preset\.oom\.cuda-oom {2}stream oom\.log\/0 \(rank 0\)/,
    );
  });

  it('reports a loss spike as SLOW with the captured value after consecutive data points', async () => {
    const log = join(dir, 'loss.log');
    const losses = [2.1, 2.0, 5.5, 6.1, 1.9, 7.2, 7.4, 7.9];
    writeFileSync(
      log,
      losses
        .map(
          (l, i) =>
            `2026-03-09T10:00:${String(10 + i).padStart(2, '0')}.000000000Z [default3]:step ${i} training_loss_step ${l}`,
        )
        .join('\n'),
    );
    const job = manifest(`      - name: LossSpike
        logPattern: '.*training_loss_step (\\d+(?:\\.\\d+)?).*'
        metricThreshold: 4.5
        operator: gt
        metricEvaluationDataPoints: 3`);
    const { code, stdout } = await trainkeeper([
      'rules',
      'check',
      '--job',
      job,
      '--log',
      log,
      '--no-presets',
      '-o',
      'json',
    ]);
    expect(code).toBe(3);
    const f = JSON.parse(stdout);
    expect([f.verdict, f.reason, f.stream, f.rank, f.lineNumber, f.value]).toEqual([
      'SLOW',
      'LogSlow_LossSpike',
      'loss.log/3',
      3,
      8,
      7.9,
    ]);
  });

  it('exits 1 with field paths for an invalid manifest', async () => {
    const job = manifest(`      - name: Bad
        logPattern: '(a+)\\1+'`);
    const { code, stderr } = await trainkeeper([
      'rules',
      'check',
      '--job',
      job,
      '--log',
      join(fixtures, 'clean.log'),
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/logMonitoringConfiguration\[0\]\.logPattern/);
  });

  it('exits 1 for a log without timestamps and 2 for a missing option', async () => {
    const log = join(dir, 'plain.log');
    writeFileSync(log, 'iteration 1/ 10\niteration 2/ 10\n');
    const plain = await trainkeeper(['rules', 'check', '--job', manifest(hangRule), '--log', log]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/kubectl logs --timestamps/);
    expect((await trainkeeper(['rules', 'check', '--job', manifest(hangRule)])).code).toBe(2);
  });
});
