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
 * A second job's agents run with `--inprocess-standby` too (a warm standby worker per node takes over the
 * killed rank): its in-process rounds are the `warm standby` rows.
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

type Tier = 'in-process' | 'in-process, warm standby' | 'process level';
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

/** Waits until both agents report a warm standby (`inprocess_standby: ready` in /status). */
async function standbyReady(agents: AgentProc[]): Promise<void> {
  const end = Date.now() + 180_000;
  for (;;) {
    const states = await Promise.all(agents.map((a) => a.status()));
    if (states.every((s) => s.inprocess_standby === 'ready')) return;
    if (Date.now() > end) throw new Error('the standbys did not become ready');
    await new Promise((r) => setTimeout(r, 50));
  }
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
  if (tier !== 'process level') await both(agents, '/inprocess-restart', g);
  else {
    await Promise.all([a.call('/stop'), b.call('/stop')]);
    await both(agents, '/start', g);
  }
  await until(() => trainingAt(agents, g), `training at generation ${g}`, 180_000).catch((err: unknown) => {
    const tail = agents.flatMap((x) => x.lines.slice(-15));
    throw new Error(`${String(err)} (${fault}, ${tier}); agent output:\n${tail.join('\n')}`);
  });
  return [detected, performance.now() - t0];
}

export default async function bench(): Promise<void> {
  if (spawnSync(TORCH_PY, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    console.log(`skipped: ${TORCH_PY} cannot import torch (apt-get install -y python3-torch)`);
    return;
  }
  console.log(loadLine());
  const key = (f: Fault, t: Tier) => `${f}|${t}`;
  const figures = new Map<string, { detect: number[]; total: number[] }>();
  await job([], ['in-process', 'process level'], (f, t, d, total) => {
    const x = figures.get(key(f, t)) ?? { detect: [], total: [] };
    x.detect.push(d);
    x.total.push(total);
    figures.set(key(f, t), x);
  });
  await job(['--inprocess-standby'], ['in-process, warm standby'], (f, _t, d, total) => {
    const x = figures.get(key(f, 'in-process, warm standby')) ?? { detect: [], total: [] };
    x.detect.push(d);
    x.total.push(total);
    figures.set(key(f, 'in-process, warm standby'), x);
  });
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
      row('rank killed', 'in-process, warm standby'),
      row('rank killed', 'process level'),
      row('all processes alive', 'in-process'),
      row('all processes alive', 'process level'),
    ],
  );
  const total = (f: Fault, t: Tier) => median(figures.get(key(f, t))!.total)!;
  for (const [fault, tier] of [
    ['rank killed', 'in-process'],
    ['rank killed', 'in-process, warm standby'],
    ['all processes alive', 'in-process'],
  ] as const) {
    const ratio = total(fault, 'process level') / total(fault, tier);
    console.log(`${fault}: process level / ${tier} (medians) = ${ratio.toFixed(1)}× (target ≥ 5×)`);
  }
}

/**
 * One 2 × 2 job under two agents (`--inprocess-restart` plus `extra`): ROUNDS rounds of each fault and
 * tier (the `all processes alive` fault only without a standby: the standby plays no part there).
 */
async function job(
  extra: string[],
  tiers: Tier[],
  record: (fault: Fault, tier: Tier, detect: number, total: number) => void,
): Promise<void> {
  const flags = [
    '--nproc-per-node',
    '2',
    '--inprocess-restart',
    ...extra,
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
  const faults: Fault[] = extra.length ? ['rank killed'] : ['rank killed', 'all processes alive'];
  try {
    await both(agents, '/start', 0);
    await until(() => trainingAt(agents, 0), 'training at generation 0', 180_000);
    if (extra.includes('--inprocess-standby')) await standbyReady(agents);
    let g = 0;
    for (let i = 0; i < ROUNDS; i++) {
      for (const fault of faults) {
        for (const tier of tiers) {
          g += 1;
          const [detect, total] = await round(agents, fault, tier, g);
          record(fault, tier, detect, total);
          // Some steps at the new generation first, so the next fault strikes a job in steady state (with
          // its new standby warm, as it is when faults are minutes apart).
          const seen = agents[1]!.workerLines().length;
          await until(() => agents[1]!.workerLines().length > seen + 20, 'steady training');
          if (extra.includes('--inprocess-standby')) await standbyReady(agents);
        }
      }
    }
  } finally {
    await cleanup();
  }
}
