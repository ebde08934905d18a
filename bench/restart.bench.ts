/**
 * Restart fan-out at scale (issue #16): one process-level restart of every rank (`/stop` all, then `/start`
 * all at the new generation) through the Kubernetes adapter and the local API server's `pods/proxy`, to
 * simulated agents that answer after 20 ms (bench/restart-scale.ts), for 16 to 16,384 pods.
 *
 * Rows per size: the adapter's default concurrency with the `/start` bodies `decide` builds (they carry
 * the rank → IP table of every rank, so the bytes grow with n²), the same without that table (the fan-out
 * alone), and the baseline measured in the same run: the same fan-out one call at a time, for the sizes
 * where that finishes in reasonable time. Target: a 4,096-pod restart in ≤ 15 s. Figures are printed, not
 * asserted. `RESTART_BENCH_SIZES=16,256` runs fewer sizes; `RESTART_BENCH_LATENCY_MS` changes the latency.
 */
import { DEFAULT_AGENT_CONCURRENCY } from '../adapters/kube/concurrency.ts';
import { measureRestart, type RestartOptions } from './restart-scale.ts';
import { loadLine, printTable } from './support.ts';

const SIZES = (process.env.RESTART_BENCH_SIZES ?? '16,256,1024,4096,16384').split(',').map(Number);
const LATENCY_MS = Number(process.env.RESTART_BENCH_LATENCY_MS ?? 20);
/** The baseline (one call at a time) runs up to this size: 2 × n × latency of waiting. */
const SEQUENTIAL_UP_TO = 256;
const TARGET = { pods: 4096, seconds: 15 };

export default async function bench(): Promise<void> {
  console.log(
    `process-level restart of every rank: /stop then /start per pod through pods/proxy, simulated agents answering after ${LATENCY_MS} ms`,
  );
  console.log(
    'NOTE: agents are SIMULATED (one HTTP server for every pod); the API server and agents run in a child process',
  );
  const variants: { name: string; opts: RestartOptions; upTo?: number }[] = [
    { name: `${DEFAULT_AGENT_CONCURRENCY} in flight, /start bodies as decide builds them`, opts: {} },
    { name: `${DEFAULT_AGENT_CONCURRENCY} in flight, without rankIps`, opts: { rankIps: false } },
    {
      name: 'baseline: 1 in flight, without rankIps',
      opts: { concurrency: 1, rankIps: false },
      upTo: SEQUENTIAL_UP_TO,
    },
  ];
  const rows: string[][] = [];
  for (const pods of SIZES) {
    for (const v of variants) {
      if (v.upTo !== undefined && pods > v.upTo) continue;
      const m = await measureRestart(pods, { latencyMs: LATENCY_MS, ...v.opts });
      rows.push([
        pods.toLocaleString('en-US'),
        v.name,
        m.seconds.toFixed(2),
        m.stopSeconds.toFixed(2),
        m.calls.toLocaleString('en-US'),
        (m.calls / pods).toFixed(2),
        (m.startBytes / 1e6).toFixed(1),
        m.adapterCpuSeconds.toFixed(2),
        m.standInCpuSeconds.toFixed(2),
        pods === TARGET.pods && v.opts.concurrency === undefined
          ? m.seconds <= TARGET.seconds
            ? 'met'
            : 'MISSED'
          : '',
      ]);
    }
  }
  printTable(
    [
      '>pods',
      'fan-out',
      '>restartSeconds',
      '>of which stop (s)',
      '>API calls',
      '>calls/pod',
      '>/start MB',
      '>adapter CPU (s)',
      '>API server + agents CPU (s)',
      `target ${TARGET.pods.toLocaleString('en-US')} ≤ ${TARGET.seconds} s`,
    ],
    rows,
  );
  console.log(loadLine());
}
