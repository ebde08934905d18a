/**
 * `trainkeeper local up` as a user runs it: a real process that starts the whole control plane, prints its
 * endpoint, serves the other commands (which find it through `<data-dir>/local.json`), and on SIGTERM stops
 * everything it started — including the pod processes of a running job — and exits 0.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '../../core/api/documents.ts';
import { descendantsOf } from '../../local/kube/kubelet.ts';
import { BIN, cleanEnv, demoManifest, isAlive, killTree, ROOT, trainkeeper } from './run.ts';

const work = mkdtempSync(join(tmpdir(), 'tk-cli-local-'));
let up: ChildProcess | undefined;

afterAll(() => {
  // Only if a test failed half-way: the process group of `local up` (it and the pods it started).
  killTree(up?.pid);
  rmSync(work, { recursive: true, force: true });
});

/** Resolves with everything printed up to and including the first line that matches. */
function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} in:\n${out}`)), timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) => reject(new Error(`local up exited early (${code}):\n${out}`)));
  });
}

describe('trainkeeper local up', () => {
  it('prints its endpoint, serves list and chaos, and on SIGTERM exits 0 leaving no process behind', async () => {
    const dataDir = join(work, 'data');
    up = spawn(process.execPath, [BIN, 'local', 'up', '--nodes', '1', '--data-dir', dataDir], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    up.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => up?.once('exit', (code) => resolve(code)));
    const banner = await waitForLine(up, /^export TRAINKEEPER_ENDPOINT=(\S+)$/m, 120_000);
    const endpoint = banner.match(/^export TRAINKEEPER_ENDPOINT=(\S+)$/m)?.[1] as string;
    expect(banner).toContain(`  endpoint:   ${endpoint}\n`);
    expect(banner).toContain(`  data dir:   ${dataDir}\n`);
    expect(existsSync(join(dataDir, 'local.json'))).toBe(true);

    const file = join(work, 'up-job.yaml');
    writeFileSync(
      file,
      demoManifest({
        name: 'up-job',
        checkpointDir: join(work, 'ckpt'),
        steps: 100_000,
        replicas: 1,
        nprocPerNode: 1,
      }),
    );
    const env = cleanEnv({ TRAINKEEPER_ENDPOINT: endpoint });
    const submitted = await trainkeeper(['submit', file], { env });
    expect(submitted.code).toBe(0);
    const [list, chaos] = await Promise.all([
      trainkeeper(['list'], { env }),
      // No --endpoint: `local chaos` finds the plane through <data-dir>/local.json.
      trainkeeper(['local', 'chaos', 'spike', '--job', 'up-job', '--steps', '2', '--data-dir', dataDir], {
        env: cleanEnv(),
      }),
    ]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME +STATUS +PHASE +GEN +RESTARTS +STEP +AGE\nup-job +\S+ +\S+ +0 /);
    expect(chaos).toMatchObject({ code: 0, stderr: '' });
    expect(chaos.stdout).toMatch(/^injected spike into rank 0 of default\/up-job at /);

    // Wait until the job's worker runs, so that stopping has pod processes to stop.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const doc = (await (await fetch(`${endpoint}/jobs/default/up-job`)).json()) as JobDocument;
      if (doc.status.phase === 'Running') break;
      if (Date.now() > deadline) throw new Error(`up-job not running: ${JSON.stringify(doc.status)}`);
      await sleep(250);
    }
    const children = descendantsOf(up.pid as number);
    expect(children.length).toBeGreaterThanOrEqual(2); // at least the agent and its worker

    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('SIGTERM: stopping the local control plane…\nstopped\n');
    expect(existsSync(join(dataDir, 'local.json'))).toBe(false);
    // Pipes close as their owners exit; give the last ones (e.g. tsx's esbuild service) a moment.
    const gone = Date.now() + 5_000;
    while (children.some(isAlive) && Date.now() < gone) await sleep(100);
    expect(children.filter(isAlive)).toEqual([]);
  }, 240_000);
});
