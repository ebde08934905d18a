/**
 * The job commands as a user runs them: every command is the real `trainkeeper` executable in a child
 * process, against one real local control plane (dynalite, local Kubernetes API, kubelet running the
 * simulated trainer under `trainkeeper-agent`, log shipper, sweep) started in this process for the file.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '../../core/api/documents.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane.ts';
import { cleanEnv, closedPort, demoManifest, type Run, trainkeeper } from './run.ts';

let plane: LocalControlPlane;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tk-cli-jobs-'));
  plane = await startLocalControlPlane({ nodes: 4, dataDir: join(work, 'plane') });
  env = cleanEnv({ TRAINKEEPER_ENDPOINT: plane.apiUrl });
}, 120_000);

afterAll(async () => {
  await plane?.stop();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

const cli = (args: string[], options: Parameters<typeof trainkeeper>[1] = {}) =>
  trainkeeper(args, { env, ...options });

async function jobDoc(name: string): Promise<JobDocument> {
  const res = await fetch(`${plane.apiUrl}/jobs/default/${name}`);
  if (!res.ok) throw new Error(`GET ${name}: ${res.status}`);
  return (await res.json()) as JobDocument;
}

/** Polls the API (not the CLI: a CLI start costs seconds on a busy machine) until `ready` holds. */
async function waitForJob(name: string, ready: (job: JobDocument) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: JobDocument | undefined;
  while (Date.now() < deadline) {
    last = await jobDoc(name).catch(() => undefined);
    if (last && ready(last)) return last;
    await sleep(250);
  }
  throw new Error(`job ${name} not ready in time; last: ${JSON.stringify(last?.status)}`);
}

const lines = (run: Run) => run.stdout.split('\n');

// Generous timeouts: on a shared 2-core machine one CLI start can take many seconds of wall time.
describe.concurrent('trainkeeper job commands: errors a user meets', { timeout: 120_000 }, () => {
  it.each([
    ['a malformed JOB argument', ['describe', 'a/b/c']],
    ['an unknown chaos fault', ['local', 'chaos', 'meteor', '--job', 'x']],
  ])('exits 2 with the usage hint for %s', async (_, args) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('(run with --help for usage)');
  });

  it('exits 1 and says how to configure an endpoint when none is configured', async () => {
    const cwd = mkdtempSync(join(work, 'no-endpoint-'));
    const run = await trainkeeper(['list'], { env: cleanEnv(), cwd });
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: no endpoint configured: pass --endpoint, set TRAINKEEPER_ENDPOINT or deploy with sst\n',
    });
  });

  it('finds the endpoint in .sst/outputs.json of the current directory', async () => {
    const cwd = mkdtempSync(join(work, 'sst-'));
    mkdirSync(join(cwd, '.sst'));
    writeFileSync(join(cwd, '.sst', 'outputs.json'), JSON.stringify({ ApiUrl: plane.apiUrl }));
    const run = await trainkeeper(['list', '-n', 'nobody-here'], { env: cleanEnv(), cwd });
    expect(run).toEqual({ code: 0, stdout: '', stderr: 'No jobs found in namespace nobody-here.\n' });
  });

  it('exits 1 with "connection refused" when the server is down', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const run = await cli(['get', 'demo', '--endpoint', endpoint]);
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: cannot reach ${endpoint}: connection refused\n`,
    });
  });

  it.each([
    [['describe', 'nope'], 'error: no job default/nope\n'],
    [['cancel', 'nope', '-n', 'team-y'], 'error: no job team-y/nope\n'],
  ])('exits 1 with a clear message for an unknown job (%j)', async (args, stderr) => {
    expect(await cli(args)).toEqual({ code: 1, stdout: '', stderr });
  });

  it('rejects an invalid manifest locally with one path: message line per error, as validate does, and exits 1', async () => {
    const run = await cli(['submit', 'test/fixtures/manifests/invalid-many-errors.yaml']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const errors = run.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('warning: '));
    expect(errors).toHaveLength(20);
    expect(errors).toContain(
      'spec.runPolicy.logMonitoringConfiguration[0].expectedStartCutoffInSeconds: unknown field; did you mean `expectedStartCutOffInSeconds`?',
    );
  });

  it('exits 1 naming local.json when no local control plane runs from the data directory', async () => {
    const dir = mkdtempSync(join(work, 'no-plane-'));
    const run = await cli(['local', 'chaos', 'crash', '--job', 'x', '--data-dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `error: no local control plane found: ${join(dir, 'local.json')} does not exist`,
    );
  });

  it('prints the version in-process', async () => {
    const { main } = await import('../../cli/main.ts');
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => {
      out += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      expect(await main(['--version'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it.each([
    'submit',
    'list',
    'get',
    'describe',
    'events',
    'cancel',
    'restart',
    'rules set',
    'local up',
    'local chaos',
  ])('prints help with an example for %s (in-process: help needs no server)', async (command) => {
    const { main } = await import('../../cli/main.ts');
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => {
      out += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      expect(await main([...command.split(' '), '--help'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(out).toMatch(new RegExp(`^Usage: trainkeeper ${command}[ |]`));
    expect(out).toMatch(new RegExp(`Examples:\n {2}\\$ trainkeeper ${command}\\b`));
  });
});

describe('trainkeeper job commands: a job that really runs', { timeout: 180_000 }, () => {
  let longFile: string;
  let shortFile: string;
  let watchLong: Promise<Run>;
  let followLong: Promise<Run>;

  beforeAll(() => {
    longFile = join(work, 'cli-long.yaml');
    shortFile = join(work, 'cli-short.yaml');
    writeFileSync(
      longFile,
      demoManifest({
        name: 'cli-long',
        checkpointDir: join(work, 'ckpt-long'),
        steps: 100_000,
        // Few log lines (2 ranks, 1 step/s): every pod's stream is its own parallel delivery to the logs
        // handler, and on a loaded machine more of them only add write races on the job's record.
        stepTime: 1,
        nprocPerNode: 1,
        spares: 1,
      }),
    );
    writeFileSync(
      shortFile,
      demoManifest({
        name: 'cli-short',
        checkpointDir: join(work, 'ckpt-short'),
        steps: 30,
        stepTime: 0.05,
        replicas: 1,
        nprocPerNode: 1,
      }),
    );
  });

  it('submits a manifest and says so with the job’s uid', async () => {
    const first = await cli(['submit', longFile]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^job default\/cli-long submitted \(uid [0-9a-f-]{36}\)\n$/);
    // A resubmit of the same file is the same job (idempotency key = content hash); it also watches the
    // job, so it must end with exit 1 once the job is cancelled at the end of this file.
    watchLong = cli(['submit', longFile, '--watch'], { timeoutMs: 240_000 });
    followLong = cli(['events', 'cli-long', '--follow', '-o', 'json'], { timeoutMs: 240_000 });
  });

  it('follows a short job with submit --watch as appended lines and exits 0 when it Succeeded', async () => {
    const run = await cli(['submit', shortFile, '--watch'], { timeoutMs: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = lines(run);
    expect(out[0]).toMatch(/^job default\/cli-short submitted/);
    expect(
      out.some((l) => /^\S+Z {2}Normal {3}Created {2}Job default\/cli-short submitted by local$/.test(l)),
    ).toBe(true);
    expect(out).toContainEqual(
      expect.stringMatching(
        /^default\/cli-short: Succeeded, phase Succeeded, generation 0, ranks running 0\/1(, step \d+)?, restarts 0$/,
      ),
    );
    expect(out.at(-2)).toBe('job default/cli-short Succeeded');
    // Plain appended lines, never a carriage return or an escape sequence, when stdout is not a TTY.
    expect(run.stdout).not.toMatch(/[\r\x1b]/);
  });

  it('shows the running job in get, list and describe', async () => {
    await waitForJob(
      'cli-long',
      (j) => j.status.phase === 'Running' && j.status.progress?.step !== undefined,
    );
    const [get, list, describe, json] = await Promise.all([
      cli(['get', 'cli-long']),
      cli(['list', '-A']),
      cli(['describe', 'default/cli-long']),
      cli(['get', 'cli-long', '-o', 'json']),
    ]);
    expect(get.code).toBe(0);
    expect(lines(get)[0]).toBe('NAME      STATUS   PHASE    GEN  RESTARTS  STEP  AGE');
    expect(lines(get)[1]).toMatch(/^cli-long {2}Running {2}Running {2}0 {4}0 +\d+ +\d+[smh]\S*$/);
    expect(list.stdout).toMatch(/^NAMESPACE +NAME +STATUS/);
    expect(list.stdout).toMatch(/\ndefault +cli-long +Running +Running /);
    expect(describe.code).toBe(0);
    expect(describe.stdout).toMatch(/^Status: +Running$/m);
    expect(describe.stdout).toMatch(/^Phase: +Running$/m);
    expect(describe.stdout).toMatch(/process restarts +20 of 20/);
    expect(describe.stdout).toMatch(/cli-long-pods-0-g0 +0 +Running +node-\d +\S+ +RUNNING/);
    expect(describe.stdout).toMatch(/cli-long-pods-2-g0 +spare +Running +node-\d/);
    expect(describe.stdout).toMatch(/Faults and recoveries:\n {2}none/);
    const doc = JSON.parse(json.stdout) as JobDocument;
    expect(doc).toMatchObject({
      kind: 'HyperPodPyTorchJob',
      metadata: { name: 'cli-long', namespace: 'default' },
      status: { phase: 'Running' },
    });
  });

  it('injects a crash with local chaos, after which describe shows the remediation and events the timeline', async () => {
    const chaos = await cli([
      'local',
      'chaos',
      'crash',
      '--job',
      'cli-long',
      '--rank',
      '1',
      '--data-dir',
      plane.dataDir,
    ]);
    expect(chaos.stderr).toBe('');
    expect(chaos.code).toBe(0);
    expect(chaos.stdout).toMatch(/^injected crash into rank 1 of default\/cli-long at \S+Z\n$/);
    await waitForJob(
      'cli-long',
      (j) => j.status.remediations.some((r) => r.reason === 'WorkerCrash'),
      90_000,
    );
    const [describe, events] = await Promise.all([
      cli(['describe', 'cli-long']),
      cli(['events', 'cli-long']),
    ]);
    expect(describe.stdout).toMatch(/Faults and recoveries:\n {2}GEN +LEVEL +REASON/);
    expect(describe.stdout).toMatch(
      /\n {2}1 +process +WorkerCrash +\S+Z +\d+(\.\d)?m?s +(\d+(\.\d)?m?s|recovering) /,
    );
    expect(describe.stdout).toMatch(/^Restarts: +[1-9]\d* total/m);
    expect(events.code).toBe(0);
    expect(lines(events)[0]).toMatch(/^TIME +TYPE +REASON +GEN +MESSAGE$/);
    expect(events.stdout).toMatch(/Warning +WorkerCrash +1 +.*exited with (exit )?code 1/);
    expect(events.stdout).toMatch(/Normal +Restarting +1 +Restarting at process level/);
  });

  it('requests a process-level restart and says so', async () => {
    const run = await cli(['restart', 'cli-long']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^job default\/cli-long: process-level restart requested \(phase \w+, generation [2-9]\d*\)\n$/,
    );
  });

  it('replaces the rules of the job from a manifest, and rejects bad rules with their field paths', async () => {
    const bad = join(work, 'bad-rules.yaml');
    writeFileSync(bad, '- name: Loss\n  logPattern: ".*Loss: (\\\\d+).*"\n  operator: bogus\n');
    const [good, rejected] = await Promise.all([
      cli(['rules', 'set', 'cli-long', '--file', longFile]),
      cli(['rules', 'set', 'cli-long', '--file', bad]),
    ]);
    expect(good).toEqual({
      code: 0,
      stdout: 'rules of job default/cli-long set: JobStart, LossSpike, LowThroughput, TrainingStep\n',
      stderr: '',
    });
    expect(rejected.code).toBe(1);
    expect(rejected.stderr.split('\n')).toContain(
      'rules[0].operator: must be one of `gt`, `gteq`, `lt`, `lteq`, `eq`, not the string "bogus"',
    );
  });

  it('cancels the job: cancel says so and the resubmit that watched it exits 1 with Cancelled', async () => {
    const cancel = await cli(['cancel', 'cli-long']);
    expect(cancel).toEqual({ code: 0, stdout: 'job default/cli-long cancelled\n', stderr: '' });
    const watched = await watchLong;
    expect(watched.code).toBe(1);
    expect(lines(watched)[0]).toBe(
      'job default/cli-long was already submitted with this content; not submitted again',
    );
    expect(lines(watched)).toContainEqual(
      expect.stringMatching(/^default\/cli-long: Cancelled, phase Cancelled, /),
    );
    expect(lines(watched).at(-2)).toBe('job default/cli-long Cancelled');
    // events --follow -o json: one event document per line, in order, ending when the job ended.
    const followed = await followLong;
    expect(followed.code).toBe(0);
    const events = followed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { at: number; reason: string });
    expect(events[0]?.reason).toBe('Created');
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['WorkerCrash', 'Restarting']));
    expect(events.at(-1)?.reason).toBe('Cancelled');
    expect(events.map((e) => e.at)).toEqual([...events.map((e) => e.at)].sort((a, b) => a - b));
  });
});
