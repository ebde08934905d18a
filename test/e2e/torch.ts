/**
 * Real PyTorch in the end-to-end scenarios: the interpreter that has it (Debian's `python3-torch`), a loud
 * warning where it is missing, and the uninterrupted reference run a recovered job is compared with.
 */
import { spawn, spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../../local/control-plane.ts';

export const TORCH_PY = '/usr/bin/python3';
export const hasTorch = spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/** Says loudly that `scenario` is skipped, and how to install torch, when `TORCH_PY` cannot import it. */
export function warnWithoutTorch(scenario: string): void {
  if (hasTorch) return;
  console.warn(
    `\n!!! SKIPPING ${scenario}: ${TORCH_PY} cannot import torch.\n` +
      '!!! Install it with: apt-get install -y --no-install-recommends python3-torch\n',
  );
}

/** The `final step=… params_sha256=…` lines of some output, de-duplicated. */
export const finals = (text: string): Set<string> =>
  new Set([...text.matchAll(/final step=\d+ params_sha256=[0-9a-f]+/g)].map((m) => m[0]));

/**
 * The uninterrupted reference: one standalone agent with 4 workers (a 2-pod × 2-worker job's world size)
 * running `trainer` with `args`. Its HTTP server takes an ephemeral loopback port: two scenarios' references
 * may run at once (on the default 8080, the second agent failed to start). Resolves with its whole output.
 */
export function runReference(trainer: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        'bin/trainkeeper-agent.js',
        '--standalone',
        '--server-host',
        '127.0.0.1',
        '--server-port',
        '0',
        '--nproc-per-node',
        '4',
        '--heartbeat-interval',
        '0',
        '--python',
        TORCH_PY,
        trainer,
        ...args,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}
