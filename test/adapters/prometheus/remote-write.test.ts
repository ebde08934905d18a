import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoJobStore, ensureTable } from '../../../adapters/dynamo/store.ts';
import { decodeWriteRequest, RemoteWriteMetricsSink } from '../../../adapters/prometheus/remote-write.ts';
import { Metric, observeLatency } from '../../../core/metrics.ts';
import { type LocalDynamo, makeDocClient, startDynalite } from '../../support/dynamo.ts';
import { hasPrometheus, type LocalPrometheus, startPrometheus } from '../../support/prometheus.ts';

const value = async (prom: LocalPrometheus, expr: string, at: number): Promise<string[]> => {
  const res = await prom.query(expr, at);
  expect(res.status, res.error).toBe('success');
  return (res.data?.result ?? []).map((r) => r.value[1]);
};

describe('remote write to a loopback receiver', () => {
  let server: Server;
  let url: string;
  const received: { headers: IncomingMessage['headers']; body: Buffer }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    url = `http://127.0.0.1:${a && typeof a !== 'string' ? a.port : 0}/api/v1/write`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends snappy protobuf with the remote-write headers, __name__ included and labels sorted by name', async () => {
    const sink = new RemoteWriteMetricsSink({ url });
    await sink.push({
      counters: [
        {
          name: Metric.restarts,
          labels: { reason: 'WorkerCrash', level: 'process', __name__: 'x' },
          value: 4,
        },
      ],
      gauges: [{ name: Metric.restartLatency, labels: {}, value: 1.25 }],
      at: 1_700_000_000_123,
    });
    const last = received.at(-1)!;
    expect(last.headers['content-encoding']).toBe('snappy');
    expect(last.headers['content-type']).toBe('application/x-protobuf');
    expect(last.headers['x-prometheus-remote-write-version']).toBe('0.1.0');
    expect(decodeWriteRequest(last.body)).toEqual([
      {
        labels: [
          { name: '__name__', value: Metric.restarts },
          { name: 'level', value: 'process' },
          { name: 'reason', value: 'WorkerCrash' },
        ],
        samples: [{ value: 4, timestamp: 1_700_000_000_123 }],
      },
      {
        labels: [{ name: '__name__', value: Metric.restartLatency }],
        samples: [{ value: 1.25, timestamp: 1_700_000_000_123 }],
      },
    ]);
  });

  it('does not throw when the endpoint is dead, and logs the failure', async () => {
    const logged: string[] = [];
    const sink = new RemoteWriteMetricsSink({
      url: 'http://127.0.0.1:9/api/v1/write',
      timeoutMs: 2000,
      log: (message) => logged.push(message),
    });
    await expect(
      sink.push({ counters: [{ name: Metric.jobsCreated, labels: {}, value: 1 }], gauges: [], at: 1 }),
    ).resolves.toBeUndefined();
    expect(logged).toEqual(['metrics remote write failed']);
  });
});

describe.skipIf(!hasPrometheus())('remote write to a real Prometheus', () => {
  let prom: LocalPrometheus;
  let dynamo: LocalDynamo;
  let store: DynamoJobStore;
  let client: ReturnType<typeof makeDocClient>;
  beforeAll(async () => {
    [prom, dynamo] = await Promise.all([startPrometheus(), startDynalite()]);
    client = makeDocClient(dynamo.endpoint);
    const tableName = `tk-${randomUUID().slice(0, 8)}`;
    await ensureTable(client, tableName);
    store = new DynamoJobStore({ client, tableName });
  });
  afterAll(async () => {
    client?.destroy();
    await Promise.all([prom?.stop(), dynamo?.stop()]);
  });

  it('stores counters, gauges and histograms in DynamoDB and reads back the exact totals with PromQL', async () => {
    await store.incrementCounters([
      { name: Metric.jobsCreated, labels: {}, by: 2 },
      { name: Metric.jobsCreated, labels: {}, by: 1 },
      { name: Metric.restarts, labels: { level: 'process', reason: 'WorkerCrash' }, by: 2 },
    ]);
    const at = Date.now() - 1000;
    for (const [i, seconds] of [0.3, 4, 45].entries()) {
      const { increments, gauge } = observeLatency(
        Metric.restartLatency,
        { level: 'process', job: 'a/b' },
        seconds,
      );
      await store.incrementCounters(increments);
      if (gauge) await store.setGauges([gauge], at - 100 + i);
    }
    const logged: unknown[] = [];
    const sink = new RemoteWriteMetricsSink({ url: prom.writeUrl, log: (m, f) => logged.push({ m, f }) });
    await sink.push({ counters: await store.readCounters(), gauges: await store.readGauges(), at });
    expect(logged).toEqual([]);

    const h = Metric.restartLatencySeconds;
    expect(await value(prom, Metric.jobsCreated, at)).toEqual(['3']);
    expect(await value(prom, `${Metric.restarts}{level="process",reason="WorkerCrash"}`, at)).toEqual(['2']);
    expect(await value(prom, `${Metric.restartLatency}{level="process"}`, at)).toEqual(['45']);
    expect(await value(prom, `${h}_count{level="process"}`, at)).toEqual(['3']);
    expect(await value(prom, `${h}_sum{level="process"}`, at)).toEqual(['49.3']);
    expect(await value(prom, `${h}_bucket{le="5"}`, at)).toEqual(['2']);
    expect(await value(prom, `${h}_bucket{le="+Inf"}`, at)).toEqual(['3']);
    // Cumulative buckets 1 (le=2) → 2 (le=5): the median interpolates to 2 + 3 × 0.5 = 3.5.
    expect(await value(prom, `histogram_quantile(0.5, ${h}_bucket)`, at)).toEqual(['3.5']);
    expect(await value(prom, `count({__name__=~"${h}.*",job!=""})`, at)).toEqual([]);
  });

  it('logs and returns when Prometheus rejects the samples', async () => {
    const logged: { m: string; f: Record<string, unknown> }[] = [];
    const sink = new RemoteWriteMetricsSink({ url: prom.writeUrl, log: (m, f) => logged.push({ m, f }) });
    // A sample from 6 hours ago is out of the TSDB head's bounds: 400.
    await sink.push({
      counters: [{ name: 'tk_old_total', labels: {}, value: 1 }],
      gauges: [],
      at: Date.now() - 6 * 3600_000,
    });
    expect(logged.map((l) => [l.m, l.f.status])).toEqual([['metrics remote write rejected', 400]]);
  });
});

if (!hasPrometheus())
  console.warn('SKIPPED: real Prometheus remote-write tests: no prometheus binary on PATH');
