/**
 * The local plane's stand-in for reading the Container Insights log group back: it keeps what the add-on
 * would have written (every container line as its stock record, in its stock stream, before any
 * subscription filter: the log group holds everything, the filter only chooses what the Lambda sees) and
 * answers CloudWatch Logs' `FilterLogEvents` in the service's own JSON protocol
 * (`POST` with `X-Amz-Target: Logs_20140328.FilterLogEvents`), so `trainkeeper logs` runs the same SDK client
 * and adapter (adapters/aws/cloudwatch-logs.ts) against it as against AWS. Served by the local API at
 * `LOCAL_LOGS_PATH`. Supported: `logGroupName`, `logStreamNamePrefix`, `logStreamNames`, `startTime`,
 * `endTime` (inclusive, as AWS), `limit`, `nextToken`; the newest `maxEventsPerStream` events per stream are kept.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ContainerLine, eventMessage, logStreamName } from './container-insights.ts';

/** Where the local API serves the stand-in (the SDK client's `endpoint` is `<api>` + this). */
export const LOCAL_LOGS_PATH = '/local/cloudwatch-logs';

interface StoredEvent {
  logStreamName: string;
  timestamp: number;
  message: string;
  ingestionTime: number;
  eventId: string;
}

/** An in-memory application log group. */
export class LocalLogGroup {
  private readonly streams = new Map<string, StoredEvent[]>();
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly maxEventsPerStream = 20_000,
  ) {}

  /** Records one container line as the add-on writes it (stock dialect; the event's time is the line's). */
  accept(line: ContainerLine, now = Date.now()): void {
    const stream = logStreamName(line);
    let events = this.streams.get(stream);
    if (!events) {
      events = [];
      this.streams.set(stream, events);
    }
    this.seq += 1;
    events.push({
      logStreamName: stream,
      timestamp: line.timestamp,
      message: eventMessage(line, 'stock'),
      ingestionTime: now,
      eventId: String(this.seq).padStart(20, '0'),
    });
    if (events.length > this.maxEventsPerStream) events.splice(0, events.length - this.maxEventsPerStream);
  }

  /** FilterLogEvents over the stored events. */
  filter(input: {
    logGroupName?: string;
    logStreamNamePrefix?: string;
    logStreamNames?: string[];
    startTime?: number;
    endTime?: number;
    limit?: number;
    nextToken?: string;
  }): { events: StoredEvent[]; nextToken?: string } | { error: string; message: string } {
    if (input.logGroupName !== this.name)
      return { error: 'ResourceNotFoundException', message: 'The specified log group does not exist.' };
    const all: StoredEvent[] = [];
    for (const [name, events] of this.streams) {
      if (input.logStreamNamePrefix !== undefined && !name.startsWith(input.logStreamNamePrefix)) continue;
      if (input.logStreamNames !== undefined && !input.logStreamNames.includes(name)) continue;
      for (const e of events) {
        if (input.startTime !== undefined && e.timestamp < input.startTime) continue;
        if (input.endTime !== undefined && e.timestamp > input.endTime) continue;
        all.push(e);
      }
    }
    all.sort((a, b) => a.timestamp - b.timestamp || a.eventId.localeCompare(b.eventId));
    const from = input.nextToken ? Number(input.nextToken) : 0;
    const limit = Math.min(input.limit ?? 10_000, 10_000);
    const page = all.slice(from, from + limit);
    return from + limit < all.length ? { events: page, nextToken: String(from + limit) } : { events: page };
  }

  /** The local API route (`extraRoutes` of local/api-gateway.ts): true when it answered the request. */
  async route(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if (req.method !== 'POST' || !req.url?.startsWith(LOCAL_LOGS_PATH)) return false;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    };
    if (target !== 'Logs_20140328.FilterLogEvents') {
      reply(400, { __type: 'UnknownOperationException', message: `not supported locally: ${target}` });
      return true;
    }
    let input: Parameters<LocalLogGroup['filter']>[0];
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      reply(400, { __type: 'SerializationException', message: 'body is not JSON' });
      return true;
    }
    const result = this.filter(input);
    if ('error' in result) reply(400, { __type: result.error, message: result.message });
    else reply(200, { ...result, searchedLogStreams: [] });
    return true;
  }
}
