import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildExecutable } from '../../agent/build.ts';
import { AgentProc, cleanup, stopAll, tempDir, WORKER } from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

const states = (a: AgentProc) => a.records().flatMap((r) => (r.kind === 'state' ? [r.state] : []));

describe('standalone mode (torchrun semantics)', () => {
  it('exits 1 after reporting the fault when no local restarts are allowed', async () => {
    const a = await AgentProc.start(
      ['--standalone', '--nproc-per-node', '2', '--heartbeat-interval', '0', WORKER, 'crash', '5'],
      {
        FAKE_RANKS: '0',
      },
    );
    expect(await a.exited).toEqual({ code: 1, signal: null });
    expect(states(a)).toEqual(['READY', 'RUNNING', 'FAULTED']);
    expect(a.records().find((r) => r.kind === 'state' && r.state === 'FAULTED')).toMatchObject({
      reason: 'WorkerCrash',
      message: 'local rank 0 (global rank 0) exited with code 5',
    });
  });

  it('restarts the workers locally with a new restart count while --max-restarts allows', async () => {
    const a = await AgentProc.start([
      '--standalone',
      '--max-restarts',
      '2',
      '--nproc-per-node',
      '1',
      '--heartbeat-interval',
      '0',
      WORKER,
      'crash',
      '5',
    ]);
    expect(await a.exited).toEqual({ code: 1, signal: null });
    expect(states(a)).toEqual([
      'READY',
      'RUNNING',
      'FAULTED',
      'STOPPING',
      'READY',
      'RUNNING',
      'FAULTED',
      'STOPPING',
      'READY',
      'RUNNING',
      'FAULTED',
    ]);
    expect(
      a
        .records()
        .filter((r) => r.kind === 'worker-exit')
        .map((r) => r.generation),
    ).toEqual([0, 1, 2]);
  });

  it('runs a worker group to completion and exits 0', async () => {
    const a = await AgentProc.start([
      '--standalone',
      '--nproc-per-node',
      '3',
      '--heartbeat-interval',
      '0',
      WORKER,
      'ok',
      '1',
    ]);
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(a.workerLines().sort()).toEqual([
      '[default0]:rank 0 step 0',
      '[default1]:rank 1 step 0',
      '[default2]:rank 2 step 0',
    ]);
  });
});

describe('packaging', () => {
  it('builds a standalone executable that runs workers without Node on the command line', async () => {
    const dir = tempDir();
    const exe = await buildExecutable(dir);
    expect(exe).toBe(join(dir, 'trainkeeper-agent'));
    const r = spawnSync(
      exe,
      ['--standalone', '--server-port', '0', '--heartbeat-interval', '0', WORKER, 'ok', '2'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('[default0]:rank 0 step 1');
    expect(r.stdout).toContain('"state":"COMPLETED"');
  }, 60_000);
});
