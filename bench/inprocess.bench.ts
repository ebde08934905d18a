/**
 * In-process vs process-level recovery latency (issue 19), printed, never asserted: one real 2-pod ×
 * 2-worker PyTorch DDP job (gloo, CPU, /usr/bin/python3, examples/trainers/inprocess_trainer.py) under two
 * real agents with `--inprocess-restart`, driven through their HTTP API as the control plane drives them.
 *
 * Two faults, rounds alternating the two tiers on the same job:
 * - `rank killed`: SIGKILL global rank 3, wait for its agent to report FAULTED, then recover. In place, the
 *   replacement process still pays its own start-up (`import torch`, model build): that bounds this case.
 * - `all processes alive`: a fault the control plane found in the logs (a log rule: hang, NaN loss...)
 *   with every worker process still alive; recovery starts at once.
 * Recovery: in-process = `POST /inprocess-restart` to both agents (new generation and master port); process
 * level = `POST /stop` to both, then `POST /start` at the new generation (every worker restarts, pays
 * `import torch`, the rendezvous and the checkpoint load).
 * Latency = fault → every one of the 4 ranks has printed a training step at the new generation. The ratio
 * of the medians is the figure the issue targets (≥ 5×).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../agent/agent.ts';
import { AgentProc, cleanup, printedPids, startBody, tempDir, until } from '../test/agent/harness.ts';
import { loadLine, median, ms, printTable } from './support.ts';

const TRAINER = fileURLToPath(new URL('../examples/trainers/inprocess_trainer.py', import.meta.url));
const TORCH_PY = '/usr/bin/python3';
const ROUNDS = Number(process.env.INPROCESS_BENCH_ROUNDS ?? 3);
const rankIps = [
  { rank: 0, ip: '127.0.0.1' },
  { rank: 1, ip: '127.0.0.1' },
];

type Tier = 'in-process' | 'process level';
type Fault = 'rank killed' | 'all processes alive';

/** True once every global rank 0..3 printed a step line at generation `g`. */
const trainingAt = (agents: AgentProc[], g: number): boolean =>
  [0, 1, 2, 3].every((r) =>
    agents[r < 2 ? 0 : 1]!.workerLines().some(
      (l) => l.includes(`[rank ${r}] step `) && l.endsWith(`restart=${g}`),
    ),
  );

async function both(agents: AgentProc[], path: string, g: number): Promise<void> {
  const master_port = await freePort();
  const answers = await Promise.all(
    agents.map((a, rank) => a.call(path, startBody(g, { rank, nnodes: 2, master_port, rankIps }))),
  );
  for (const r of answers)
    if (r.code !== 200) throw new Error(`${path}: ${r.code} ${JSON.stringify(r.body)}`);
}

/** One fault and recovery; returns [fault → detected, fault → training again] in ms. */
async function round(agents: AgentProc[], fault: Fault, tier: Tier, g: number): Promise<[number, number]> {
  const [a, b] = agents as [AgentProc, AgentProc];
  const pid = printedPids(b.workerLines().filter((l) => l.includes('[rank 3] starting:'))).at(-1)!;
  const t0 = performance.now();
  if (fault === 'rank killed') {
    process.kill(pid, 'SIGKILL');
    await b.waitStatus('faulted', 60_000);
  }
  const detected = performance.now() - t0;
  if (tier === 'in-process') await both(agents, '/inprocess-restart', g);
  else {
    await Promise.all([a.call('/stop'), b.call('/stop')]);
    await both(agents, '/start', g);
  }
  await until(() => trainingAt(agents, g), `training at generation ${g}`, 180_000);
  return [detected, performance.now() - t0];
}

export default async function bench(): Promise<void> {
  if (spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    console.log(`skipped: ${TORCH_PY} cannot import torch (apt-get install -y python3-torch)`);
    return;
  }
  console.log(loadLine());
  const flags = [
    '--nproc-per-node',
    '2',
    '--inprocess-restart',
    '--heartbeat-interval',
    '0',
    '--python',
    TORCH_PY,
    TRAINER,
    '--steps',
    '1000000',
    '--step-time',
    '0.05',
    '--checkpoint-every',
    '20',
    '--checkpoint-dir',
    tempDir(),
  ];
  const agents = await Promise.all([AgentProc.start(flags), AgentProc.start(flags)]);
  const key = (f: Fault, t: Tier) => `${f}|${t}`;
  const figures = new Map<string, { detect: number[]; total: number[] }>();
  try {
    await both(agents, '/start', 0);
    await until(() => trainingAt(agents, 0), 'training at generation 0', 180_000);
    let g = 0;
    for (let i = 0; i < ROUNDS; i++) {
      for (const fault of ['rank killed', 'all processes alive'] as const) {
        for (const tier of ['in-process', 'process level'] as const) {
          g += 1;
          const [detect, total] = await round(agents, fault, tier, g);
          const f = figures.get(key(fault, tier)) ?? { detect: [], total: [] };
          f.detect.push(detect);
          f.total.push(total);
          figures.set(key(fault, tier), f);
          // Some steps at the new generation first, so the next fault strikes a job in steady state.
          const seen = agents[1]!.workerLines().length;
          await until(() => agents[1]!.workerLines().length > seen + 20, 'steady training');
        }
      }
    }
  } finally {
    await cleanup();
  }
  const row = (fault: Fault, tier: Tier) => {
    const f = figures.get(key(fault, tier))!;
    return [
      fault,
      tier,
      ms(median(f.detect)),
      ms(median(f.total)),
      ms(Math.min(...f.total)),
      ms(Math.max(...f.total)),
      String(f.total.length),
    ];
  };
  printTable(
    [
      'fault (2 pods × 2 DDP workers)',
      'recovery',
      '>fault → FAULTED',
      '>fault → all 4 ranks training (median)',
      '>min',
      '>max',
      '>rounds',
    ],
    [
      row('rank killed', 'in-process'),
      row('rank killed', 'process level'),
      row('all processes alive', 'in-process'),
      row('all processes alive', 'process level'),
    ],
  );
  for (const fault of ['rank killed', 'all processes alive'] as const) {
    const ratio =
      median(figures.get(key(fault, 'process level'))!.total)! /
      median(figures.get(key(fault, 'in-process'))!.total)!;
    console.log(`${fault}: process level / in-process (medians) = ${ratio.toFixed(1)}× (target ≥ 5×)`);
  }
}
