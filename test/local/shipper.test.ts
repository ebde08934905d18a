import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { logStreamName } from '../../local/logs/container-insights.ts';
import {
  type CapturedLine,
  type CloudWatchLogsEvent,
  type KinesisEvent,
  LogShipper,
} from '../../local/shipper.ts';

const decode = (event: CloudWatchLogsEvent) =>
  JSON.parse(gunzipSync(Buffer.from(event.awslogs.data, 'base64')).toString('utf8')) as {
    messageType: string;
    logGroup: string;
    logStream: string;
    logEvents: { id: string; timestamp: number; message: string }[];
  };

const line = (pod: string, text: string, timestamp: number): CapturedLine => ({
  namespace: 'team-a',
  pod,
  container: 'pytorch',
  node: 'node-1',
  labels: { 'trainkeeper.dev/job': 'llama' },
  stream: 'stdout',
  line: text,
  timestamp,
});

describe('LogShipper', () => {
  it('ships each pod stream as a gzip+base64 DATA_MESSAGE of stock Container Insights records (no labels), in order', async () => {
    const delivered: CloudWatchLogsEvent[] = [];
    const shipper = new LogShipper({
      logGroup: '/aws/containerinsights/local/application',
      deliver: async (e) => void delivered.push(e),
    });
    shipper.accept(line('llama-pods-0-0', '[default0]:step 1 | Loss: 2.1', 1000));
    shipper.accept(line('llama-pods-1-0', '[default0]:step 1 | Loss: 2.2', 1001));
    shipper.accept(line('llama-pods-0-0', '[default1]:step 2 | Loss: 2.0', 1002));
    await shipper.flush();

    const batches = delivered.map(decode).sort((a, b) => a.logStream.localeCompare(b.logStream));
    expect(batches).toHaveLength(2);
    expect(batches[0]?.messageType).toBe('DATA_MESSAGE');
    expect(batches[0]?.logGroup).toBe('/aws/containerinsights/local/application');
    expect(batches[0]?.logStream).toBe(logStreamName(line('llama-pods-0-0', '', 0)));
    const records = batches[0]?.logEvents.map((e) => JSON.parse(e.message));
    expect(records?.map((r) => r.log)).toEqual([
      '[default0]:step 1 | Loss: 2.1',
      '[default1]:step 2 | Loss: 2.0',
    ]);
    expect(records?.[0]).toMatchObject({ stream: 'stdout', _p: 'F' });
    expect(records?.[0].kubernetes).toMatchObject({
      pod_name: 'llama-pods-0-0',
      namespace_name: 'team-a',
      container_name: 'pytorch',
      host: 'node-1',
    });
    expect(records?.[0].kubernetes).not.toHaveProperty('labels');
    expect(batches[0]?.logStream).toMatch(
      /^node-1-application\.var\.log\.containers\.llama-pods-0-0_team-a_pytorch-[0-9a-f]{64}\.log$/,
    );
    const ids = batches.flatMap((b) => b.logEvents.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('flushes on its own timer without an explicit flush', async () => {
    const delivered: CloudWatchLogsEvent[] = [];
    const shipper = new LogShipper({
      logGroup: 'g',
      flushMs: 20,
      deliver: async (e) => void delivered.push(e),
    });
    shipper.accept(line('p', 'hello', 1));
    await expect.poll(() => delivered.length, { timeout: 2000 }).toBe(1);
  });

  it('retries a failed delivery twice, like Lambda asynchronous invocation, then gives up', async () => {
    let calls = 0;
    const errors: number[] = [];
    const shipper = new LogShipper({
      logGroup: 'g',
      retryDelayMs: 1,
      deliver: async () => {
        calls++;
        throw new Error('throttled');
      },
      onError: (_e, attempt) => errors.push(attempt),
    });
    shipper.accept(line('p', 'x', 1));
    await shipper.flush();
    expect(calls).toBe(3);
    expect(errors).toEqual([1, 2, 3]);
  });

  it('splits a large stream into batches of at most maxEventsPerBatch events', async () => {
    const sizes: number[] = [];
    const shipper = new LogShipper({
      logGroup: 'g',
      maxEventsPerBatch: 10,
      deliver: async (e) => void sizes.push(decode(e).logEvents.length),
    });
    for (let i = 0; i < 25; i++) shipper.accept(line('p', `line ${i}`, i));
    await shipper.flush();
    expect(sizes.sort((a, b) => a - b)).toEqual([5, 10, 10]);
  });

  it('never delivers two batches of one job at once, and lets lines accumulate while a delivery is in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const sizes: number[] = [];
    const shipper = new LogShipper({
      logGroup: 'g',
      flushMs: 5,
      deliver: async (e) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        sizes.push(decode(e).logEvents.length);
        await sleep(50);
        inFlight--;
      },
    });
    for (let i = 0; i < 20; i++) {
      shipper.accept(line(`llama-pods-${i % 3}-0`, `line ${i}`, i));
      await sleep(10);
    }
    await shipper.flush();
    expect(maxInFlight).toBe(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(sizes.length).toBeLessThan(20);
  });
});

describe('LogShipper through a Kinesis data stream', () => {
  const records = (e: KinesisEvent) =>
    e.Records.map((r) => ({
      shard: r.eventID.split(':')[0],
      key: r.kinesis.partitionKey,
      batch: decode({ awslogs: { data: r.kinesis.data } }),
    }));

  it("hands many streams' batches to one invocation per shard, each record one stream's subscription payload keyed by its stream", async () => {
    const delivered: KinesisEvent[] = [];
    const shipper = new LogShipper({
      logGroup: '/aws/containerinsights/local/application',
      kinesis: { shards: 2 },
      deliver: async (e: KinesisEvent) => void delivered.push(e),
    });
    for (let p = 0; p < 12; p++) {
      shipper.accept(line(`llama-pods-${p}-0`, `[default0]:step 1 | Loss: 2.${p}`, 1000 + p));
      shipper.accept(line(`llama-pods-${p}-0`, `[default1]:step 1 | Loss: 3.${p}`, 1100 + p));
    }
    await shipper.flush();

    const all = delivered.flatMap(records);
    // 12 streams, one record each; at most one invocation per shard for one flush window
    expect(all).toHaveLength(12);
    expect(delivered.length).toBeLessThanOrEqual(2);
    for (const e of delivered) expect(new Set(records(e).map((r) => r.shard)).size).toBe(1);
    for (const r of all) {
      expect(r.key).toBe(r.batch.logStream);
      expect(r.batch.messageType).toBe('DATA_MESSAGE');
      expect(r.batch.logEvents.map((e) => JSON.parse(e.message).log)).toHaveLength(2);
    }
    // a stream always lands on the same shard (ByLogStream)
    const shardOfStream = new Map<string, string | undefined>();
    for (const r of all) {
      const seen = shardOfStream.get(r.key);
      if (seen !== undefined) expect(r.shard).toBe(seen);
      shardOfStream.set(r.key, r.shard);
    }
    const ids = delivered.flatMap((e) => e.Records.map((r) => r.eventID));
    expect(new Set(ids).size).toBe(ids.length);
    expect(shipper.stats()).toMatchObject({ lines: 24, payloads: 12, invocations: delivered.length });
  });

  it('keeps one invocation in flight per shard, caps it at batchSize records and retries a failed batch whole', async () => {
    let inFlight = 0;
    let most = 0;
    let failures = 1;
    const sizes: number[] = [];
    const shipper = new LogShipper({
      logGroup: '/aws/containerinsights/local/application',
      kinesis: { shards: 1, batchSize: 5 },
      retryDelayMs: 1,
      deliver: async (e: KinesisEvent) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(5);
        inFlight--;
        if (failures-- > 0) throw new Error('throttled');
        sizes.push(e.Records.length);
      },
    });
    for (let p = 0; p < 13; p++) shipper.accept(line(`llama-pods-${p}-0`, '[default0]:x', 1000 + p));
    await shipper.flush();
    expect(most).toBe(1);
    expect(sizes).toEqual([5, 5, 3]);
    expect(shipper.stats().invocations).toBe(3);
  });
});
