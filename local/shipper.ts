/**
 * The local stand-in for the log path AWS runs: Container Insights' Fluent Bit (the Amazon CloudWatch
 * Observability add-on) + a CloudWatch Logs subscription filter. It takes every line the process kubelet
 * captures, turns it into what the configured dialect ships (default `stock`: the add-on's JSON record,
 * Labels Off, in the add-on's log stream; see local/logs/container-insights.ts), applies the deployed
 * subscription filter pattern with CloudWatch's semantics (local/logs/filter-pattern.ts; the pattern comes
 * from stacks/log-filter.ts, as on AWS) and delivers what passes to the `logs` handler as the real
 * subscription payload (`{"awslogs":{"data": base64(gzip(DATA_MESSAGE))}}`, one log stream per payload).
 *
 * Two deliveries, as the stage's `logDelivery` deploys them:
 * - `direct` (default): the subscription invokes the handler with one stream's batch. Delivery mirrors
 *   Lambda's asynchronous invocation: a batch that fails is retried twice with a delay, then dropped with an
 *   error report (the sweep converges anyway). Unlike CloudWatch, which hands each stream's batches over
 *   independently, the local shipper queues per job (see `LogShipper`): it flushes far more often than
 *   CloudWatch does, and parallel writers on one job record would only fight over its version.
 * - `kinesis`: the subscription writes each stream's batch as one record into a Kinesis data stream, on the
 *   shard its log stream name hashes to (`distribution: ByLogStream`), and the event source mapping invokes
 *   the handler with up to `batchSize` records of one shard at a time (parallelization factor 1), in order;
 *   a failed batch is retried whole, then dropped with an error report (the deployed mapping's on-failure
 *   destination). Records of every job and stream share the shards, as on AWS.
 * A line is handed to the handler at most `flushMs` (default 150 ms; the mapping's batching window) after it
 * was written, inside the 200 ms budget; fewer, larger batches also mean fewer concurrent writers on a job's
 * record.
 */
import { gzipSync } from 'node:zlib';
import { POD_LABELS } from '../core/observations.ts';
import {
  type ContainerLine,
  eventMessage,
  type LogDialect,
  logStreamName,
} from './logs/container-insights.ts';
import { compileFilterPattern } from './logs/filter-pattern.ts';

/** What the kubelet reports for one captured line. */
export type CapturedLine = ContainerLine;

/** The event a CloudWatch Logs subscription hands to a Lambda. */
export interface CloudWatchLogsEvent {
  awslogs: { data: string };
}

/** One record of a Kinesis event source mapping's event (the fields the handler and tests read). */
export interface KinesisEventRecord {
  eventID: string;
  eventSource: 'aws:kinesis';
  eventSourceARN: string;
  kinesis: { data: string; sequenceNumber: string; partitionKey: string; kinesisSchemaVersion: '1.0' };
}

/** The event a Kinesis event source mapping hands to a Lambda. */
export interface KinesisEvent {
  Records: KinesisEventRecord[];
}

/** The Kinesis delivery's settings (as `logDelivery: {kinesis}` deploys them). */
export interface KinesisDeliveryOptions {
  shards?: number;
  /** Records per invocation at most (default 1000). */
  batchSize?: number;
}

const LOCAL_STREAM_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/trainkeeper-local-logs';
let kinesisSequence = 0n;

/**
 * Wraps subscription payloads as the records of one Kinesis event: each record's data is the payload's
 * gzip'd JSON, base64-encoded as Lambda presents record data (the same string as `awslogs.data`); the
 * partition key is the log stream (CloudWatch's `ByLogStream` distribution); sequence numbers grow.
 */
export function kinesisEvent(
  payloads: readonly { logStream: string; data: string }[],
  shard = 0,
): KinesisEvent {
  const shardId = `shardId-${String(shard).padStart(12, '0')}`;
  return {
    Records: payloads.map((p) => {
      const sequenceNumber = String(49_000_000_000_000_000_000_000_000n + kinesisSequence++);
      return {
        eventID: `${shardId}:${sequenceNumber}`,
        eventSource: 'aws:kinesis',
        eventSourceARN: LOCAL_STREAM_ARN,
        kinesis: {
          data: p.data,
          sequenceNumber,
          partitionKey: p.logStream,
          kinesisSchemaVersion: '1.0',
        },
      };
    }),
  };
}

interface LogEvent {
  id: string;
  timestamp: number;
  message: string;
}

/**
 * How the handler is invoked: directly by the subscription (default), or by a Kinesis data stream's event
 * source mapping.
 */
export type ShipperDelivery =
  | { kinesis?: undefined; deliver: (event: CloudWatchLogsEvent) => Promise<unknown> }
  | { kinesis: KinesisDeliveryOptions; deliver: (event: KinesisEvent) => Promise<unknown> };

export type ShipperOptions = ShipperDelivery & ShipperSettings;

export interface ShipperSettings {
  /** e.g. `/aws/containerinsights/<cluster>/application` (`applicationLogGroup`). */
  logGroup: string;
  /** What the log shipper writes (local/logs/container-insights.ts). Default `stock`. */
  dialect?: LogDialect;
  /**
   * The subscription filter pattern, with CloudWatch Logs semantics (default: the empty pattern, every
   * event). A pattern outside the supported subset throws `FilterPatternError` here, at construction.
   */
  filterPattern?: string;
  flushMs?: number;
  /** CloudWatch caps a subscription batch well below this; keep batches small and frequent. */
  maxEventsPerBatch?: number;
  retryDelayMs?: number;
  onError?: (err: unknown, attempt: number) => void;
  accountId?: string;
}

/** Counts since the shipper started (for tests and the logs-filter bench). */
export interface ShipperStats {
  /** Lines accepted. */
  lines: number;
  /** Lines the subscription filter pattern dropped. */
  filtered: number;
  /** Subscription payloads made (one per stream batch). */
  payloads: number;
  /** Handler invocations (retries not counted): one per payload when direct, per shard batch via Kinesis. */
  invocations: number;
}

/** Builds the gzip+base64 subscription payload for one stream's events. */
export function encodeSubscriptionPayload(
  logGroup: string,
  logStream: string,
  logEvents: LogEvent[],
  owner = '000000000000',
): CloudWatchLogsEvent {
  const body = {
    messageType: 'DATA_MESSAGE',
    owner,
    logGroup,
    logStream,
    subscriptionFilters: ['trainkeeper-local'],
    logEvents,
  };
  return { awslogs: { data: gzipSync(JSON.stringify(body)).toString('base64') } };
}

/**
 * Direct delivery: one queue per job, a job's batches delivered one at a time (streams in turn), different
 * jobs in parallel. While a job's delivery is in flight its new lines keep accumulating, so under load
 * batches grow instead of multiplying — the local stand-in never turns one job's record into a retry storm
 * of writers. Kinesis delivery: one queue per shard, one invocation in flight per shard.
 */
export class LogShipper {
  /** job key → log stream → events not yet handed over. */
  private readonly pending = new Map<string, Map<string, LogEvent[]>>();
  /** Jobs (direct) or shards (Kinesis) whose delivery is in flight, with the promise that ends it. */
  private readonly busy = new Map<string, Promise<void>>();
  /** Kinesis: each shard's records not yet handed over (one subscription payload each). */
  private readonly shards: { logStream: string; data: string }[][];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private stopped = false;
  private readonly dialect: LogDialect;
  private readonly passes: (message: string) => boolean;
  private readonly counts: ShipperStats = { lines: 0, filtered: 0, payloads: 0, invocations: 0 };
  private readonly flushMs: number;
  private readonly maxEvents: number;
  private readonly retryDelayMs: number;

  constructor(private readonly options: ShipperOptions) {
    this.flushMs = options.flushMs ?? 150;
    this.maxEvents = options.maxEventsPerBatch ?? 500;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.dialect = options.dialect ?? 'stock';
    this.passes = compileFilterPattern(options.filterPattern ?? '');
    this.shards = Array.from({ length: options.kinesis ? (options.kinesis.shards ?? 1) : 0 }, () => []);
  }

  /** What the shipper has seen, dropped and delivered so far. */
  stats(): ShipperStats {
    return { ...this.counts };
  }

  /**
   * Queues one captured line as its dialect's event; it is shipped with its stream's next batch unless the
   * subscription filter pattern drops it (as CloudWatch does, before any Lambda is invoked).
   */
  accept(line: CapturedLine): void {
    if (this.stopped) return;
    this.counts.lines++;
    const message = eventMessage(line, this.dialect);
    if (!this.passes(message)) {
      this.counts.filtered++;
      return;
    }
    const stream = logStreamName(line, this.dialect);
    // Queueing only (one delivery at a time per job): the kubelet knows the pod's labels even when the
    // records carry none. Attribution is the handler's, from the record or the stream name.
    const job = `${line.namespace}/${line.labels?.[POD_LABELS.job] ?? line.pod}`;
    const streams = this.pending.get(job) ?? new Map<string, LogEvent[]>();
    const events = streams.get(stream) ?? [];
    // CloudWatch event ids are opaque numeric strings, unique per event.
    events.push({
      id: `${line.timestamp}${String(this.seq++).padStart(12, '0')}`,
      timestamp: line.timestamp,
      message,
    });
    streams.set(stream, events);
    this.pending.set(job, streams);
    this.schedule();
  }

  /** Ships everything queued so far and waits until every delivery (incl. retries) has ended. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (;;) {
      this.startDeliveries();
      if (this.busy.size === 0) return;
      await Promise.all([...this.busy.values()]);
    }
  }

  /** Ships what is queued, then refuses new lines. */
  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.startDeliveries();
    }, this.flushMs);
  }

  private startDeliveries(): void {
    if (this.options.kinesis) this.startShards();
    else this.startIdleJobs();
  }

  /** Starts a delivery for every job that has lines queued and none in flight. */
  private startIdleJobs(): void {
    for (const [job, streams] of this.pending) {
      if (this.busy.has(job)) continue;
      this.pending.delete(job);
      this.track(job, this.deliverJob([...streams]));
    }
  }

  /** Puts every queued batch on its shard, then starts every shard that has records and none in flight. */
  private startShards(): void {
    for (const streams of this.pending.values()) {
      for (const [stream, events] of streams)
        for (const payload of this.payloadsOf(stream, events))
          this.shards[shardOf(stream, this.shards.length)]?.push({
            logStream: stream,
            data: payload.awslogs.data,
          });
    }
    this.pending.clear();
    for (const [i, queue] of this.shards.entries()) {
      const key = `shard#${i}`;
      if (queue.length === 0 || this.busy.has(key)) continue;
      const batch = queue.splice(0, this.options.kinesis?.batchSize ?? 1000);
      this.track(key, this.deliverWithRetries(kinesisEvent(batch, i)));
    }
  }

  private track(key: string, delivery: Promise<void>): void {
    this.busy.set(
      key,
      delivery.finally(() => {
        this.busy.delete(key);
        if (this.pending.size > 0 || this.shards.some((q) => q.length > 0)) this.schedule();
      }),
    );
  }

  /** One stream's events as subscription payloads of at most `maxEventsPerBatch` events. */
  private payloadsOf(stream: string, events: LogEvent[]): CloudWatchLogsEvent[] {
    const out: CloudWatchLogsEvent[] = [];
    for (let i = 0; i < events.length; i += this.maxEvents) {
      this.counts.payloads++;
      out.push(
        encodeSubscriptionPayload(
          this.options.logGroup,
          stream,
          events.slice(i, i + this.maxEvents),
          this.options.accountId,
        ),
      );
    }
    return out;
  }

  private async deliverJob(streams: [string, LogEvent[]][]): Promise<void> {
    for (const [stream, events] of streams)
      for (const payload of this.payloadsOf(stream, events)) await this.deliverWithRetries(payload);
  }

  private async deliverWithRetries(event: CloudWatchLogsEvent | KinesisEvent): Promise<void> {
    this.counts.invocations++;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await (this.options.deliver as (e: CloudWatchLogsEvent | KinesisEvent) => Promise<unknown>)(event);
        return;
      } catch (err) {
        this.options.onError?.(err, attempt);
        if (attempt < 3) await new Promise((r) => setTimeout(r, this.retryDelayMs * attempt));
      }
    }
  }
}

/** The shard a log stream's records go to (`ByLogStream`: a stream stays on one shard, in order). */
function shardOf(stream: string, shards: number): number {
  let h = 2166136261;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 16777619);
  return (h >>> 0) % Math.max(1, shards);
}
