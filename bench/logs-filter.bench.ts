/**
 * What the subscription filter saves: `logs` Lambda invocations and handler CPU per 1,000 log lines of a
 * shared cluster, for the default filter (`namespaces`: every record of the stage's allowed namespaces,
 * stacks/log-filter.ts) against `all` (every event of the log group).
 *
 * The mix (per 1,000 lines): 30% from a TrainKeeper job's 4 pods in `team-a` (worker lines, 1 in 20 an
 * agent heartbeat), 10% from 4 unrelated pods in `team-a` (they pass the default filter too: it cannot tell
 * them apart without labels), 60% from 12 pods in `kube-system`, `monitoring` and `web`. Lines are the
 * stock add-on's records (local/logs/container-insights.ts), filtered with CloudWatch's semantics and
 * batched per log stream by the local shipper, flushed every 100 lines (10 delivery rounds per 1,000
 * lines, a stand-in for CloudWatch's per-stream batching over time: each round invokes the Lambda once
 * per stream that had a line).
 *
 * Each payload goes to the real `logs` handler (functions/logs.ts over functions/shell/deps.ts `buildDeps`) on
 * DynamoDB Local when Java is present, else in-process dynalite. The store holds no job, so every line ends
 * as `unknown-job` after the per-batch pod index is loaded: the job's own lines cost the same under both
 * filters, and what differs is exactly the cost of the lines the filter drops. CPU is this process's
 * `process.cpuUsage()` across the handler calls (with dynalite it includes dynalite's share). Figures are
 * printed, never asserted. `LOGS_FILTER_BENCH_LINES` sets the number of lines (default 5,000).
 */

import { applicationLogGroup } from '../adapters/aws/cloudwatch-logs.ts';
import { ensureTable } from '../adapters/dynamo/store.ts';
import { AGENT_RECORD_MARKER } from '../core/agent-protocol.ts';
import { POD_LABELS } from '../core/observations.ts';
import { makeHandler } from '../functions/logs.ts';
import { loadConfig } from '../functions/shell/config.ts';
import { buildDeps } from '../functions/shell/deps.ts';
import { memoryLogger } from '../functions/shell/logger.ts';
import {
  hasJava,
  type LocalDynamo,
  makeDocClient,
  startDynalite,
  startDynamoDbLocal,
} from '../local/dynamo.ts';
import { type CapturedLine, type CloudWatchLogsEvent, LogShipper } from '../local/shipper.ts';
import { type LogFilter, logFilterPattern } from '../stacks/log-filter.ts';
import { loadLine, printTable } from './support.ts';

const LINES = Number(process.env.LOGS_FILTER_BENCH_LINES ?? 5000);
const ALLOWED = ['team-a', 'team-b'];
const ROUND = 100;

interface Source {
  namespace: string;
  pod: string;
  container: string;
  labels: Record<string, string>;
  job: boolean;
}

const SOURCES = {
  job: Array.from(
    { length: 4 },
    (_, i): Source => ({
      namespace: 'team-a',
      pod: `llama-pods-${i}-g1`,
      container: 'pytorch',
      labels: { [POD_LABELS.job]: 'llama' },
      job: true,
    }),
  ),
  sameNamespace: Array.from(
    { length: 4 },
    (_, i): Source => ({
      namespace: 'team-a',
      pod: `notebook-${i}`,
      container: 'jupyter',
      labels: { app: 'notebook' },
      job: false,
    }),
  ),
  otherNamespaces: ['kube-system', 'monitoring', 'web'].flatMap((namespace) =>
    Array.from(
      { length: 4 },
      (_, i): Source => ({
        namespace,
        pod: `${namespace}-app-${i}`,
        container: 'app',
        labels: { app: namespace },
        job: false,
      }),
    ),
  ),
};

/** The i-th line of the mix (deterministic): 30% job, 10% same-namespace, 60% other namespaces. */
function lineAt(i: number, now: number): CapturedLine {
  const bucket = i % 10;
  const pick = <T>(xs: T[]): T => xs[Math.floor(i / 10) % xs.length] as T;
  const source =
    bucket < 3 ? pick(SOURCES.job) : bucket < 4 ? pick(SOURCES.sameNamespace) : pick(SOURCES.otherNamespaces);
  const text = !source.job
    ? `I1205 10:00:00.000000 1 handler.go:42] served request ${i} in 3ms`
    : i % 20 === 0
      ? JSON.stringify({
          trainkeeper: AGENT_RECORD_MARKER,
          ts: new Date(now).toISOString(),
          namespace: source.namespace,
          pod: source.pod,
          job: 'llama',
          generation: 1,
          state: 'RUNNING',
          kind: 'heartbeat',
        })
      : `[default0]:step ${i} | Loss: 2.${i % 97} | 812 samples/s`;
  const node = `node-${source.pod.length % 4}`; // a pod stays on its node: one stream per container
  return { ...source, node, stream: 'stdout', line: text, timestamp: now + i };
}

interface Row {
  filter: string;
  pattern: string;
  passed: number;
  invocations: number;
  cpuMs: number;
  wallMs: number;
}

async function measure(filter: LogFilter, logs: (event: unknown) => Promise<unknown>): Promise<Row> {
  const pattern = logFilterPattern(filter, ALLOWED);
  const payloads: CloudWatchLogsEvent[] = [];
  const shipper = new LogShipper({
    logGroup: applicationLogGroup('bench'),
    filterPattern: pattern,
    maxEventsPerBatch: 10_000,
    deliver: async (p) => void payloads.push(p),
  });
  const now = Date.now();
  for (let i = 0; i < LINES; i++) {
    shipper.accept(lineAt(i, now));
    if ((i + 1) % ROUND === 0) await shipper.flush();
  }
  await shipper.stop();
  const stats = shipper.stats();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (const p of payloads) await logs(p);
  const cpu = process.cpuUsage(cpu0);
  return {
    filter: typeof filter === 'string' ? filter : 'custom',
    pattern,
    passed: stats.lines - stats.filtered,
    invocations: stats.payloads,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: performance.now() - wall0,
  };
}

export default async function run(): Promise<void> {
  console.log(loadLine());
  const java = hasJava();
  const dynamo: LocalDynamo = java ? await startDynamoDbLocal() : await startDynalite();
  try {
    const tableName = 'trainkeeper-bench-logs-filter';
    await ensureTable(makeDocClient(dynamo.endpoint), tableName);
    const deps = await buildDeps(
      loadConfig({
        TRAINKEEPER_MODE: 'local',
        TRAINKEEPER_TABLE: tableName,
        TRAINKEEPER_DYNAMO_ENDPOINT: dynamo.endpoint,
        TRAINKEEPER_KUBE_ENDPOINT: 'https://127.0.0.1:1',
        TRAINKEEPER_ALLOWED_NAMESPACES: ALLOWED.join(','),
      }),
      { log: memoryLogger() },
    );
    const logs = makeHandler(deps);
    await measure('all', logs); // warm-up: JIT, connections
    const rows = [await measure('namespaces', logs), await measure('all', logs)];
    console.log(
      `${LINES.toLocaleString('en-US')} lines (30% job, 10% other pods of team-a, 60% other namespaces), ` +
        `${java ? 'DynamoDB Local' : 'dynalite (in-process: its CPU is counted)'}; per 1,000 lines:`,
    );
    const per1k = (n: number) => ((n * 1000) / LINES).toFixed(1);
    printTable(
      ['logFilter', '>lines passed', '>invocations', '>handler CPU', '>handler wall', 'pattern'],
      rows.map((r) => [
        r.filter,
        per1k(r.passed),
        per1k(r.invocations),
        `${per1k(r.cpuMs)} ms`,
        `${per1k(r.wallMs)} ms`,
        r.pattern === '' ? '(empty: every event)' : `\`${r.pattern}\``,
      ]),
    );
  } finally {
    await dynamo.stop();
  }
}
