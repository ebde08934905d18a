/**
 * trainkeeper-agent figures (printed, never asserted):
 * - process-level restart latency: from `POST /stop` sent to all N new workers spawned (`/start` returns after
 *   the spawns), for N = 8 and 32 trivial workers (`sleep`), median of several rounds;
 * - idle RSS and CPU of the agent process over a few seconds in READY, and with 8 workers running.
 * Targets: restart < 200 ms for 8 workers, RSS < 60 MB, CPU < 1%. torchrun for comparison: it polls its
 * workers every 100 ms (`--monitor-interval`) and waits up to 30 s after SIGTERM before SIGKILL.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentProc, cleanup, startBody } from '../test/agent/harness.ts';
import { loadLine, printTable } from './support.ts';

const CLK_TCK = 100; // Linux USER_HZ

function usage(pid: number): { rssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMb: rssKb / 1024, cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK };
}

async function idle(pid: number, seconds: number): Promise<{ rssMb: number; cpuPct: number }> {
  const a = usage(pid);
  await sleep(seconds * 1000);
  const b = usage(pid);
  return { rssMb: b.rssMb, cpuPct: ((b.cpuSeconds - a.cpuSeconds) / seconds) * 100 };
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

async function restartLatency(n: number, rounds: number): Promise<{ median: number; max: number }> {
  const agent = await AgentProc.start([
    '--nproc-per-node',
    String(n),
    '--heartbeat-interval',
    '0',
    'sleep',
    '1000',
  ]);
  try {
    await agent.call('/start', startBody(0));
    const times: number[] = [];
    for (let g = 1; g <= rounds; g++) {
      const t0 = performance.now();
      const stop = await agent.call('/stop');
      const start = await agent.call('/start', startBody(g));
      times.push(performance.now() - t0);
      if (stop.body.status !== 'ready' || start.body.status !== 'running')
        throw new Error('unexpected agent state');
    }
    return { median: median(times), max: Math.max(...times) };
  } finally {
    await agent.kill();
  }
}

export default async function bench(): Promise<void> {
  const rows: [string, string, string, string][] = [];
  for (const n of [8, 32]) {
    const r = await restartLatency(n, 7);
    rows.push([
      `process-level restart, ${n} workers (/stop → all spawned)`,
      `${r.median.toFixed(1)} ms (max ${r.max.toFixed(1)})`,
      n === 8 ? '< 200 ms' : '',
      'SIGTERM + up to 30 s wait, 100 ms poll',
    ]);
  }
  const agent = await AgentProc.start(['--nproc-per-node', '8', 'sleep', '1000']);
  try {
    await sleep(500);
    const ready = await idle(agent.proc.pid!, 5);
    rows.push(['agent idle RSS (READY)', `${ready.rssMb.toFixed(1)} MB`, '< 60 MB', '']);
    rows.push(['agent idle CPU (READY, 5 s)', `${ready.cpuPct.toFixed(2)} %`, '< 1 %', '']);
    await agent.call('/start', startBody(0));
    await sleep(500);
    const running = await idle(agent.proc.pid!, 5);
    rows.push(['agent RSS (8 idle workers running)', `${running.rssMb.toFixed(1)} MB`, '< 60 MB', '']);
    rows.push([
      'agent CPU (8 idle workers running, 5 s)',
      `${running.cpuPct.toFixed(2)} %`,
      '< 1 %',
      '100 ms poll loop',
    ]);
  } finally {
    await agent.kill();
    await cleanup();
  }
  const head: [string, string, string, string] = [
    'measure',
    'trainkeeper-agent',
    'target',
    'torchrun default',
  ];
  printTable(head, rows);
  console.log(loadLine());
}
