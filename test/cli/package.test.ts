/**
 * THE PACKAGE TEST (issue 18): what a user gets from `npm pack` → `npm install <tarball>` in an empty folder.
 *
 * It packs this checkout (`prepack` runs `npm run build`), installs the tarball into a new temporary
 * project with npm (dependencies from npm's cache when it has them: `--prefer-offline`), and runs the
 * installed `node_modules/.bin/` executables there — no tsx, no TypeScript, no checkout on the path:
 * `--version`, `--help`, `validate`, `rules check`, `completion`, the agent's `--help`, and `local up`
 * (starts, serves a submitted job's `logs`, stops on SIGTERM leaving no process). The start-up time of
 * `trainkeeper --version` is measured in docs/benchmarks.md, not asserted here.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '../../core/api/documents.ts';
import { descendantsOf } from '../../local/kube/kubelet.ts';
import { cleanEnv, demoManifest, isAlive, killTree, ROOT, type Run } from './run.ts';

const work = mkdtempSync(join(tmpdir(), 'tk-package-'));
const project = join(work, 'project');
const bin = (name: string) => join(project, 'node_modules', '.bin', name);
const installed = join(project, 'node_modules', 'trainkeeper');
let up: ChildProcess | undefined;

beforeAll(() => {
  // `prepack` builds dist/ first; its output and npm's go to the test log only on failure.
  execFileSync('npm', ['pack', '--pack-destination', work], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')) as string);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{ "name": "tk-package-test", "private": true }\n');
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: project,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}, 600_000);

afterAll(() => {
  killTree(up?.pid);
  rmSync(work, { recursive: true, force: true });
  // the installed project holds the package's whole dependency tree: removing it took over the default
  // 60 s hook timeout on the shared machine at load ~29
}, 300_000);

/** Runs an installed executable in the temporary project, as a user's shell would (through its shebang). */
function run(name: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin(name), args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the installed package', () => {
  it('holds compiled JavaScript only: bins point into dist/, no TypeScript source, tsx not installed', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
      dependencies: Record<string, string>;
    };
    expect(Object.values(manifest.bin).every((p) => p.startsWith('dist/') && p.endsWith('.mjs'))).toBe(true);
    expect(manifest.dependencies.tsx).toBeUndefined();
    expect(existsSync(join(project, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(installed, 'cli'))).toBe(false);
    expect(existsSync(join(installed, 'dist', 'trainkeeper.mjs'))).toBe(true);
  });

  it('prints the version and the command tree', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await run('trainkeeper', ['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    const help = await run('trainkeeper', ['--help']);
    expect(help.code).toBe(0);
    for (const command of ['validate', 'rules', 'submit', 'describe', 'logs', 'local', 'completion']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });

  it('validates the shipped example manifest and checks its rules on a log', async () => {
    const manifest = join(installed, 'examples', 'jobs', 'demo.yaml');
    const valid = await run('trainkeeper', ['validate', manifest]);
    expect(valid).toMatchObject({ code: 0, stderr: '' });
    expect(valid.stdout).toMatch(/^job default\/demo-llama is valid\n/);

    const log = join(work, 'pod.log');
    writeFileSync(
      log,
      [
        '2025-01-01T00:00:00.000Z [default0]: step 1 loss 2.0',
        '2025-01-01T00:00:01.000Z [default1]: [E ProcessGroupNCCL.cpp:1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1)',
        '',
      ].join('\n'),
    );
    const check = await run('trainkeeper', ['rules', 'check', '--job', manifest, '--log', log, '-o', 'json']);
    expect(check.code).toBe(3);
    const findings = check.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { verdict: string; rank: number; lineNumber: number });
    expect(findings).toContainEqual(expect.objectContaining({ verdict: 'FAULTED', rank: 1, lineNumber: 2 }));
  });

  it('prints a bash and a zsh completion script', async () => {
    const bash = await run('trainkeeper', ['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('complete -F');
    const zsh = await run('trainkeeper', ['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef trainkeeper/);
  });

  it('runs the agent and its hyperpodrun alias', async () => {
    for (const name of ['trainkeeper-agent', 'hyperpodrun']) {
      const help = await run(name, ['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^usage: trainkeeper-agent /);
    }
  });

  it('starts the local control plane, runs a job with its logs, and stops leaving no process', async () => {
    const dataDir = join(work, 'data');
    up = spawn(bin('trainkeeper'), ['local', 'up', '--nodes', '1', '--data-dir', dataDir], {
      cwd: project,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    up.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    up.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const exited = new Promise<number | null>((resolve) => up?.once('exit', (code) => resolve(code)));
    const started = Date.now();
    while (!/^export TRAINKEEPER_ENDPOINT=\S+$/m.test(out)) {
      if (!isAlive(up.pid as number) || Date.now() - started > 120_000)
        throw new Error(`local up did not start:\n${out}\n${err}`);
      await sleep(100);
    }
    const endpoint = out.match(/^export TRAINKEEPER_ENDPOINT=(\S+)$/m)?.[1] as string;
    const env = cleanEnv({ TRAINKEEPER_ENDPOINT: endpoint });

    const file = join(work, 'pkg-job.yaml');
    writeFileSync(
      file,
      demoManifest({
        name: 'pkg-job',
        checkpointDir: join(work, 'ckpt'),
        steps: 100_000,
        replicas: 1,
        nprocPerNode: 1,
      }),
    );
    expect(await run('trainkeeper', ['submit', file], env)).toMatchObject({ code: 0 });
    const deadline = Date.now() + 90_000;
    let logs: Run = { code: null, stdout: '', stderr: '' };
    for (;;) {
      const doc = (await (await fetch(`${endpoint}/jobs/default/pkg-job`)).json()) as JobDocument;
      if (doc.status.phase === 'Running') {
        logs = await run('trainkeeper', ['logs', 'pkg-job', '--rank', '0'], env);
        if (/ \[rank 0\] .*step \d+/m.test(logs.stdout)) break;
      }
      if (Date.now() > deadline)
        throw new Error(`no training lines: ${JSON.stringify(doc.status)} ${logs.stdout}`);
      await sleep(500);
    }
    expect(logs).toMatchObject({ code: 0, stderr: '' });
    const children = descendantsOf(up.pid as number);

    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toContain('stopped\n');
    expect(existsSync(join(dataDir, 'local.json'))).toBe(false);
    const gone = Date.now() + 5_000;
    while (children.some(isAlive) && Date.now() < gone) await sleep(100);
    expect(children.filter(isAlive)).toEqual([]);
  }, 300_000);
});
