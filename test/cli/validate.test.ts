import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseJobManifest } from '../../core/spec/parse.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string) => `test/fixtures/manifests/${name}`;

/** Runs the real `trainkeeper` executable as a child process. */
function trainkeeper(args: string[], input?: string) {
  const run = spawnSync(process.execPath, ['bin/trainkeeper.js', ...args], {
    cwd: root,
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('trainkeeper validate', () => {
  it('prints the normalized spec as JSON and exits 0 for a valid manifest with --output json', () => {
    const run = trainkeeper(['validate', fixture('p5-16-nodes-log-rules.yaml'), '--output', 'json']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const expected = parseJobManifest(
      readFileSync(`${root}${fixture('p5-16-nodes-log-rules.yaml')}`, 'utf8'),
    );
    expect(expected.ok && JSON.parse(run.stdout)).toEqual(expected.ok && expected.spec);
  });

  it('prints a short summary by default', () => {
    const run = trainkeeper(['validate', fixture('kueue-spares.yaml')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        'job hyperpod-ns-team-a/team-a-pretrain is valid',
        'replicas: 4 + 2 spare (workers: 4 + 2 spare), nprocPerNode auto',
        'rules: none; presets: nccl, cuda, oom, xid, checkpoint, agent',
        'warnings: 0',
        '',
      ].join('\n'),
    );
  });

  it('reads the manifest from stdin when the file is -, and prints YAML with --output yaml', () => {
    const text = readFileSync(`${root}${fixture('minimal.json')}`, 'utf8');
    const run = trainkeeper(['validate', '-', '-o', 'yaml'], text);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('name: json-job\n');
    expect(run.stdout).toContain('faultOnMatch: true\n');
  });

  it('exits 1 with one path: message line per error on stderr for the invalid fixture', () => {
    const run = trainkeeper(['validate', fixture('invalid-many-errors.yaml')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    const errors = lines.filter((l) => !l.startsWith('warning: '));
    expect(errors).toHaveLength(20);
    expect(errors).toContain(
      'spec.runPolicy.logMonitoringConfiguration[0].expectedStartCutoffInSeconds: unknown field; did you mean `expectedStartCutOffInSeconds`?',
    );
    expect(lines.filter((l) => l.startsWith('warning: ')).length).toBeGreaterThan(0);
  });

  it('prints warnings as warning: path: message and still exits 0', () => {
    const text = readFileSync(`${root}${fixture('minimal.json')}`, 'utf8').replace(
      '"replicas": 2,',
      '"replicas": 2, "maxReplicas": 4,',
    );
    const run = trainkeeper(['validate', '-'], text);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(
      'warning: spec.replicaSpecs[0].maxReplicas: accepted but not acted on: it bounds elastic scaling only, and the job has no spec.elasticPolicy\n',
    );
    expect(run.stdout).toContain('warnings: 1');
  });

  it('prints no warning for an elastic job: spec.elasticPolicy and replicaSpecs[].maxReplicas are acted on', () => {
    const text = readFileSync(`${root}${fixture('minimal.json')}`, 'utf8')
      .replace('"replicas": 2,', '"replicas": 2, "maxReplicas": 4,')
      .replace('"spec": {', '"spec": { "elasticPolicy": { "minReplicas": 2, "maxReplicas": 4 },');
    const run = trainkeeper(['validate', '-'], text);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('warnings: 0');
  });

  it('checks pod security when asked and exits 1 with the template paths', () => {
    const run = trainkeeper(['validate', fixture('fsdp-hyperpodrun.yaml'), '--pod-security', 'baseline']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'spec.replicaSpecs[0].template.spec.containers[0].securityContext.capabilities.add[0]: capability `IPC_LOCK` is beyond the baseline set\n',
    );
  });

  it('exits 1 with a clear line for a file that does not exist', () => {
    const run = trainkeeper(['validate', 'no/such/manifest.yaml']);
    expect(run).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'error: no such file: no/such/manifest.yaml\n',
    });
  });

  it.each([
    ['a missing file argument', ['validate']],
    ['an unknown output format', ['validate', '-', '--output', 'xml']],
    ['an unknown command', ['bogus']],
    ['an unknown option', ['validate', '-', '--strict']],
  ])('exits 2 for %s', (_what, args) => {
    const run = trainkeeper(args, '');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: /);
  });
});

describe('trainkeeper', () => {
  it('prints the package version with --version', () => {
    const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };
    expect(trainkeeper(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
    // answered by cli/entry.ts before the command tree loads; with other arguments, by commander
    expect(trainkeeper(['-V'])).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect(trainkeeper(['--version', '--help'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('lists the validate command in --help and exits 0', () => {
    const run = trainkeeper(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: trainkeeper/);
    expect(run.stdout).toContain('validate [options] <file>');
  });
});
