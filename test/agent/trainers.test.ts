/**
 * The example trainers under real agents: two agents × two workers as two "nodes" on loopback, a chaos
 * crash of one rank, the control plane's process-level restart (/stop both, /start faultCount+1), resume
 * from the checkpoint. The DDP case runs real PyTorch (gloo, CPU) with /usr/bin/python3.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/agent.ts';
import { AgentProc, cleanup, startBody, stopAll, tempDir, until } from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

const SIM = fileURLToPath(new URL('../../examples/trainers/sim_trainer.py', import.meta.url));
const DDP = fileURLToPath(new URL('../../examples/trainers/ddp_trainer.py', import.meta.url));
const TORCH_PY = '/usr/bin/python3';
const hasTorch = spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) {
  console.warn(
    '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
      `!!! SKIPPING the real PyTorch DDP recovery test: ${TORCH_PY} cannot import torch.\n` +
      '!!! Install it with: apt-get install -y --no-install-recommends python3-torch\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n',
  );
}

const finals = (a: AgentProc): string[] =>
  a
    .workerLines()
    .filter((l) => l.includes(':final step='))
    .map((l) => l.slice(l.indexOf('final step=')));

/** Runs two agents (node ranks 0 and 1) × 2 workers through crash → /stop → /start faultCount+1. */
async function crashAndRecover(python: string, script: string, args: string[], crashAfterStep: number) {
  const chaos = tempDir();
  const env = { TRAINKEEPER_CHAOS_DIR: chaos, SIM_CONNECT_TIMEOUT: '60' };
  const flags = ['--nproc-per-node', '2', '--heartbeat-interval', '0', '--python', python, script, ...args];
  const [a, b] = await Promise.all([AgentProc.start(flags, env), AgentProc.start(flags, env)]);
  const start = async (faultCount: number) => {
    const master_port = await freePort();
    const rankIps = [
      { rank: 0, ip: '127.0.0.1' },
      { rank: 1, ip: '127.0.0.1' },
    ];
    const [ra, rb] = await Promise.all([
      a!.call('/start', startBody(faultCount, { rank: 0, nnodes: 2, master_port, rankIps })),
      b!.call('/start', startBody(faultCount, { rank: 1, nnodes: 2, master_port, rankIps })),
    ]);
    expect([ra.body.status, rb.body.status]).toEqual(['running', 'running']);
  };
  await start(0);
  // The chaos tool strikes global rank 3 (node 1, local rank 1) once training is under way.
  await until(
    () => b!.workerLines().some((l) => l.includes(`[rank 3] step ${crashAfterStep}/`)),
    'training progress',
    60_000,
  );
  writeFileSync(join(chaos, '.rank-3.json.tmp'), JSON.stringify({ fault: 'crash', exitCode: 7 }));
  renameSync(join(chaos, '.rank-3.json.tmp'), join(chaos, 'rank-3.json'));
  const [sa, sb] = await Promise.all([a!.waitStatus('faulted', 30_000), b!.waitStatus('faulted', 30_000)]);
  expect(sb).toMatchObject({
    reason: 'WorkerCrash',
    message: expect.stringMatching(
      /^local rank 1 \(global rank 3\) exited with code 7: RuntimeError: CUDA error/,
    ),
  });
  expect(sa.reason).toBe('WorkerCrash'); // its ranks lost their peers within milliseconds
  const stops = await Promise.all([a!.call('/stop'), b!.call('/stop')]);
  expect(stops.map((s) => s.body.status)).toEqual(['ready', 'ready']);
  await start(1);
  const [da, db] = await Promise.all([
    a!.waitStatus('completed', 60_000),
    b!.waitStatus('completed', 60_000),
  ]);
  expect([da.faultCount, db.faultCount]).toEqual([1, 1]);
  await until(() => finals(a!).length === 2 && finals(b!).length === 2, 'the final lines');
  return { a: a!, b: b! };
}

describe('example trainers under trainkeeper-agent', () => {
  it('the simulated trainer fails all ranks within moments of one crash and resumes from its checkpoint after a process-level restart', async () => {
    const ckpt = tempDir();
    const args = [
      '--steps',
      '30',
      '--step-time',
      '0.05',
      '--checkpoint-dir',
      ckpt,
      '--checkpoint-every',
      '5',
    ];
    const { a, b } = await crashAndRecover('python3', SIM, args, 12);
    const resumed = [...a.workerLines(), ...b.workerLines()].filter((l) =>
      l.includes('Resuming from checkpoint step'),
    );
    expect(resumed.length).toBeGreaterThan(0);
    expect(Number(/step (\d+)/.exec(resumed[0]!)![1])).toBeGreaterThanOrEqual(10);
    expect(new Set([...finals(a), ...finals(b)])).toEqual(new Set(['final step=30 loss=2.077707']));
    // The survivors' failure is a connection error, as with DDP.
    expect(a.workerLines().some((l) => l.includes('ConnectionResetError'))).toBe(true);
  });

  it.each([
    [
      'spike',
      /Loss: (\d+\.\d+)/,
      (normal: number, faulty: number) => expect(faulty / normal).toBeGreaterThan(9),
    ],
    [
      'slow',
      /\| (\d+\.\d+) samples\/s/,
      (normal: number, faulty: number) => expect(faulty / normal).toBeLessThan(0.06),
    ],
  ] as const)(
    'the simulated trainer applies a %s chaos file for the given number of steps, once',
    async (fault, metric, check) => {
      const chaos = tempDir();
      writeFileSync(join(chaos, 'rank-0.json'), JSON.stringify({ fault, steps: 2 }));
      const a = await AgentProc.start(
        ['--standalone', '--heartbeat-interval', '0', SIM, '--steps', '6', '--step-time', '0.01'],
        { TRAINKEEPER_CHAOS_DIR: chaos },
      );
      expect(await a.exited).toEqual({ code: 0, signal: null });
      const values = a
        .workerLines()
        .filter((l) => /step \d+\/6/.test(l))
        .map((l) => Number(metric.exec(l)![1]));
      expect(values).toHaveLength(6);
      check(values[2]!, values[0]!);
      check(values[2]!, values[1]!);
      expect(values[2]! / values[3]!).toBeLessThan(1.1); // back to normal after 2 steps
      expect(readdirSync(chaos)).toEqual([]); // consumed
    },
  );

  it.skipIf(!hasTorch)(
    'a real DDP job recovers from a crashed rank to the same final parameters as an uninterrupted run',
    async () => {
      const steps = ['--steps', '30', '--checkpoint-every', '5', '--step-time', '0.04'];
      // Uninterrupted reference: one standalone agent with 4 workers (the same world size of 4).
      const ref = await AgentProc.start([
        '--standalone',
        '--nproc-per-node',
        '4',
        '--heartbeat-interval',
        '0',
        '--python',
        TORCH_PY,
        DDP,
        ...steps,
        '--checkpoint-dir',
        tempDir(),
      ]);
      expect(await ref.exited).toEqual({ code: 0, signal: null });
      const reference = new Set(finals(ref));
      expect(reference.size).toBe(1);
      expect([...reference][0]).toMatch(/^final step=30 params_sha256=[0-9a-f]{64}$/);

      const { a, b } = await crashAndRecover(TORCH_PY, DDP, [...steps, '--checkpoint-dir', tempDir()], 8);
      expect(b.workerLines().some((l) => /Resuming from checkpoint step (5|10|15|20|25)/.test(l))).toBe(true);
      expect(new Set([...finals(a), ...finals(b)])).toEqual(reference);
    },
    120_000,
  );
});
