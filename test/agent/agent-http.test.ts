import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StatusBody } from '../../core/agent-protocol.ts';
import {
  AgentProc,
  alive,
  cleanup,
  printedPids,
  startBody,
  stopAll,
  tempDir,
  until,
  WORKER,
} from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

const hb = ['--heartbeat-interval', '0'];
const agent = (nproc: number, mode: string[], extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  AgentProc.start(['--nproc-per-node', String(nproc), ...hb, ...extra, WORKER, ...mode], env);

describe('agent HTTP API (HyperPod elastic agent contract)', () => {
  it('starts READY and reports the HyperPod status fields', async () => {
    const a = await agent(2, ['hang']);
    const s = await a.status();
    expect(StatusBody.parse(s)).toEqual(s);
    expect(s).toMatchObject({
      status: 'ready',
      spare: false,
      agent_version: expect.stringContaining('trainkeeper-agent'),
    });
    expect(Object.keys(s.transitions as object)).toEqual(['READY']);
    expect(s.faultCount).toBeUndefined();
  });

  it('answers an invalid /start with 422 and a FastAPI-style detail list naming each field', async () => {
    const a = await agent(1, ['hang']);
    const r = await a.call('/start', { rank: -1, faultCount: 0, master_addr: '', master_port: 'x' });
    expect(r.code).toBe(422);
    const locs = (r.body.detail as { loc: string[]; type: string }[]).map((d) => d.loc.join('.'));
    expect(locs).toEqual(
      expect.arrayContaining(['body.rank', 'body.nnodes', 'body.master_addr', 'body.master_port']),
    );
    expect(
      (r.body.detail as { loc: string[]; type: string }[]).find((d) => d.loc[1] === 'nnodes')?.type,
    ).toBe('missing');
    const bad = await a.call('/start', '{"rank":');
    expect(bad.code).toBe(422);
    expect(bad.body.detail).toEqual([expect.objectContaining({ type: 'json_invalid', loc: ['body', 0] })]);
    expect((await a.status()).status).toBe('ready');
  });

  it('gives each worker the torchrun env contract and completes without exiting when all exit 0', async () => {
    const a = await agent(2, ['env'], ['--max-restarts', '0'], { TRAINKEEPER_JOB_NAME: 'job-x' });
    const r = await a.call(
      '/start',
      startBody(3, { rank: 1, nnodes: 2, master_addr: '10.1.2.3', master_port: '29555' }),
    );
    expect(r.code).toBe(200);
    expect(r.body).toMatchObject({ status: 'running', faultCount: 3, assigned_rank: 1 });
    const s = await a.waitStatus('completed');
    expect(s.reason).toBe('Completed');
    const envs = a
      .workerLines()
      .filter((l) => l.includes(':ENV '))
      .map((l) => ({ prefix: l.slice(0, l.indexOf(':')), env: JSON.parse(l.slice(l.indexOf('ENV ') + 4)) }))
      .sort((x, y) => x.prefix.localeCompare(y.prefix));
    expect(envs.map((e) => e.prefix)).toEqual(['[default0]', '[default1]']);
    expect(envs[1]!.env).toMatchObject({
      RANK: '3',
      LOCAL_RANK: '1',
      WORLD_SIZE: '4',
      LOCAL_WORLD_SIZE: '2',
      GROUP_RANK: '1',
      GROUP_WORLD_SIZE: '2',
      ROLE_RANK: '3',
      ROLE_NAME: 'default',
      ROLE_WORLD_SIZE: '4',
      MASTER_ADDR: '10.1.2.3',
      MASTER_PORT: '29555',
      JOB_RESTART_COUNT: '3',
      TORCHELASTIC_RESTART_COUNT: '3',
      TORCHELASTIC_MAX_RESTARTS: '0',
      TORCHELASTIC_RUN_ID: 'job-x',
      TORCH_NCCL_ASYNC_ERROR_HANDLING: '1',
      OMP_NUM_THREADS: '1',
    });
    expect(envs[0]!.env.TORCHELASTIC_ERROR_FILE).not.toBe(envs[1]!.env.TORCHELASTIC_ERROR_FILE);
    expect(a.proc.exitCode).toBeNull(); // a completed agent waits for /shutdown
    const shut = await a.call('/shutdown');
    expect(shut.body.status).toBe('shutdown');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const states = a
      .records()
      .filter((r) => r.kind === 'state')
      .map((r) => r.state);
    expect(states).toEqual(['READY', 'RUNNING', 'COMPLETED', 'SHUTDOWN']);
  });

  it('treats a repeated /start of the running generation as a no-op', async () => {
    const a = await agent(2, ['hang']);
    await a.call('/start', startBody(0));
    await until(() => printedPids(a.workerLines()).length === 2, 'two workers');
    const again = await a.call('/start', startBody(0));
    expect(again).toMatchObject({ code: 200, body: { status: 'running', faultCount: 0 } });
    const other = await a.call('/start', startBody(1));
    expect(other.code).toBe(409);
    expect(other.body.detail).toContain('POST /stop');
    await sleep(300);
    expect(printedPids(a.workerLines())).toHaveLength(2);
  });

  it('answers /stop only when the workers and their grandchildren are gone, then restarts on /start faultCount+1', async () => {
    const a = await agent(2, ['grandchild']);
    await a.call('/start', startBody(0));
    await until(() => printedPids(a.workerLines()).length === 2, 'two grandchildren');
    const grandchildren = printedPids(a.workerLines());
    const workers = a.records().length; // no worker exits yet
    expect(workers).toBe(2);
    const stop = await a.call('/stop', {});
    expect(stop).toMatchObject({ code: 200, body: { status: 'ready' } });
    for (const pid of grandchildren) expect(alive(pid)).toBe(false);
    const exits = a.records().filter((r) => r.kind === 'worker-exit');
    expect(exits.map((r) => (r.kind === 'worker-exit' ? r.signal : null))).toEqual(['SIGKILL', 'SIGKILL']);
    for (const r of exits) if (r.kind === 'worker-exit') expect(alive(r.pid!)).toBe(false);

    const restart = await a.call('/start', startBody(1));
    expect(restart.body).toMatchObject({ status: 'running', faultCount: 1 });
    await until(() => printedPids(a.workerLines()).length === 4, 'two new grandchildren');
    expect(Object.keys((await a.status()).transitions as object).sort()).toEqual([
      'READY',
      'RUNNING',
      'STOPPING',
    ]);
  });

  it('stops with SIGTERM on a graceful /stop and SIGKILLs workers that ignore it after the timeout', async () => {
    const a = await agent(1, ['ignore-term']);
    await a.call('/start', startBody(0));
    await until(() => printedPids(a.workerLines()).length === 1, 'the worker');
    const stop = await a.call('/stop', { is_graceful: true, timeout: 0.5 });
    expect(stop.body.status).toBe('ready');
    expect(a.workerLines().some((l) => l.includes('got SIGTERM, ignoring'))).toBe(true);
    const exit = a.records().find((r) => r.kind === 'worker-exit');
    expect(exit).toMatchObject({ signal: 'SIGKILL', exitCode: null });
  });

  it('faults the group when one worker crashes, naming the rank, code and error file, and stops the others', async () => {
    const a = await agent(3, ['error-file', '7'], [], { FAKE_RANKS: '2' });
    await a.call('/start', startBody(0, { rank: 1, nnodes: 2 }));
    const s = await a.waitStatus('faulted');
    expect(s.reason).toBe('WorkerCrash');
    expect(s.message).toBe(
      'local rank 2 (global rank 5) exited with code 7: RuntimeError: CUDA error: an illegal memory access was encountered',
    );
    await until(() => a.records().filter((r) => r.kind === 'worker-exit').length === 3, 'all worker exits');
    const exits = a.records().filter((r) => r.kind === 'worker-exit');
    expect(exits[0]).toMatchObject({
      localRank: 2,
      rank: 5,
      exitCode: 7,
      error: { message: { message: expect.stringContaining('illegal memory access') } },
    });
    expect(exits.slice(1).map((r) => (r.kind === 'worker-exit' ? r.signal : ''))).toEqual([
      'SIGKILL',
      'SIGKILL',
    ]);
    const faulted = a.records().find((r) => r.kind === 'state' && r.state === 'FAULTED');
    expect(faulted).toMatchObject({ reason: 'WorkerCrash', previous: 'RUNNING', generation: 0 });
    // The control plane's usual sequence: /stop, then /start faultCount+1.
    expect((await a.call('/stop')).body.status).toBe('ready');
    expect((await a.call('/start', startBody(1, { rank: 1, nnodes: 2 }))).body.status).toBe('running');
  });

  it('reports a worker killed by a signal', async () => {
    const a = await agent(1, ['signal', 'SIGSEGV']);
    await a.call('/start', startBody(0));
    const s = await a.waitStatus('faulted');
    expect(s.message).toBe('local rank 0 (global rank 0) was killed by SIGSEGV');
  });

  it('reports a training script that cannot be started as a crash with exit code 127', async () => {
    const a = await AgentProc.start([...hb, join(tempDir(), 'missing-train.sh')]);
    await a.call('/start', startBody(0));
    const s = await a.waitStatus('faulted');
    expect(s.message).toBe('local rank 0 (global rank 0) exited with code 127');
    expect(a.workerLines()[0]).toMatch(
      /^\[default0\]:trainkeeper-agent: cannot start .*missing-train\.sh: spawn .* ENOENT$/,
    );
  });

  it('keeps a spare READY without workers', async () => {
    const a = await agent(1, ['hang']);
    const r = await a.call('/start', startBody(0, { spare: true }));
    expect(r.body).toMatchObject({ status: 'ready', spare: true, faultCount: 0 });
    await sleep(200);
    expect(a.workerLines()).toEqual([]);
  });

  it('writes the rank → IP table atomically and tees worker output to the torchelastic log layout', async () => {
    const dir = tempDir();
    const ipFile = join(dir, 'config', 'pod_resourceconfig.json');
    const a = await agent(
      1,
      ['ok', '2'],
      ['--rank-ip-file', ipFile, '--log-dir', join(dir, 'logs'), '--tee', '3'],
      {
        TRAINKEEPER_JOB_NAME: 'job-t',
        TRAINKEEPER_POD_IP: '10.0.0.2',
      },
    );
    const rankIps = [
      { rank: 1, ip: '10.0.0.2' },
      { rank: 0, ip: '10.0.0.1' },
    ];
    await a.call('/start', startBody(2, { rank: 1, nnodes: 2, rankIps }));
    await a.waitStatus('completed');
    const table = JSON.parse(readFileSync(ipFile, 'utf8'));
    expect(table).toMatchObject({ ips: ['10.0.0.1', '10.0.0.2'], current_pod_ip: '10.0.0.2' });
    expect(new Date(table.ips_timestamp).toString()).not.toBe('Invalid Date');
    const log = join(dir, 'logs', 'job-t', 'attempt_2', '0', 'stdout.log');
    await until(() => existsSync(log) && readFileSync(log, 'utf8').includes('step 1'), 'the tee file');
    expect(readFileSync(log, 'utf8')).toBe('rank 1 step 0\nrank 1 step 1\n');
    expect(a.workerLines()).toEqual(['[default0]:rank 1 step 0', '[default0]:rank 1 step 1']);
  });

  it('refreshes the rendezvous and the rank IP table on /update', async () => {
    const ipFile = join(tempDir(), 'pod_resourceconfig.json');
    const a = await agent(1, ['hang'], ['--rank-ip-file', ipFile]);
    await a.call(
      '/start',
      startBody(0, {
        rank: 0,
        nnodes: 2,
        rankIps: [
          { rank: 0, ip: '10.0.0.1' },
          { rank: 1, ip: '10.0.0.2' },
        ],
      }),
    );
    const up = await a.call('/update', {
      ...startBody(0, { rank: 1, nnodes: 2 }),
      rankIps: [
        { rank: 0, ip: '10.0.0.7' },
        { rank: 1, ip: '10.0.0.1' },
      ],
    });
    expect(up).toMatchObject({ code: 200, body: { status: 'running', assigned_rank: 1 } });
    expect(JSON.parse(readFileSync(ipFile, 'utf8')).ips).toEqual(['10.0.0.7', '10.0.0.1']);
    const bad = await a.call('/update', { rank: 0 });
    expect(bad.code).toBe(422);
  });

  it('faults with PreTrainScriptFailed when the pre-train script fails', async () => {
    const a = await agent(1, ['hang'], ['--pre-train-script', WORKER, '--pre-train-args', 'crash 4']);
    await a.call('/start', startBody(0));
    const s = await a.waitStatus('faulted');
    expect(s).toMatchObject({
      reason: 'PreTrainScriptFailed',
      message: 'pre-train script exited with code 4',
    });
    expect(a.workerLines()).toEqual([]);
  });

  it('prints heartbeats with the progress from /start and /update', async () => {
    const a = await AgentProc.start(['--heartbeat-interval', '0.1', WORKER, 'hang']);
    await a.call('/start', startBody(0, { progress: { ckpt: { progressCount: 10 } } }));
    await until(() => a.records().some((r) => r.kind === 'heartbeat' && r.workers === 1), 'a heartbeat');
    const up = await a.call('/update', { ...startBody(0), progress: { ckpt: { progressCount: 20 } } });
    expect(up.body).toMatchObject({ status: 'running', progress: { ckpt: { progressCount: 20 } } });
    await until(
      () =>
        a
          .records()
          .some(
            (r) => r.kind === 'heartbeat' && JSON.stringify(r.progress) === '{"ckpt":{"progressCount":20}}',
          ),
      'a heartbeat with the new progress',
    );
  });

  it('forwards SIGTERM to the workers and exits 143 when killed before completion', async () => {
    const a = await agent(2, ['hang'], ['--shutdown-timeout', '5']);
    await a.call('/start', startBody(0));
    await until(() => printedPids(a.workerLines()).length === 2, 'two workers');
    const pids = printedPids(a.workerLines());
    expect(await a.kill('SIGTERM')).toEqual({ code: 143, signal: null });
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const exits = a.records().filter((r) => r.kind === 'worker-exit');
    expect(exits.map((r) => (r.kind === 'worker-exit' ? r.signal : ''))).toEqual(['SIGTERM', 'SIGTERM']);
  });

  it('never interleaves lines of two workers printing long lines concurrently', async () => {
    const n = 20;
    const len = 100_000;
    const a = await agent(2, ['long-lines', String(n), String(len)]);
    await a.call('/start', startBody(0));
    await until(() => a.records().some((r) => r.state === 'COMPLETED'), 'the COMPLETED record');
    const lines = a.workerLines();
    const chars: Record<string, number> = { '0': 0, '1': 0 };
    for (const l of lines) {
      const m = /^\[default(\d)\]:(A+|B+)$/.exec(l);
      expect(m, `bad line ${l.slice(0, 40)}…`).not.toBeNull();
      const rank = m![1]!;
      expect(m![2]![0]).toBe(rank === '0' ? 'A' : 'B');
      expect(m![2]!.length).toBeLessThanOrEqual(64 * 1024);
      chars[rank]! += m![2]!.length;
    }
    expect(chars).toEqual({ '0': n * len, '1': n * len });
  });
});
