/**
 * The in-process module (agent/inprocess-shim.ts) under the agent's signal while it sets up its process
 * group. The agent publishes a new rendezvous and then sends SIGUSR1 to every live worker; a survivor that
 * had already read the rendezvous is by then connecting its TCPStore, and a signal that interrupts that
 * connect's poll() made `init_process_group` fail with "Interrupted system call" (a CI run of the local
 * plane: the in-process restart escalated to a process-level one). Here two real workers (PyTorch, gloo,
 * CPU; no agent) set up a group while SIGUSR1 arrives every 10 ms: rank 1 waits alone for rank 0's store
 * first, which is when the signal used to break it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/agent.ts';
import { INPROCESS_FILE_ENV, writeInProcessModule } from '../../agent/inprocess-shim.ts';
import { cleanup, tempDir, until } from './harness.ts';

afterAll(cleanup);

const TORCH_PY = '/usr/bin/python3';
const hasTorch = spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/**
 * A worker that runs 20 all-reduces under `tk.run`. It ignores SIGUSR1 until `tk.run` installs the
 * module's handler (the agent signals only workers it started under the module), prints `ready` just
 * before, and ignores it again once `tk.run` returned (the agent stops signalling workers that finished).
 */
const WORKER = [
  'import signal',
  'import torch',
  'import torch.distributed as dist',
  'import trainkeeper_inprocess as tk',
  '',
  'class State:',
  '    step = 0',
  '    def state_dict(self):',
  '        return {"step": self.step}',
  '    def load_state_dict(self, d):',
  '        self.step = d["step"]',
  '',
  'def train(state, info):',
  '    for _ in range(20):',
  '        t = torch.ones(1)',
  '        dist.all_reduce(t)',
  '    return int(t.item())',
  '',
  'signal.signal(signal.SIGUSR1, signal.SIG_IGN)',
  'print("ready", flush=True)',
  'total = tk.run(train, State())',
  'signal.signal(signal.SIGUSR1, signal.SIG_IGN)',
  'print("sum=%d" % total, flush=True)',
  '',
].join('\n');

interface Worker {
  proc: ChildProcess;
  out: string;
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

function startWorker(dir: string, rank: number, masterPort: number): Worker {
  const proc = spawn(TORCH_PY, [join(dir, 'worker.py')], {
    env: {
      ...process.env,
      PYTHONPATH: join(dir, 'py'),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(masterPort),
      WORLD_SIZE: '2',
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      TORCHELASTIC_RESTART_COUNT: '0',
      [INPROCESS_FILE_ENV]: join(dir, 'rdzv', 'rendezvous.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w: Worker = { proc, out: '', exit: once(proc, 'exit') as Worker['exit'] };
  proc.stdout?.on('data', (b: Buffer) => {
    w.out += b.toString();
  });
  proc.stderr?.on('data', (b: Buffer) => {
    w.out += b.toString();
  });
  return w;
}

/** SIGUSR1 every 10 ms, until stopped, to every worker between `ready` and the end of `tk.run`. */
function signalEvery10ms(workers: () => Worker[]): () => void {
  const timer = setInterval(() => {
    for (const w of workers()) {
      const training = w.out.includes('ready') && !w.out.includes('sum=');
      if (training && w.proc.exitCode === null && w.proc.signalCode === null) {
        w.proc.kill('SIGUSR1');
      }
    }
  }, 10);
  return () => clearInterval(timer);
}

describe.skipIf(!hasTorch)('trainkeeper_inprocess under the agent’s signal', () => {
  it('sets up its process group while SIGUSR1 arrives every 10 ms, and trains', async () => {
    const dir = tempDir('tk-inprocess-signal-');
    writeInProcessModule(join(dir, 'py'));
    mkdirSync(join(dir, 'rdzv'));
    writeFileSync(join(dir, 'worker.py'), WORKER);
    const port = await freePort();
    const workers: Worker[] = [];
    const stop = signalEvery10ms(() => workers);
    try {
      const rank1 = startWorker(dir, 1, port);
      workers.push(rank1);
      await until(() => rank1.out.includes('ready'), 'rank 1 importing torch', 60_000);
      // Rank 1 now waits for rank 0's TCPStore, under the signal, for a second.
      await new Promise((r) => setTimeout(r, 1000));
      const rank0 = startWorker(dir, 0, port);
      workers.push(rank0);
      // A rank that fails leaves the other waiting for it (the store's 30 min timeout): end both then.
      const killAll = () => {
        for (const o of workers) o.proc.kill('SIGKILL');
      };
      for (const w of workers) void w.exit.then(([code]) => code !== 0 && killAll());
      const exits = await Promise.all(workers.map((w) => w.exit));
      for (const [i, w] of workers.entries()) {
        expect(w.out, `rank ${1 - i}`).not.toMatch(/Interrupted system call/);
        expect(exits[i], `rank ${1 - i}: ${w.out}`).toEqual([0, null]);
        expect(w.out).toMatch(/^sum=2$/m);
      }
    } finally {
      stop();
      for (const w of workers) w.proc.kill('SIGKILL');
    }
  }, 120_000);
});
