/**
 * `trainkeeper rules check --log` over what users download from CloudWatch, through the real command: the
 * same log as `kubectl logs --timestamps` output (test/fixtures/logs/), as `aws logs filter-log-events
 * --output json` prints it and as Fluent Bit JSON lines (test/fixtures/saved-logs/; the formats' sources
 * are named in test/rules/log-formats.test.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RULES_CHECK_LOG_FORMATS } from '../../cli/commands/rules.ts';
import { LOG_FORMATS } from '../../rules/log-formats.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(root, 'test/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'tk-rules-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

const job = join(dir, 'job.yaml');
writeFileSync(
  job,
  `apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata:
  name: gpt
spec:
  nprocPerNode: "8"
  runPolicy:
    logMonitoringConfiguration:
      - name: TrainingHang
        logPattern: '.*iteration\\s+(\\d+)/'
        expectedStartCutOffInSeconds: 120
        expectedRecurringFrequencyInSeconds: 300
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

const check = async (log: string, extra: string[] = []) => {
  const res = await trainkeeper(['rules', 'check', '--job', job, '--log', log, '-o', 'json', ...extra]);
  const findings =
    res.stdout.trim() === ''
      ? []
      : res.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...res, findings };
};
const withoutStream = (findings: Record<string, unknown>[]) => findings.map(({ stream: _, ...f }) => f);

describe('rules check --log in the CloudWatch formats', () => {
  it('finds the same as for the kubectl file, line numbers being event positions, streams named by the pod', async () => {
    const kubectl = await check(join(fixtures, 'logs/nccl-watchdog-timeout.log'));
    const cloudwatch = await check(join(fixtures, 'saved-logs/nccl-watchdog-timeout.cloudwatch.json'));
    const fluentBit = await check(join(fixtures, 'saved-logs/nccl-watchdog-timeout.fluent-bit.jsonl'));
    expect([kubectl.code, cloudwatch.code, fluentBit.code]).toEqual([3, 3, 3]);
    expect(kubectl.findings.map((f) => [f.rule, f.lineNumber])).toEqual([
      ['TrainingHang', 24],
      ['preset.nccl.watchdog-timeout', 24],
    ]);
    expect(withoutStream(cloudwatch.findings)).toEqual(withoutStream(kubectl.findings));
    expect(withoutStream(fluentBit.findings)).toEqual(withoutStream(kubectl.findings));
    expect(kubectl.findings.map((f) => f.stream)).toEqual(['job', 'nccl-watchdog-timeout.log/1']);
    expect(cloudwatch.findings.map((f) => f.stream)).toEqual(['job', 'gpt-pods-1-g0/1']);
    expect(fluentBit.findings.map((f) => f.stream)).toEqual(['job', 'gpt-pods-1-g0/1']);
  });

  it('reads the format from --format as well, and stdin', async () => {
    const file = join(fixtures, 'saved-logs/nccl-watchdog-timeout.fluent-bit.jsonl');
    const named = await check(file, ['--format', 'fluent-bit']);
    expect(named.findings).toHaveLength(2);
    const piped = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(root, 'bin/trainkeeper.js'), 'rules', 'check', '--job', job, '--log', '-', '-o', 'json'],
        { cwd: root },
        (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
      );
      child.stdin?.end(readFileSync(file));
    });
    expect(piped.code).toBe(3);
    expect(piped.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('counts and skips malformed records with a warning naming each, and still finds what the good lines show', async () => {
    const lines = readFileSync(
      join(fixtures, 'saved-logs/nccl-watchdog-timeout.fluent-bit.jsonl'),
      'utf8',
    ).split('\n');
    lines[2] = (lines[2] as string).slice(0, 40); // truncated, as Fluent Bit's output plugin cuts records
    lines[4] = '{"log": 42}';
    const file = join(dir, 'damaged.jsonl');
    writeFileSync(file, lines.join('\n'));
    const res = await check(file);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/warning: line 3: not a JSON record/);
    expect(res.stderr).toMatch(/warning: line 5: not a Fluent Bit record: log/);
    expect(res.stderr).toMatch(/warning: 2 malformed record\(s\) skipped \(read as fluent-bit\)/);
    expect(res.findings.map((f) => [f.rule, f.lineNumber])).toEqual([
      ['TrainingHang', 24],
      ['preset.nccl.watchdog-timeout', 24],
    ]);
  });

  it('exits 1 with a clear error for a file that is not what --format says, or a download with no events', async () => {
    const wrong = await check(join(fixtures, 'logs/nccl-watchdog-timeout.log'), [
      '--format',
      'cloudwatch-json',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/not the JSON of aws logs filter-log-events.*--format/);
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '{"events": [], "searchedLogStreams": []}');
    const none = await check(empty);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no usable cloudwatch-json line/);
    expect((await check(empty, ['--format', 'syslog'])).code).toBe(2);
  });

  it('offers exactly the formats the parser reads', () => {
    expect([...RULES_CHECK_LOG_FORMATS]).toEqual([...LOG_FORMATS]);
  });
});
