/**
 * The local stand-in for the log path AWS runs: Container Insights' Fluent Bit (the Amazon CloudWatch
 * Observability add-on) + a CloudWatch Logs subscription filter. It takes every line the process kubelet
 * captures, turns it into what the configured dialect ships (default `stock`: the add-on's JSON record,
 * Labels Off, in the add-on's log stream; see local/logs/container-insights.ts), applies the deployed
 * subscription filter pattern with CloudWatch's semantics (local/logs/filter-pattern.ts; the pattern comes
 * from stacks/log-filter.ts, as on AWS) and delivers what passes to the `logs` handler as the real
 * subscription payload (`{"awslogs":{"data": base64(gzip(DATA_MESSAGE))}}`, one log stream per payload).
 *
 * Delivery mirrors Lambda's asynchronous invocation: a batch that fails is retried twice with a delay, then
 * dropped with an error report (the sweep converges anyway). Unlike CloudWatch, which hands each stream's
 * batches over independently, the local shipper queues per job (see `LogShipper`): it flushes far more often
 * than CloudWatch does, and parallel writers on one job record would only fight over its version.
 * A line is handed to the handler at most `flushMs` (default 150 ms) after it was written, inside the 200 ms
 * budget; fewer, larger batches also mean fewer concurrent writers on a job's record.
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

interface LogEvent {
  id: string;
  timestamp: number;
  message: string;
}

export interface ShipperOptions {
  /** e.g. `/aws/containerinsights/<cluster>/application` (`applicationLogGroup`). */
  logGroup: string;
  deliver: (event: CloudWatchLogsEvent) => Promise<unknown>;
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
  /** Payloads handed to `deliver` (Lambda invocations, retries not counted). */
  payloads: number;
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
 * One queue per job: a job's batches are delivered one at a time (streams in turn), different jobs in
 * parallel. While a job's delivery is in flight its new lines keep accumulating, so under load batches grow
 * instead of multiplying — the local stand-in never turns one job's record into a retry storm of writers.
 */
export class LogShipper {
  /** job key → log stream → events not yet handed over. */
  private readonly pending = new Map<string, Map<string, LogEvent[]>>();
  /** Jobs whose delivery is in flight, with the promise that ends it. */
  private readonly busy = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private stopped = false;
  private readonly dialect: LogDialect;
  private readonly passes: (message: string) => boolean;
  private readonly counts: ShipperStats = { lines: 0, filtered: 0, payloads: 0 };
  private readonly flushMs: number;
  private readonly maxEvents: number;
  private readonly retryDelayMs: number;

  constructor(private readonly options: ShipperOptions) {
    this.flushMs = options.flushMs ?? 150;
    this.maxEvents = options.maxEventsPerBatch ?? 500;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.dialect = options.dialect ?? 'stock';
    this.passes = compileFilterPattern(options.filterPattern ?? '');
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
      this.startIdleJobs();
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
      this.startIdleJobs();
    }, this.flushMs);
  }

  /** Starts a delivery for every job that has lines queued and none in flight. */
  private startIdleJobs(): void {
    for (const [job, streams] of this.pending) {
      if (this.busy.has(job)) continue;
      this.pending.delete(job);
      const delivery = this.deliverJob([...streams]).finally(() => {
        this.busy.delete(job);
        if (this.pending.has(job)) this.schedule();
      });
      this.busy.set(job, delivery);
    }
  }

  private async deliverJob(streams: [string, LogEvent[]][]): Promise<void> {
    for (const [stream, events] of streams) {
      for (let i = 0; i < events.length; i += this.maxEvents) {
        await this.deliverWithRetries(
          encodeSubscriptionPayload(
            this.options.logGroup,
            stream,
            events.slice(i, i + this.maxEvents),
            this.options.accountId,
          ),
        );
      }
    }
  }

  private async deliverWithRetries(payload: CloudWatchLogsEvent): Promise<void> {
    this.counts.payloads++;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.options.deliver(payload);
        return;
      } catch (err) {
        this.options.onError?.(err, attempt);
        if (attempt < 3) await new Promise((r) => setTimeout(r, this.retryDelayMs * attempt));
      }
    }
  }
}
