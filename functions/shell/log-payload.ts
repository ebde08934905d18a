/**
 * Parsing for the `logs` Lambda: the CloudWatch Logs subscription envelope (base64 → gunzip → JSON, checked
 * with zod like Powertools' `CloudWatchLogsSchema`) and each log event's message, which is either a
 * Container Insights / Fluent Bit JSON record or a plain line in a per-container log stream.
 *
 * Invariant: nothing here throws for bad *content*; every problem comes back as a `Malformed` value with a
 * bounded `kind` (a metric label), so one bad event is counted and skipped and the batch goes on. Only the
 * envelope as a whole can be rejected (`decodeSubscriptionData`), and then the whole batch is one malformed
 * event.
 */
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { type AgentRecord, recogniseAgentLine, WORKER_LINE_PREFIX } from '../../core/agent-protocol.ts';

/** The Lambda event a subscription filter delivers when the `logs` Lambda is its destination. */
export const CloudWatchLogsEvent = z.object({ awslogs: z.object({ data: z.string() }) });
export type CloudWatchLogsEvent = z.infer<typeof CloudWatchLogsEvent>;

/**
 * The Lambda event a Kinesis data stream's event source mapping delivers when the subscription filter's
 * destination is that stream (`logDelivery: {kinesis}`): each record's `data` is one subscription payload,
 * base64 of the same gzip'd JSON as `awslogs.data` (CloudWatch Logs writes it compressed; Lambda
 * base64-encodes record data). `eventID` is `<shardId>:<sequenceNumber>`, unique per record.
 */
export const KinesisLogsEvent = z.object({
  Records: z
    .array(
      z.object({
        eventID: z.string(),
        eventSource: z.literal('aws:kinesis'),
        kinesis: z.object({ data: z.string(), sequenceNumber: z.string() }),
      }),
    )
    .min(1),
});
export type KinesisLogsEvent = z.infer<typeof KinesisLogsEvent>;

/**
 * What one invocation carries: the subscription payloads (still encoded) and, for a Kinesis batch, the key
 * that names the batch (first and last record). A direct delivery is named by its payload's first and last
 * event instead, known once decoded.
 */
export type Delivery =
  | { kind: 'direct'; payloads: [string] }
  | { kind: 'kinesis'; payloads: string[]; batchKey: string };

/** Reads the envelope of either delivery; undefined when the event is neither. */
export function deliveryOf(event: unknown): Delivery | undefined {
  const direct = CloudWatchLogsEvent.safeParse(event);
  if (direct.success) return { kind: 'direct', payloads: [direct.data.awslogs.data] };
  const kinesis = KinesisLogsEvent.safeParse(event);
  if (!kinesis.success) return undefined;
  const records = kinesis.data.Records;
  const first = records[0] as (typeof records)[number];
  const last = records.at(-1) as (typeof records)[number];
  return {
    kind: 'kinesis',
    payloads: records.map((r) => r.kinesis.data),
    batchKey: `logs#kinesis#${first.eventID}#${last.eventID}#${records.length}`,
  };
}

/** One log event inside the decoded payload. */
export const CloudWatchLogEvent = z.object({
  id: z.string(),
  timestamp: z.number(),
  message: z.string(),
});
export type CloudWatchLogEvent = z.infer<typeof CloudWatchLogEvent>;

/** The decoded subscription payload (`messageType` `CONTROL_MESSAGE` is a reachability probe). */
export const CloudWatchLogsPayload = z.object({
  messageType: z.enum(['DATA_MESSAGE', 'CONTROL_MESSAGE']),
  owner: z.string(),
  logGroup: z.string(),
  logStream: z.string(),
  subscriptionFilters: z.array(z.string()),
  policyLevel: z.string().optional(),
  logEvents: z.array(CloudWatchLogEvent),
});
export type CloudWatchLogsPayload = z.infer<typeof CloudWatchLogsPayload>;

/** The payload with its events left unchecked (`decodeSubscriptionData` checks them one by one). */
const PayloadEnvelope = CloudWatchLogsPayload.extend({ logEvents: z.array(z.unknown()) });

/** What is wrong with one log event (`.<field>: <why>`), or undefined: it is a `CloudWatchLogEvent`. */
function badLogEvent(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return ': expected an object';
  const e = event as Record<string, unknown>;
  if (typeof e.id !== 'string') return '.id: expected a string';
  if (typeof e.timestamp !== 'number' || Number.isNaN(e.timestamp)) return '.timestamp: expected a number';
  if (typeof e.message !== 'string') return '.message: expected a string';
  return undefined;
}

/** Bounded set of reasons a payload or event is skipped (the `kind` label of `malformedEventsSkipped`). */
export type MalformedKind =
  | 'payload-base64'
  | 'payload-gzip'
  | 'payload-json'
  | 'payload-schema'
  | 'oversized-line'
  | 'unattributed-line'
  | 'unknown-job'
  | 'agent-record'
  /**
   * An agent record that does not come from the agent's container of a pod of the job it is attributed
   * to, or whose own `job`/`namespace`/`pod` fields disagree with where it came from.
   */
  | 'forged-agent-record';

export interface Malformed {
  malformed: MalformedKind;
  detail: string;
}

export const isMalformed = (v: unknown): v is Malformed =>
  typeof v === 'object' && v !== null && 'malformed' in v;

/**
 * Largest log event we evaluate (characters). CloudWatch Logs caps an event at 256 KiB; anything larger
 * did not come through CloudWatch and would only cost regex time.
 */
export const MAX_LINE_LENGTH = 256 * 1024;
/** Largest decompressed payload accepted (Lambda's async payload is ≤ 256 KiB compressed). */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes `awslogs.data`. Returns the payload, or why it is unusable. */
export function decodeSubscriptionData(data: string): CloudWatchLogsPayload | Malformed {
  const compact = data.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) {
    return { malformed: 'payload-base64', detail: 'awslogs.data is not base64' };
  }
  let json: string;
  try {
    json = gunzipSync(Buffer.from(compact, 'base64'), { maxOutputLength: MAX_PAYLOAD_BYTES }).toString(
      'utf8',
    );
  } catch (err) {
    return { malformed: 'payload-gzip', detail: `awslogs.data is not gzip: ${(err as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { malformed: 'payload-json', detail: `awslogs.data is not JSON: ${(err as Error).message}` };
  }
  // The envelope through its schema; the events (thousands in a Kinesis batch) checked in place below, not
  // copied one object each by a schema parse.
  const parsed = PayloadEnvelope.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      malformed: 'payload-schema',
      detail: `payload.${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`,
    };
  }
  const events = (value as { logEvents: unknown[] }).logEvents;
  for (let n = 0; n < events.length; n++) {
    const bad = badLogEvent(events[n]);
    if (bad) return { malformed: 'payload-schema', detail: `payload.logEvents.${n}${bad}` };
  }
  return { ...parsed.data, logEvents: events as CloudWatchLogEvent[] };
}

/**
 * Where a line came from: the Kubernetes coordinates of the container that printed it, as the log
 * shipper wrote them (Fluent Bit's `kubernetes` metadata, or the log stream name). The only input to
 * attribution: a line's own text never says which job or pod it belongs to. Pod labels are not read (the
 * stock add-on ships none, and a pod can label itself as anything).
 */
export interface LineSource {
  pod: string;
  namespace: string;
  container?: string;
  node?: string;
}

/** A log event reduced to its source and text (trailing newline removed). */
export interface SourcedLine {
  id: string;
  timestamp: number;
  source: LineSource;
  text: string;
}

/** The fields of a Fluent Bit / Container Insights record attribution reads. */
interface FluentBitRecord {
  log: string;
  kubernetes: { pod_name: string; namespace_name: string; container_name?: string; host?: string };
}

const isOptionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * `value` as a Fluent Bit record: `log` a string, `stream` a string if present, `kubernetes.pod_name` and
 * `namespace_name` non-empty strings, `container_name` and `host` strings if present; else undefined. A
 * check by hand, not a schema: it runs once per log line, and a schema's parse copies the record.
 */
function asFluentBitRecord(value: unknown): FluentBitRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r.log !== 'string' || !isOptionalString(r.stream)) return undefined;
  const k = r.kubernetes;
  if (typeof k !== 'object' || k === null) return undefined;
  const m = k as Record<string, unknown>;
  if (!isName(m.pod_name) || !isName(m.namespace_name)) return undefined;
  if (!isOptionalString(m.container_name) || !isOptionalString(m.host)) return undefined;
  return r as unknown as FluentBitRecord;
}

// Pod and namespace names are DNS labels/subdomains: they never contain `_`, so `_` splits unambiguously.
const CONTAINER_LOG_FILE = /(?:^|[.])var\.log\.containers\.([^_/]+)_([^_/]+)_(.+?)(?:-[0-9a-f]{64})?\.log$/;
const CONTAINER_STREAM = /^([^_/.][^_/]*)_([^_/]+)_(.+?)(?:-[0-9a-f]{64})?$/;

/**
 * Reads the container a log stream belongs to from its name. Accepted conventions (Fluent Bit's defaults):
 * - `kube.var.log.containers.<pod>_<namespace>_<container>-<container id>.log` (tag as stream name), also
 *   with any prefix ending in `.`, e.g. Container Insights' `<host>-application.var.log.containers.…`;
 * - `<pod>_<namespace>_<container>-<container id>` (`log_stream_template` from the file name).
 * The `-<container id>` (64 hex digits) is optional (the local shipper omits it). Returns undefined for any
 * other name.
 */
export function parseLogStreamName(logStream: string): LineSource | undefined {
  const m = CONTAINER_LOG_FILE.exec(logStream) ?? CONTAINER_STREAM.exec(logStream);
  if (!m) return undefined;
  return { pod: m[1] as string, namespace: m[2] as string, container: m[3] as string };
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

const sourceOf = (k: FluentBitRecord['kubernetes']): LineSource => {
  const source: LineSource = { pod: k.pod_name, namespace: k.namespace_name };
  if (k.container_name) source.container = k.container_name;
  if (k.host) source.node = k.host;
  return source;
};

/** The members of a record before its `kubernetes` member, as an object (`log`, `stream`…), if they parse. */
const headOf = (message: string, at: number): Record<string, unknown> | undefined => {
  const head = parseJson(`${message.slice(0, at)}}`);
  return typeof head === 'object' && head !== null && Object.keys(head).length > 0
    ? (head as Record<string, unknown>)
    : undefined;
};

/**
 * The `kubernetes` member of the last Fluent Bit record of a stream (the text from `,"kubernetes":{` to
 * the record's end) and the source it names. Fluent Bit writes that member last and the same for every
 * line of a container, so a record that ends with the same text needs only its head parsed: the members
 * before it (`time`, `stream`, `_p`, `log`: a tenth of the record, without the ids and digests). Sound for
 * any message: a quote in a JSON string is escaped, so `,"kubernetes":{` is a member boundary wherever it
 * parses as one; the head must parse as an object of its own (`<head>}`) and the member was checked to
 * continue such an object (`{"kubernetes":{…}}` parses, with no `log` or `stream` of its own), so the
 * message is that object plus this member, exactly what a full parse would read.
 */
export interface RecordTail {
  text: string;
  source: LineSource;
}

/**
 * What `sourceLogEvent` carries between the events of one stream: the last record's tail, or that the
 * stream's records do not split at their `kubernetes` member (then it stops trying: a record of another
 * layout would pay for a second parse of its member on every line).
 */
export interface StreamTail {
  last?: RecordTail;
  unsplit?: boolean;
}

const KUBERNETES_MEMBER = ',"kubernetes":{';

/** The record's `kubernetes` member as a reusable tail, when the record splits there (see `RecordTail`). */
function tailOf(message: string): RecordTail | undefined {
  const at = message.indexOf(KUBERNETES_MEMBER);
  if (at < 0) return undefined;
  const text = message.slice(at);
  const member = parseJson(`{${text.slice(1)}`);
  if (typeof member !== 'object' || member === null) return undefined;
  const m = member as Record<string, unknown>;
  if ('log' in m || 'stream' in m) return undefined;
  const record = asFluentBitRecord({ log: '', kubernetes: m.kubernetes });
  return record ? { text, source: sourceOf(record.kubernetes) } : undefined;
}

/**
 * Attributes one log event to a container. A JSON message with `log` and `kubernetes.{pod_name,
 * namespace_name}` is a Fluent Bit / Container Insights record; anything else is a plain line of the
 * stream named by `logStream`. Oversized events and lines with no known source are `Malformed`.
 * `tail` carries the previous record's `kubernetes` member between calls for the events of one stream
 * (see `RecordTail`, `StreamTail`): the lines of one container then parse only their heads and share one `LineSource`.
 */
export function sourceLogEvent(
  event: CloudWatchLogEvent,
  logStream: string,
  tail?: StreamTail,
): SourcedLine | Malformed {
  const message = event.message;
  if (message.length > MAX_LINE_LENGTH) {
    return { malformed: 'oversized-line', detail: `event ${event.id}: ${message.length} characters` };
  }
  if (message.startsWith('{') && message.includes('"kubernetes"')) {
    const known = tail?.last;
    if (known && message.endsWith(known.text) && message.length > known.text.length) {
      const head = headOf(message, message.length - known.text.length);
      if (head && typeof head.log === 'string' && isOptionalString(head.stream)) {
        return {
          id: event.id,
          timestamp: event.timestamp,
          source: known.source,
          text: stripNewline(head.log),
        };
      }
    }
    const record = asFluentBitRecord(parseJson(message));
    if (record) {
      // The next lines of this container may share this record's `kubernetes` member (and its source).
      const next = tail && !tail.unsplit ? tailOf(message) : undefined;
      if (tail && next) tail.last = next;
      else if (tail) tail.unsplit = true;
      const source = next?.source ?? sourceOf(record.kubernetes);
      return { id: event.id, timestamp: event.timestamp, source, text: stripNewline(record.log) };
    }
  }
  const source = parseLogStreamName(logStream);
  if (!source) {
    return {
      malformed: 'unattributed-line',
      detail: `event ${event.id}: not a Kubernetes record and stream ${logStream} names no pod`,
    };
  }
  return { id: event.id, timestamp: event.timestamp, source, text: stripNewline(event.message) };
}

const stripNewline = (s: string): string => (s.endsWith('\n') ? s.slice(0, s.endsWith('\r\n') ? -2 : -1) : s);

/** What a training container's line says. */
export type ClassifiedLine =
  | { kind: 'agent'; record: AgentRecord }
  /** A worker's line: `localRank` from the `[default<N>]:` prefix, absent for unprefixed output. */
  | { kind: 'worker'; localRank?: number; text: string };

/**
 * Splits agent status records (recognised by core/agent-protocol.ts `recogniseAgentLine`, as `rules check`
 * does) from training output. A line that claims to be an agent record but does not parse is `Malformed`
 * (`agent-record`).
 */
export function classifyLine(text: string): ClassifiedLine | Malformed {
  const agent = recogniseAgentLine(text);
  if (agent) {
    return 'record' in agent
      ? { kind: 'agent', record: agent.record }
      : { malformed: 'agent-record', detail: agent.invalid };
  }
  const m = WORKER_LINE_PREFIX.exec(text);
  if (m) return { kind: 'worker', localRank: Number(m[1]), text: text.slice(m[0].length) };
  return { kind: 'worker', text };
}
