/**
 * The in-process restart tier (issue 19) at the agent level: real agents on loopback driven through their
 * HTTP API as the control plane would (no control plane here). The DDP case runs real PyTorch (gloo, CPU)
 * with /usr/bin/python3: 2 agents × 2 workers, one worker SIGKILLed mid-run, `POST /inprocess-restart` to
 * both agents at a new generation and master port; the survivors keep their processes, the replaced rank
 * receives the state, and the job ends bit-identical to an uninterrupted run.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/agent.ts';
import { AgentProc, alive, cleanup, printedPids, startBody, stopAll, tempDir, until } from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

const TRAINER = fileURLToPath(new URL('../../examples/trainers/inprocess_trainer.py', import.meta.url));
const TORCH_PY = '/usr/bin/python3';
const hasTorch = spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) {
  console.warn(
    `\n!!! SKIPPING the real PyTorch in-process restart test: ${TORCH_PY} cannot import torch.\n` +
      '!!! Install it with: apt-get install -y --no-install-recommends python3-torch\n',
  );
}

const finals = (a: AgentProc): string[] =>
  a
    .workerLines()
    .filter((l) => l.includes(':final step='))
    .map((l) => l.slice(l.indexOf('final step=')));

/** `starting: … pid=N` lines of global rank `rank`, in order. */
const entries = (a: AgentProc, rank: number): number[] =>
  printedPids(a.workerLines().filter((l) => l.includes(`[rank ${rank}] starting:`)));

const rankIps = [
  { rank: 0, ip: '127.0.0.1' },
  { rank: 1, ip: '127.0.0.1' },
];

/** Sends `path` to both agents with their node ranks, one shared new master port; answers in order. */
async function both(a: AgentProc, b: AgentProc, path: string, faultCount: number) {
  const master_port = await freePort();
  return Promise.all([
    a.call(path, startBody(faultCount, { rank: 0, nnodes: 2, master_port, rankIps })),
    b.call(path, startBody(faultCount, { rank: 1, nnodes: 2, master_port, rankIps })),
  ]);
}

/**
 * A stand-in worker that never re-enters: it ignores the agent's signal and sleeps. Local rank 1 of
 * generation 0 crashes at once (exit 3), so a fault is there to recover from.
 */
function stubbornWorker(): string {
  const file = join(tempDir(), 'stubborn.py');
  writeFileSync(
    file,
    [
      'import os, signal, sys, time',
      'signal.signal(signal.SIGUSR1, signal.SIG_IGN)',
      'print("pid=%d rank=%s restart=%s" % (os.getpid(), os.environ["RANK"], os.environ["TORCHELASTIC_RESTART_COUNT"]), flush=True)',
      'if os.environ["LOCAL_RANK"] == "1" and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":',
      '    time.sleep(0.3)',
      '    sys.exit(3)',
      'time.sleep(3600)',
      '',
    ].join('\n'),
  );
  return file;
}

describe('in-process restart under trainkeeper-agent', () => {
  it.skipIf(!hasTorch).each([
    ['', [] as string[]],
    [' by a warm standby (--inprocess-standby)', ['--inprocess-standby']],
  ])(
    'a 2-pod × 2-worker DDP job recovers a killed rank in place%s, survivors keep their PIDs, and ends bit-identical to an uninterrupted run',
    async (_name, extra) => {
      // 0.15 s per step leaves a warm standby time to be ready before training ends.
      const steps = ['--steps', '30', '--checkpoint-every', '5', '--step-time', '0.15'];
      const common = ['--heartbeat-interval', '0', '--python', TORCH_PY];
      // Uninterrupted reference: one standalone agent with the job's world size (4 workers).
      const refRun = AgentProc.start([
        '--standalone',
        '--nproc-per-node',
        '4',
        ...common,
        TRAINER,
        ...steps,
        '--checkpoint-dir',
        tempDir(),
      ]);
      const flags = [
        '--nproc-per-node',
        '2',
        '--inprocess-restart',
        '--inprocess-timeout',
        '60',
        ...extra,
        ...common,
        TRAINER,
        ...steps,
        '--checkpoint-dir',
        tempDir(),
      ];
      const [a, b] = await Promise.all([AgentProc.start(flags), AgentProc.start(flags)]);
      expect((await both(a!, b!, '/start', 0)).map((r) => r.body.status)).toEqual(['running', 'running']);
      await until(
        () =>
          b!.workerLines().some((l) => l.includes('[rank 3] step 8/')) ||
          [...a!.lines, ...b!.lines].some((l) => l.includes('"FAULTED"')),
        'training progress',
        180_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; agent output:\n${[...a!.lines, ...b!.lines].slice(-30).join('\n')}`);
      });
      expect((await b!.status()).status).toBe('running');
      if (extra.length) {
        // The standby reports itself warm once it waits in trainkeeper_inprocess.run.
        const end = Date.now() + 120_000;
        while ((await b!.status()).inprocess_standby !== 'ready' && Date.now() < end)
          await new Promise((r) => setTimeout(r, 50));
        expect((await b!.status()).inprocess_standby).toBe('ready');
      }
      const before = [0, 1, 2, 3].map((r) => entries(r < 2 ? a! : b!, r)[0]!);
      process.kill(before[3]!, 'SIGKILL');

      const faulted = await b!.waitStatus('faulted', 30_000);
      expect(faulted).toMatchObject({ reason: 'WorkerCrash', faultCount: 0 });
      expect(faulted.message).toMatch(/^local rank 1 \(global rank 3\) was killed by SIGKILL/);
      // In-process mode: the crash did not take the survivors with it.
      expect(alive(before[2]!)).toBe(true);
      expect((await a!.status()).status).toBe('running');

      const answers = await both(a!, b!, '/inprocess-restart', 1);
      expect(answers.map((r) => [r.code, r.body.restartMode])).toEqual([
        [200, 'in_process_restart'],
        [200, 'in_process_restart'],
      ]);
      for (const agent of [a!, b!]) {
        await until(
          () =>
            agent
              .records()
              .some((r) => r.kind === 'state' && r.reason === 'InProcessRestart' && r.generation === 1),
          'the InProcessRestart record',
          60_000,
        );
      }
      // A replay of the same restart is answered without effect.
      const replay = await b!.call('/inprocess-restart', startBody(1, { rank: 1, nnodes: 2, rankIps }));
      expect(replay.code).toBe(200);

      const done = await Promise.all([
        a!.waitStatus('completed', 90_000),
        b!.waitStatus('completed', 90_000),
      ]);
      for (const s of done)
        expect(s).toMatchObject({ faultCount: 1, restartMode: 'in_process_restart', inprocess_restarts: 1 });
      const record = b!.records().find((r) => r.kind === 'state' && r.reason === 'InProcessRestart');
      expect(record).toMatchObject({ state: 'RUNNING', previous: 'FAULTED', generation: 1 });
      expect(record?.kind === 'state' && record.message).toBe(
        'generation 1: 1 local worker(s) re-entered in place, 1 replaced',
      );

      // Survivors re-entered in the same process; only rank 3 is a new process.
      for (const r of [0, 1, 2]) expect(entries(r < 2 ? a! : b!, r)).toEqual([before[r], before[r]]);
      const rank3 = entries(b!, 3);
      expect(rank3).toHaveLength(2);
      expect(rank3[1]).not.toBe(before[3]);
      expect(b!.stderr).toContain('in-process restart to generation 1');
      if (extra.length) {
        // The replacement was the standby started with generation 0, not a process started for generation 1.
        expect(b!.stderr).toContain(`standby pid ${rank3[1]} takes over local rank 1`);
      }

      const ref = await refRun;
      expect(await ref.exited).toEqual({ code: 0, signal: null });
      const reference = new Set(finals(ref));
      expect(reference.size).toBe(1);
      expect([...reference][0]).toMatch(/^final step=30 params_sha256=[0-9a-f]{64}$/);
      await until(() => finals(a!).length === 2 && finals(b!).length === 2, 'the final lines');
      expect(new Set([...finals(a!), ...finals(b!)])).toEqual(reference);
    },
    400_000,
  );

  it('workers that never re-enter are killed after --inprocess-timeout and the agent faults with InProcessRestartTimeout at the new generation', async () => {
    const a = await AgentProc.start([
      '--nproc-per-node',
      '2',
      '--heartbeat-interval',
      '0',
      '--inprocess-restart',
      '--inprocess-timeout',
      '1',
      stubbornWorker(),
    ]);
    await a.call('/start', startBody(0));
    await a.waitStatus('faulted', 60_000);
    // Local rank 1 exits 0.3 s after its start; on a loaded machine rank 0 may print its pid after that.
    const rank0Pids = () => printedPids(a.workerLines().filter((l) => l.startsWith('[default0]:')));
    await until(() => rank0Pids().length > 0, 'local rank 0 printing its pid', 60_000);
    const survivor = rank0Pids()[0]!;
    expect(alive(survivor)).toBe(true);
    const answer = await a.call('/inprocess-restart', startBody(1, { master_port: await freePort() }));
    expect(answer.body).toMatchObject({ status: 'faulted', restartMode: 'in_process_restart' });
    await until(
      () => a.records().some((r) => r.kind === 'state' && r.reason === 'InProcessRestartTimeout'),
      'the timeout',
      60_000,
    );
    const s = await a.status();
    expect(s).toMatchObject({ status: 'faulted', reason: 'InProcessRestartTimeout', faultCount: 1 });
    expect(s.message).toBe('local workers did not re-enter generation 1 within 1 s');
    expect(
      a.records().find((r) => r.kind === 'state' && r.reason === 'InProcessRestartTimeout'),
    ).toMatchObject({
      previous: 'FAULTED',
      generation: 1,
    });
    await until(() => !alive(survivor), 'the survivor to be killed', 60_000);
    // The control plane then escalates to a process-level restart.
    expect((await a.call('/stop')).body.status).toBe('ready');
    expect((await a.call('/start', startBody(2))).body).toMatchObject({ status: 'running', faultCount: 2 });
  }, 180_000);

  it('an agent without --inprocess-restart answers /inprocess-restart with a process-level restart of all its workers', async () => {
    const a = await AgentProc.start(['--nproc-per-node', '2', '--heartbeat-interval', '0', stubbornWorker()]);
    await a.call('/start', startBody(0));
    const faulted = await a.waitStatus('faulted', 60_000);
    expect(faulted).toMatchObject({ reason: 'WorkerCrash', restartMode: 'process_level_restart' });
    expect(faulted.inprocess_restarts).toBeUndefined();
    const first = printedPids(a.workerLines());
    await until(
      () => first.every((p) => !alive(p)),
      'the survivor to be stopped (process-level behaviour)',
      60_000,
    );
    const answer = await a.call('/inprocess-restart', startBody(1, { master_port: await freePort() }));
    expect(answer.body).toMatchObject({ restartMode: 'process_level_restart' });
    const running = await a.waitStatus('running', 60_000);
    expect(running).toMatchObject({ faultCount: 1, restartMode: 'process_level_restart' });
    await until(() => printedPids(a.workerLines()).length === 4, 'two new workers', 60_000);
    const second = printedPids(a.workerLines()).slice(2);
    expect(second.every((p) => !first.includes(p) && alive(p))).toBe(true);
  }, 180_000);

  it('rejects an /inprocess-restart body without the rendezvous fields', async () => {
    const a = await AgentProc.start(['--heartbeat-interval', '0', '--inprocess-restart', stubbornWorker()]);
    const r = await a.call('/inprocess-restart', { rank: 0, nnodes: 1, faultCount: 1 });
    expect(r.code).toBe(422);
    expect((r.body.detail as { loc: string[] }[]).map((d) => d.loc.join('.'))).toEqual([
      'body.master_addr',
      'body.master_port',
    ]);
  });
});
