/**
 * `npm run bench -- scale [--json] [--sizes 16,256]`: one job of 16 … 16,384 pods against the store on
 * DynamoDB Local (issue #16), with figures from each part of the system measured the way it runs:
 *
 * - `largestItemBytes`: the largest item the store wrote for the job (its head or one of its parts) while
 *   creating it, taking a heartbeat and restarting it: DynamoDB refuses items over 400 KB.
 * - `wcuPerHeartbeatBatch`: write units of one log batch carrying an agent heartbeat (a Running job read,
 *   decided and written as `reconcile` does), from `ReturnConsumedCapacity` (DynamoDB Local reports it:
 *   1 KB rounding per item, transactional writes counted twice); mean of several pods' heartbeats.
 * - `wcuPerRestart`: write units of the decision that restarts every rank at process level (the write
 *   that moves the job to Restarting with its new generation; the agents' later reports are heartbeat-like).
 * - `decideMsP50`: `decide` on a heartbeat batch, median (bench/decide-scale.ts).
 * - `restartSeconds`: `/stop` then `/start` to every agent through the Kubernetes adapter and the local API
 *   server's `pods/proxy`, simulated agents answering after 20 ms (bench/restart-scale.ts).
 *
 * Baseline in the same run: the whole record's JSON size (what the single-item layout before the head/parts
 * layout wrote on every write, and what dynalite still stores) beside the largest item. Prints a Markdown
 * table; with `--json`, the last stdout line is one JSON object `{"sizes":[…]}`. Needs Java (DynamoDB Local).
 */
import { randomUUID } from 'node:crypto';
import { DynamoJobStore, ensureTable } from '../adapters/dynamo/store.ts';
import { decide } from '../core/decide.ts';
import type { JobRecord } from '../core/job.ts';
import type { Observation } from '../core/observations.ts';
import { hasJava, makeDocClient, startDynamoDbLocal } from '../local/dynamo.ts';
import { heartbeat, measureDecide, runningJobOf } from './decide-scale.ts';
import { measureRestart } from './restart-scale.ts';
import { loadLine, printTable } from './support.ts';

const DEFAULT_SIZES = [16, 256, 1024, 4096, 16384];
const HEARTBEATS = 5;

interface SizeFigures {
  pods: number;
  largestItemBytes: number;
  wholeRecordBytes: number;
  wcuPerHeartbeatBatch: number;
  wcuPerRestart: number;
  decideMsP50: number;
  /** Null when some agent call of the restart failed (the run says why). */
  restartSeconds: number | null;
}

/** The store figures for one size: create, heartbeats, one full process-level restart. */
async function storeFigures(
  store: DynamoJobStore,
  pods: number,
): Promise<
  Pick<SizeFigures, 'largestItemBytes' | 'wholeRecordBytes' | 'wcuPerHeartbeatBatch' | 'wcuPerRestart'>
> {
  const start = runningJobOf(pods);
  const job: JobRecord = { ...start, name: `scale-${pods}-${randomUUID().slice(0, 6)}` };
  store.meter.largestItemBytes = 0;
  await store.createJob(job);
  let now = 2_000_000;
  let units = 0;
  for (let i = 0; i < HEARTBEATS; i++) {
    const stored = (await store.getJob(job))!;
    const pod = stored.pods[Math.floor(((i + 0.5) * pods) / HEARTBEATS)]!.name;
    now += 1000;
    const result = decide(stored, [heartbeat(pod, now, 100 + i)], now);
    if (!result.changed) throw new Error('scale: a heartbeat changed nothing (the figure would be empty)');
    const before = store.meter.writeUnits;
    await store.putJob(result.job);
    units += store.meter.writeUnits - before;
  }
  const stored = (await store.getJob(job))!;
  now += 1000;
  const crash: Observation = {
    type: 'AgentPolled',
    pod: stored.pods[0]!.name,
    at: now,
    status: { status: 'faulted', reason: 'WorkerCrash', message: 'worker 0 exited with code 1' },
  };
  const restart = decide(stored, [crash], now);
  if (restart.job.generation !== stored.generation + 1)
    throw new Error('scale: the crash did not restart the job (the restart figure would be empty)');
  const before = store.meter.writeUnits;
  await store.putJob(restart.job);
  return {
    largestItemBytes: store.meter.largestItemBytes,
    wholeRecordBytes: Buffer.byteLength(JSON.stringify(restart.job)),
    wcuPerHeartbeatBatch: units / HEARTBEATS,
    wcuPerRestart: store.meter.writeUnits - before,
  };
}

export default async function scaleBench(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const sizesArg = args[args.indexOf('--sizes') + 1];
  const sizes = args.includes('--sizes') && sizesArg ? sizesArg.split(',').map(Number) : DEFAULT_SIZES;
  if (!hasJava()) {
    console.log('scale: skipped (DynamoDB Local needs java on PATH; .ci/run installs a JDK)');
    return;
  }
  console.log(`scale: ${loadLine()}`);
  const dynamo = await startDynamoDbLocal();
  const client = makeDocClient(dynamo.endpoint);
  const results: SizeFigures[] = [];
  try {
    const tableName = `tk-scale-${process.pid}`;
    await ensureTable(client, tableName);
    const store = new DynamoJobStore({ client, tableName });
    for (const pods of sizes) {
      const fromStore = await storeFigures(store, pods);
      const decideFigures = measureDecide(pods, { iterations: pods >= 4096 ? 11 : 31 });
      // A restart in which some agent calls failed (timeouts on a loaded machine) is no figure: say so and
      // go on with the other sizes (on AWS the next trigger would start the rest).
      const restartSeconds = await measureRestart(pods, { latencyMs: 20 }).then(
        (r) => r.seconds,
        (err: unknown) => {
          console.log(`scale: ${pods} pods: restart not measured: ${String(err).slice(0, 300)}`);
          return null;
        },
      );
      results.push({ pods, ...fromStore, decideMsP50: decideFigures.p50Ms, restartSeconds });
      console.log(`scale: ${pods} pods done (${loadLine()}): ${JSON.stringify(results.at(-1))}`);
    }
  } finally {
    client.destroy();
    await dynamo.stop();
  }
  printTable(
    [
      'pods',
      'largest item (bytes)',
      'whole record (bytes, one-item baseline)',
      'WCU / heartbeat batch',
      'WCU / restart',
      'decide p50 (ms)',
      'restart (s)',
    ],
    results.map((r) => [
      String(r.pods),
      String(r.largestItemBytes),
      String(r.wholeRecordBytes),
      r.wcuPerHeartbeatBatch.toFixed(1),
      String(r.wcuPerRestart),
      r.decideMsP50.toFixed(2),
      r.restartSeconds === null ? 'not measured' : r.restartSeconds.toFixed(2),
    ]),
  );
  console.log(
    'targets: every item < 400 KB; ≤ 10 WCU per heartbeat batch and decide p50 ≤ 50 ms and restart ≤ 15 s at 4,096 pods',
  );
  if (json) {
    console.log(
      JSON.stringify({
        sizes: results.map((r) => ({
          pods: r.pods,
          largestItemBytes: r.largestItemBytes,
          wcuPerHeartbeatBatch: r.wcuPerHeartbeatBatch,
          wcuPerRestart: r.wcuPerRestart,
          decideMsP50: r.decideMsP50,
          restartSeconds: r.restartSeconds,
        })),
      }),
    );
  }
}
