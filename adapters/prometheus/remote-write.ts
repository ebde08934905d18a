/**
 * Prometheus remote write 1.0 (`prometheus.WriteRequest`, protobuf, snappy block format), optionally SigV4-signed
 * for Amazon Managed Prometheus (service `aps`). Counters live in DynamoDB and every push sends totals, so a
 * failed push loses nothing: `RemoteWriteMetricsSink.push` logs and returns, and the next push carries the
 * (larger) totals.
 *
 * Invariants of every request: each series has a `__name__` label and its labels sorted by name (the receiver
 * rejects unsorted labels); one sample per series at the push time; headers `Content-Encoding: snappy`,
 * `Content-Type: application/x-protobuf`, `X-Prometheus-Remote-Write-Version: 0.1.0`.
 */
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import type { CounterTotal, MetricSamples, MetricsSink } from '../../core/ports.ts';
import { type CredentialsInput, makeSigner } from '../aws/sigv4.ts';

/** The messages of prometheus/prompb/types.proto and remote.proto that remote write 1.0 needs. */
const PROTO = `
syntax = "proto3";
package prometheus;
message WriteRequest {
  repeated TimeSeries timeseries = 1;
  reserved 2;
}
message TimeSeries {
  repeated Label labels = 1;
  repeated Sample samples = 2;
}
message Label {
  string name = 1;
  string value = 2;
}
message Sample {
  double value = 1;
  int64 timestamp = 2;
}
`;

/** The `prometheus.WriteRequest` message type. */
const WriteRequestType = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('prometheus.WriteRequest');

/** One remote-write series. */
interface TimeSeries {
  labels: { name: string; value: string }[];
  samples: { value: number; timestamp: number }[];
}

/** Remote write's fixed request headers. */
export const REMOTE_WRITE_HEADERS = {
  'Content-Encoding': 'snappy',
  'Content-Type': 'application/x-protobuf',
  'X-Prometheus-Remote-Write-Version': '0.1.0',
} as const;

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Series for samples at `at` (epoch ms): `__name__` added, labels sorted by name. */
function toTimeSeries(samples: CounterTotal[], at: number): TimeSeries[] {
  return samples.map((s) => ({
    labels: [
      { name: '__name__', value: s.name },
      ...Object.entries(s.labels)
        .filter(([name]) => name !== '__name__')
        .map(([name, value]) => ({ name, value })),
    ].sort(byName),
    samples: [{ value: s.value, timestamp: Math.round(at) }],
  }));
}

/** The snappy-compressed protobuf body of a WriteRequest. */
function encodeWriteRequest(series: TimeSeries[]): Uint8Array {
  const message = WriteRequestType.fromObject({ timeseries: series });
  return snappy.compress(WriteRequestType.encode(message).finish());
}

/** Inverse of `encodeWriteRequest`: what a receiver decodes (tests check the sent bytes with it). */
export function decodeWriteRequest(body: Uint8Array): TimeSeries[] {
  const decoded = WriteRequestType.toObject(WriteRequestType.decode(snappy.uncompress(body)), {
    longs: Number,
    defaults: true,
  }) as { timeseries?: TimeSeries[] };
  return decoded.timeseries ?? [];
}

/** Options of `RemoteWriteMetricsSink`. */
export interface RemoteWriteOptions {
  /** The remote-write URL (AMP: `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/remote_write`). */
  url: string;
  /** Sign for AMP (service `aps`); credentials default to the node provider chain. */
  sigv4?: { region: string; credentials?: CredentialsInput };
  /** Per-request timeout; default 5 s. */
  timeoutMs?: number;
  /** Where failures are reported; default one JSON line on stderr. */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

const defaultLog = (message: string, fields: Record<string, unknown>) =>
  console.warn(JSON.stringify({ level: 'warn', message, ...fields }));

/** `MetricsSink` that remote-writes totals and gauges. `push` never throws. */
export class RemoteWriteMetricsSink implements MetricsSink {
  private readonly sign?: ReturnType<typeof makeSigner>;

  constructor(private readonly options: RemoteWriteOptions) {
    if (options.sigv4) this.sign = makeSigner({ ...options.sigv4, service: 'aps' });
  }

  /** Per-decision records are not remote-written: the totals `push` sends carry them. */
  async recordDecision(): Promise<void> {}

  /** Sends one WriteRequest of totals and gauges; a failure is logged, never thrown (the next push retries). */
  async push(samples: MetricSamples): Promise<void> {
    const log = this.options.log ?? defaultLog;
    const series = toTimeSeries([...samples.counters, ...samples.gauges], samples.at);
    if (series.length === 0) return;
    try {
      const body = encodeWriteRequest(series);
      let headers: Record<string, string> = { ...REMOTE_WRITE_HEADERS };
      if (this.sign) headers = await this.sign({ method: 'POST', url: this.options.url, headers, body });
      const res = await fetch(this.options.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      const text = (await res.text()).slice(0, 500);
      log('metrics remote write rejected', {
        url: this.options.url,
        status: res.status,
        body: text,
        series: series.length,
      });
    } catch (err) {
      log('metrics remote write failed', {
        url: this.options.url,
        error: String(err),
        series: series.length,
      });
    }
  }
}
