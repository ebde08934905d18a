import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { logStreamName } from '../../local/logs/container-insights.ts';
import { type CapturedLine, type CloudWatchLogsEvent, LogShipper } from '../../local/shipper.ts';

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
