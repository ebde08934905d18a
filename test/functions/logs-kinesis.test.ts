/**
 * The logs handler invoked by a Kinesis data stream's event source mapping (`logDelivery: {kinesis}`): one
 * event carries many log streams' subscription payloads. Real dynalite and the local Kubernetes API
 * (startHarness); the jobs are written to the store directly, Running, so no agent needs to run: steady
 * heartbeats and worker lines ask no agent anything.
 *
 * - every payload's lines are attributed and a job is reconciled once per event, however many of its
 *   streams the event carries; a malformed record or a CONTROL_MESSAGE among them is counted and skipped;
 * - the same event delivered again (a retried batch) changes nothing;
 * - a job whose pods' heartbeats the event carries in hundreds is reconciled in chunks of at most
 *   `AGENT_PODS_PER_RECONCILE` pods, so that no write changes more slots than one transaction holds.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_RECORD_MARKER } from '../../core/agent-protocol.ts';
import { type JobRecord, jobKey } from '../../core/job.ts';
import { Metric } from '../../core/metrics.ts';
import type { JobStore } from '../../core/ports.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { AGENT_PODS_PER_RECONCILE, makeHandler as makeLogs } from '../../functions/logs.ts';
import type { Deps } from '../../functions/shell/reconcile.ts';
import { type CloudWatchLogsEvent, kinesisEvent } from '../../local/shipper.ts';
import { runningRecord } from '../core/big-record.ts';
import { logsEvent } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';

const MANIFEST = fileURLToPath(new URL('../fixtures/manifests/p5-16-nodes-log-rules.yaml', import.meta.url));
const NAMESPACE = 'ml-team';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

/** A Running job of `replicas` rank pods (the p5 fixture, four log rules), named `name`, in the store. */
async function runningJob(name: string, replicas: number): Promise<JobRecord> {
  const text = readFileSync(MANIFEST, 'utf8')
    .replace(/^ {2}name: .*$/m, `  name: ${name}`)
    .replace(/^ {6}replicas: 16$/m, `      replicas: ${replicas}`);
  const parsed = parseJobManifest(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  // every agent heard from 5 s ago: none is silent long enough to be polled (there are no pods to ask)
  const job = runningRecord(parsed.spec, Date.now() - 5_000);
  await h.store.createJob(job);
  return (await h.store.getJob(job)) as JobRecord;
}

const heartbeat = (job: JobRecord, pod: string, at: number, step: number): string =>
  JSON.stringify({
    trainkeeper: AGENT_RECORD_MARKER,
    ts: new Date(at).toISOString(),
    namespace: job.namespace,
    pod,
    job: job.name,
    generation: job.generation,
    state: 'RUNNING',
    kind: 'heartbeat',
    progress: { step },
  });

/** One pod's stream batch: a worker line of rank 0 and the agent's heartbeat, as the stock add-on ships them. */
function podBatch(job: JobRecord, pod: string, at: number, step: number): CloudWatchLogsEvent {
  return logsEvent(
    pod,
    [
      { text: `[default0]:step ${step} | Loss: 1.95 | training_loss_step 1.95 | 412.5TFLOPs`, timestamp: at },
      { text: heartbeat(job, pod, at + 1, step), timestamp: at + 1 },
    ],
    { namespace: job.namespace, container: 'pytorch' },
  );
}

const asRecords = (batches: CloudWatchLogsEvent[]) =>
  batches.map((b, i) => ({ logStream: `stream-${i}`, data: b.awslogs.data }));

const malformedCount = async (kind: string) =>
  (await h.store.readCounters()).find(
    (c) => c.name === Metric.malformedEventsSkipped && c.labels.kind === kind,
  )?.value ?? 0;

/** `h.deps` whose store records every job it is asked to write and counts the job reads. */
function recordingWrites(): { deps: Deps; writes: JobRecord[]; reads: { n: number } } {
  const writes: JobRecord[] = [];
  const reads = { n: 0 };
  const store = h.deps.store;
  const putJob: JobStore['putJob'] = async (job) => {
    writes.push(structuredClone(job));
    return store.putJob(job);
  };
  const getJob: JobStore['getJob'] = async (ref) => {
    reads.n++;
    return store.getJob(ref);
  };
  return {
    writes,
    reads,
    deps: {
      ...h.deps,
      store: new Proxy(store, {
        get: (target, prop) => {
          if (prop === 'putJob') return putJob;
          if (prop === 'getJob') return getJob;
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    },
  };
}

describe('logs through a Kinesis event source mapping', () => {
  it("reconciles a job once for an event carrying all its pods' streams, counting a malformed record and passing over a CONTROL_MESSAGE", async () => {
    const job = await runningJob('kinesis-a', 6);
    const { deps, writes } = recordingWrites();
    const logs = makeLogs(deps);
    const gzipBefore = await malformedCount('payload-gzip');
    const t = Date.now();
    const control = Buffer.from(
      (await import('node:zlib')).gzipSync(
        JSON.stringify({
          messageType: 'CONTROL_MESSAGE',
          owner: 'CloudwatchLogs',
          logGroup: '',
          logStream: '',
          subscriptionFilters: [],
          logEvents: [
            { id: '', timestamp: t, message: 'CWL CONTROL MESSAGE: Checking health of destination' },
          ],
        }),
      ),
    ).toString('base64');
    const event = kinesisEvent([
      ...asRecords(job.pods.map((p, i) => podBatch(job, p.name, t + i * 10, 100 + i))),
      { logStream: 'broken', data: Buffer.from('not gzip').toString('base64') },
      { logStream: 'control', data: control },
    ]);
    const out = await logs(event);
    expect(out.status).toBe('processed');
    expect(out.events).toBe(12);
    expect(out.skipped).toEqual({ 'payload-gzip': 1 });
    expect(out.jobs).toEqual([
      { ref: { namespace: NAMESPACE, name: 'kinesis-a' }, status: 'reconciled', linesEvaluated: 6 },
    ]);
    expect(writes.filter((w) => jobKey(w) === jobKey(job))).toHaveLength(1);
    const after = (await h.store.getJob(job)) as JobRecord;
    for (const [i, slot] of after.pods.entries()) expect(slot.lastSeenAt).toBe(t + i * 10 + 1);
    expect(after.progress?.step).toBe(105);
    expect(await malformedCount('payload-gzip')).toBe(gzipBefore + 1);

    // the mapping retries the same batch (same records): nothing moves
    const again = await logs(event);
    expect(again.jobs).toEqual([expect.objectContaining({ status: 'duplicate' })]);
    expect((await h.store.getJob(job))?.version).toBe(after.version);
  });

  it('reconciles every job an event touches, each once, and refuses an event that is neither delivery', async () => {
    const a = await runningJob('kinesis-b', 2);
    const b = await runningJob('kinesis-c', 2);
    const logs = makeLogs(h.deps);
    const t = Date.now();
    const out = await logs(
      kinesisEvent(
        asRecords([
          podBatch(a, a.pods[0]!.name, t, 1),
          podBatch(b, b.pods[0]!.name, t, 1),
          podBatch(a, a.pods[1]!.name, t + 5, 2),
          podBatch(b, b.pods[1]!.name, t + 5, 2),
        ]),
      ),
    );
    expect(out.jobs.map((j) => [j.ref.name, j.status, j.linesEvaluated])).toEqual([
      ['kinesis-b', 'reconciled', 2],
      ['kinesis-c', 'reconciled', 2],
    ]);
    const schemaBefore = await malformedCount('payload-schema');
    const refused = await logs({ Records: [{ eventSource: 'aws:sqs', body: 'x' }] });
    expect(refused.status).toBe('malformed');
    expect(await malformedCount('payload-schema')).toBe(schemaBefore + 1);
  });

  it(`reconciles hundreds of heartbeats of one job in chunks of at most ${AGENT_PODS_PER_RECONCILE} pods, every slot updated`, async () => {
    const pods = 2 * AGENT_PODS_PER_RECONCILE + 22;
    const job = await runningJob('kinesis-big', pods);
    const { deps, writes, reads } = recordingWrites();
    const logs = makeLogs(deps);
    const t = Date.now();
    const out = await logs(
      kinesisEvent(asRecords(job.pods.map((p, i) => podBatch(job, p.name, t + i, 500 + i)))),
    );
    // attribution's read is the first chunk's, and each chunk's write the next one's: one read in all
    expect(reads.n).toBe(1);
    expect(out.jobs).toEqual([expect.objectContaining({ status: 'reconciled', linesEvaluated: pods })]);
    const mine = writes.filter((w) => jobKey(w) === jobKey(job));
    expect(mine).toHaveLength(Math.ceil(pods / AGENT_PODS_PER_RECONCILE));
    let previous = job;
    for (const w of mine) {
      const changed = w.pods.filter((s, i) => JSON.stringify(s) !== JSON.stringify(previous.pods[i])).length;
      expect(changed).toBeGreaterThan(0);
      expect(changed).toBeLessThanOrEqual(AGENT_PODS_PER_RECONCILE);
      previous = w;
    }
    const after = (await h.store.getJob(job)) as JobRecord;
    expect(after.pods.map((s) => s.lastSeenAt)).toEqual(job.pods.map((_, i) => t + i + 1));
    expect(after.progress?.step).toBe(500 + pods - 1);
  });
});
