/**
 * Reads a job's training output back from the Container Insights log group
 * (`/aws/containerinsights/<cluster>/application`), for `trainkeeper logs`.
 *
 * The add-on writes each container to its own stream, `<node>-application.var.log.containers.<pod>_<namespace>_<container>-<64hex>.log`,
 * as Fluent Bit JSON records whose `log` field is the line (docs/deploy.md). A job's pods and their nodes
 * come from its job document, so each pod is one `FilterLogEvents` query with the stream-name prefix
 * `<node>-application.var.log.containers.<pod>_<namespace>_` (all its containers). Ranks come from the
 * agent's `[default<N>]:` prefix (local rank N) and the pod's group rank: `rank = groupRank × nprocPerNode + N`.
 *
 * `follow` polls (FilterLogEvents from the last timestamp seen, de-duplicated by event id) with back-off:
 * 1 s while lines arrive, doubling to 10 s while the job is quiet or AWS throttles. StartLiveTail would
 * push instead, but it is an HTTP/2 event stream limited to 15 concurrent sessions per account and not
 * available behind every endpoint (the local plane's stand-in speaks FilterLogEvents only); polling works
 * against both.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CloudWatchLogsClient,
  type FilteredLogEvent,
  FilterLogEventsCommand,
  type FilterLogEventsCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { WORKER_LINE_PREFIX } from '../../core/agent-protocol.ts';

/** The log group the Amazon CloudWatch Observability add-on writes container output to. */
export const applicationLogGroup = (cluster: string): string =>
  `/aws/containerinsights/${cluster}/application`;

/** A pod of the job as its job document lists it. */
export interface JobLogPod {
  name: string;
  node?: string | undefined;
  /** The pod's group rank (`rank` in the job document). */
  rank?: number | undefined;
}

/** One line of a job's output. */
export interface JobLogLine {
  /** Milliseconds since the epoch (the event's timestamp). */
  time: number;
  pod: string;
  /** Global rank, when the line carries `[default<N>]:` and the pod's rank and nprocPerNode are known. */
  rank?: number;
  /** N of `[default<N>]:`. */
  localRank?: number;
  /** The line without the `[default<N>]:` prefix. */
  text: string;
  eventId: string;
}

/** What to read. */
export interface JobLogQuery {
  logGroup: string;
  namespace: string;
  pods: readonly JobLogPod[];
  /** Workers per pod (numeric `nprocPerNode`), for global ranks. */
  nprocPerNode?: number | undefined;
  startTime?: number;
  endTime?: number;
  /** Only lines whose text matches. */
  grep?: RegExp;
  /** Only these global ranks. */
  ranks?: readonly number[];
}

/** The stream-name prefix of every container of `pod` on `node` (stock Container Insights naming). */
export function podStreamPrefix(pod: string, namespace: string, node: string): string {
  return `${node}-application.var.log.containers.${pod}_${namespace}_`;
}

/** The line a Fluent Bit record carries (its `log` field, without the newline); a non-JSON message as is. */
export function recordText(message: string): string {
  if (message.startsWith('{')) {
    try {
      const record = JSON.parse(message) as { log?: unknown };
      if (typeof record.log === 'string') return record.log.replace(/\r?\n$/, '');
    } catch {}
  }
  return message.replace(/\r?\n$/, '');
}

/** One event as a `JobLogLine` of `pod`. */
export function lineOf(event: FilteredLogEvent, pod: JobLogPod, nprocPerNode?: number): JobLogLine {
  let text = recordText(event.message ?? '');
  const line: JobLogLine = { time: event.timestamp ?? 0, pod: pod.name, text, eventId: event.eventId ?? '' };
  const prefix = WORKER_LINE_PREFIX.exec(text);
  if (prefix) {
    const localRank = Number(prefix[1]);
    text = text.slice(prefix[0].length).replace(/^ /, '');
    line.text = text;
    line.localRank = localRank;
    if (pod.rank !== undefined && nprocPerNode !== undefined) line.rank = pod.rank * nprocPerNode + localRank;
  }
  return line;
}

const matches = (line: JobLogLine, query: JobLogQuery): boolean =>
  (query.ranks === undefined || (line.rank !== undefined && query.ranks.includes(line.rank))) &&
  (query.grep === undefined || query.grep.test(line.text));

/** Reads a job's lines from CloudWatch Logs. */
export class JobLogReader {
  constructor(private readonly client: CloudWatchLogsClient) {}

  /** Every matching line in `[startTime, endTime]`, oldest first (pods merged by time). */
  async read(query: JobLogQuery): Promise<JobLogLine[]> {
    const perPod = await Promise.all(
      query.pods
        .filter((p): p is JobLogPod & { node: string } => p.node !== undefined)
        .map((pod) => this.readPod(query, pod)),
    );
    return perPod.flat().sort((a, b) => a.time - b.time || a.eventId.localeCompare(b.eventId));
  }

  private async readPod(query: JobLogQuery, pod: JobLogPod & { node: string }): Promise<JobLogLine[]> {
    const out: JobLogLine[] = [];
    let nextToken: string | undefined;
    do {
      const input: FilterLogEventsCommandInput = {
        logGroupName: query.logGroup,
        logStreamNamePrefix: podStreamPrefix(pod.name, query.namespace, pod.node),
        ...(query.startTime !== undefined ? { startTime: query.startTime } : {}),
        ...(query.endTime !== undefined ? { endTime: query.endTime } : {}),
        ...(nextToken ? { nextToken } : {}),
      };
      const page = await this.client.send(new FilterLogEventsCommand(input));
      for (const event of page.events ?? []) {
        const line = lineOf(event, pod, query.nprocPerNode);
        if (matches(line, query)) out.push(line);
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return out;
  }

  /**
   * Prints lines as they arrive until `signal` aborts: polls from the newest timestamp seen (CloudWatch
   * may deliver late events with older timestamps inside a window, so it re-reads the last second and
   * drops event ids already printed). Back-off: 1 s after new lines, doubling to `maxDelayMs` when quiet
   * or throttled.
   */
  async follow(
    query: JobLogQuery,
    onLine: (line: JobLogLine) => void,
    options: {
      signal?: AbortSignal;
      minDelayMs?: number;
      maxDelayMs?: number;
      pods?: () => Promise<readonly JobLogPod[]>;
    } = {},
  ): Promise<void> {
    const minDelay = options.minDelayMs ?? 1000;
    const maxDelay = options.maxDelayMs ?? 10_000;
    const seen = new Set<string>();
    let since = query.startTime;
    let delay = minDelay;
    while (!options.signal?.aborted) {
      let fresh = 0;
      try {
        const pods = options.pods ? await options.pods() : query.pods;
        const lines = await this.read({
          ...query,
          pods,
          ...(since !== undefined ? { startTime: since } : {}),
        });
        for (const line of lines) {
          if (seen.has(line.eventId)) continue;
          seen.add(line.eventId);
          fresh += 1;
          onLine(line);
          since = Math.max(since ?? 0, line.time - 1000);
        }
      } catch (err) {
        if (!isThrottling(err)) throw err;
      }
      delay = fresh > 0 ? minDelay : Math.min(delay * 2, maxDelay);
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
    }
  }
}

/** True for the errors CloudWatch Logs answers when a caller polls too fast. */
function isThrottling(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === 'ThrottlingException' || name === 'LimitExceededException';
}

/** A client for the log group's region, or a local plane's CloudWatch Logs stand-in at `endpoint`. */
export function makeLogsClient(options: {
  region?: string;
  endpoint?: string;
  profile?: string;
}): CloudWatchLogsClient {
  if (options.endpoint) {
    return new CloudWatchLogsClient({
      endpoint: options.endpoint,
      region: options.region ?? 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 2,
    });
  }
  return new CloudWatchLogsClient({
    ...(options.region ? { region: options.region } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
  });
}
