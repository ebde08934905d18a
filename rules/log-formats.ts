/**
 * The saved-log formats `trainkeeper rules check --log` reads, each parsed into the same numbered lines the
 * kubectl parser (rules/kubectl-log.ts) gives, so findings do not depend on where the log was downloaded:
 *
 * | format | what it is | a line's time | its stream |
 * |---|---|---|---|
 * | `kubectl` | `kubectl logs --timestamps` (one pod) | the leading RFC 3339 stamp | the file's name |
 * | `cloudwatch-json` | `aws logs filter-log-events --output json`: `{"events":[{logStreamName, timestamp, message, ingestionTime, eventId}], "searchedLogStreams":[…]}`; each `message` a Fluent Bit record | the record's `time` (else the event's `timestamp`) | the record's `kubernetes.pod_name` (else the `logStreamName`) |
 * | `fluent-bit` | one Fluent Bit record per line (JSON lines), as the add-on writes it: `{time, stream, _p, log, kubernetes{pod_name, namespace_name, …}}` | `time` | `kubernetes.pod_name` (else the file's name) |
 *
 * `aws logs get-log-events --output json` (one stream: `{"events":[{timestamp, message, ingestionTime}],
 * "nextForwardToken", …}`, no `logStreamName`) reads as `cloudwatch-json` too.
 *
 * In every format a `[default<N>]:` prefix makes the stream `<stream>/<N>` with rank N, and agent records
 * are left out (rules/kubectl-log.ts `numberLine`). `lineNumber` is the 1-based position of the line, the
 * event (`cloudwatch-json`: in `events`) or the record. A `cloudwatch-json` message that is not JSON is a
 * plain line (the raw dialect: one stream per container). Records split by the runtime (`_p: "P"`, when no
 * multiline parser joined them) are joined with the following record of the same stream, at the first
 * one's position and time. An event or record that does not parse (a truncated record is no longer JSON) is
 * counted and skipped, as the logs Lambda does; only a `cloudwatch-json` file that is not that JSON document
 * fails as a whole. JSON formats' lines are ordered by time (stable), as `filter-log-events` interleaves
 * streams.
 *
 * Invariants: pure; never throws for bad content.
 */
import { z } from 'zod';
import { type NumberedLogLine, numberLine, parseKubectlLog, rfc3339ToMs } from './kubectl-log.ts';

/** The formats `rules check` reads. */
export const LOG_FORMATS = ['kubectl', 'cloudwatch-json', 'fluent-bit'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** One event or record skipped, for the caller's message. */
export interface SkippedEntry {
  lineNumber: number;
  reason: string;
}

/** The parse of one saved log in any format. */
export interface ParsedLog {
  format: LogFormat;
  lines: NumberedLogLine[];
  /** The earliest time in the log (the job's start for `rules check`), epoch ms; undefined = no usable line. */
  firstTimestamp: number | undefined;
  /** `kubectl`: lines before the first timestamp. */
  unstamped: number;
  agentRecords: number;
  invalidAgentRecords: number;
  /** Events/records that do not parse (counted and skipped). */
  malformed: number;
  /** The first few of them (at most `MAX_SKIPPED_REPORTED`). */
  skipped: SkippedEntry[];
  /** The whole file is unusable in this format (then `lines` is empty). */
  error?: string;
}

/** How many skipped entries are kept for the message. */
export const MAX_SKIPPED_REPORTED = 5;

/** A Fluent Bit record as the stock Container Insights add-on writes it (extra keys are ignored). */
export const FluentBitRecord = z.object({
  time: z.string().optional(),
  stream: z.string().optional(),
  _p: z.enum(['F', 'P']).optional(),
  log: z.string(),
  kubernetes: z
    .object({ pod_name: z.string().min(1) })
    .partial()
    .optional(),
});

/** One event of `aws logs filter-log-events --output json`. */
export const FilterLogEventsEvent = z.object({
  logStreamName: z.string().optional(),
  timestamp: z.number(),
  message: z.string(),
  ingestionTime: z.number().optional(),
  eventId: z.string().optional(),
});

/** The document `aws logs filter-log-events --output json` prints. */
export const FilterLogEventsOutput = z.object({
  events: z.array(z.unknown()),
  searchedLogStreams: z.array(z.unknown()).optional(),
  nextToken: z.string().optional(),
});

/** Epoch ms of a record's `time` (the runtime's stamp, as `kubectl logs --timestamps` prints it). */
function recordTime(time: string | undefined): number | undefined {
  const t = time === undefined ? undefined : rfc3339ToMs(time);
  return t === undefined || Number.isNaN(t) ? undefined : t;
}

/**
 * The format of `text`: a JSON document with `events` is `cloudwatch-json`; a first non-empty line that is
 * a JSON object is `fluent-bit`; anything else `kubectl`.
 */
export function detectLogFormat(text: string): LogFormat {
  const head = text.trimStart();
  if (!head.startsWith('{')) return 'kubectl';
  // `filter-log-events` pretty-prints: its first key is "events" (or the document is one JSON value).
  if (/^\{\s*"(events|searchedLogStreams|nextToken|nextForwardToken)"\s*:/.test(head))
    return 'cloudwatch-json';
  const firstLine = head.split(/\r?\n/, 1)[0] ?? '';
  try {
    const value = JSON.parse(firstLine);
    if (value && typeof value === 'object' && 'events' in value) return 'cloudwatch-json';
    return 'fluent-bit';
  } catch {
    return 'cloudwatch-json';
  }
}

interface Entry {
  lineNumber: number;
  time: number;
  stream: string;
  /** A runtime-split piece (`_p: "P"`) that continues in the next entry of the same stream. */
  partial: boolean;
  text: string;
}

/**
 * What the first bytes of a file say of its format, as `detectLogFormat` of its text would: `kubectl` when
 * the first byte after ASCII whitespace is printable ASCII other than `{` (a kubectl log: no decoding of the
 * whole file), `text` when the decoded text has to decide, undefined when `bytes` is all whitespace (the
 * bytes after it decide; a file of whitespace only is `kubectl`). `rules check` reads a kubectl log a block
 * at a time once the first block said `kubectl`.
 */
export function formatOfBytes(bytes: Uint8Array): 'kubectl' | 'text' | undefined {
  for (const b of bytes) {
    if (b === 32 || (b >= 9 && b <= 13)) continue;
    return b < 0x80 && b !== 0x7b ? 'kubectl' : 'text';
  }
  return undefined;
}

/**
 * Parses `input` (a file's text, or its UTF-8 bytes: the same result, a kubectl log read faster) read from
 * `source` (the file's base name) in `format` (detected when absent).
 */
export function parseLog(input: string | Uint8Array, source: string, format?: LogFormat): ParsedLog {
  if (typeof input !== 'string') {
    const known = format ?? formatOfBytes(input) ?? 'kubectl';
    if (known === 'kubectl')
      return { format: known, ...parseKubectlLog(input, source), malformed: 0, skipped: [] };
    // 'text': the format is detected from the text.
    return parseText(
      Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8'),
      source,
      format,
    );
  }
  return parseText(input, source, format);
}

function parseText(text: string, source: string, format: LogFormat = detectLogFormat(text)): ParsedLog {
  if (format === 'kubectl') return { format, ...parseKubectlLog(text, source), malformed: 0, skipped: [] };
  const out: ParsedLog = {
    format,
    lines: [],
    firstTimestamp: undefined,
    unstamped: 0,
    agentRecords: 0,
    invalidAgentRecords: 0,
    malformed: 0,
    skipped: [],
  };
  const skip = (lineNumber: number, reason: string) => {
    out.malformed++;
    if (out.skipped.length < MAX_SKIPPED_REPORTED) out.skipped.push({ lineNumber, reason });
  };
  const entries: Entry[] = [];
  if (format === 'cloudwatch-json') {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return { ...out, error: `not the JSON of aws logs filter-log-events: ${(err as Error).message}` };
    }
    const parsed = FilterLogEventsOutput.safeParse(doc);
    if (!parsed.success) {
      return { ...out, error: 'not the JSON of aws logs filter-log-events: expected {"events": [...]}' };
    }
    parsed.data.events.forEach((raw, index) => {
      const lineNumber = index + 1;
      const event = FilterLogEventsEvent.safeParse(raw);
      if (!event.success) {
        skip(
          lineNumber,
          `event ${lineNumber}: ${event.error.issues[0]?.path.join('.')} ${event.error.issues[0]?.message}`,
        );
        return;
      }
      const e = event.data;
      const stream = e.logStreamName ?? source;
      if (!e.message.trimStart().startsWith('{')) {
        entries.push({
          lineNumber,
          time: e.timestamp,
          stream,
          partial: false,
          text: stripNewline(e.message),
        });
        return;
      }
      const record = parseRecord(e.message);
      if (typeof record === 'string') {
        skip(lineNumber, `event ${lineNumber}: ${record}`);
        return;
      }
      entries.push({
        lineNumber,
        time: recordTime(record.time) ?? e.timestamp,
        stream: record.kubernetes?.pod_name ?? stream,
        partial: record._p === 'P',
        text: stripNewline(record.log),
      });
    });
  } else {
    const raw = text.split(/\r?\n/);
    raw.forEach((line, index) => {
      const lineNumber = index + 1;
      if (line.trim() === '') return;
      const record = parseRecord(line);
      if (typeof record === 'string') {
        skip(lineNumber, `line ${lineNumber}: ${record}`);
        return;
      }
      const time = recordTime(record.time);
      if (time === undefined) {
        skip(lineNumber, `line ${lineNumber}: no RFC 3339 time`);
        return;
      }
      entries.push({
        lineNumber,
        time,
        stream: record.kubernetes?.pod_name ?? source,
        partial: record._p === 'P',
        text: stripNewline(record.log),
      });
    });
  }
  // Join runtime-split pieces (per stream) onto their first piece.
  const open = new Map<string, Entry>();
  const joined: Entry[] = [];
  for (const entry of entries) {
    const head = open.get(entry.stream);
    if (head) {
      head.text += entry.text;
      head.partial = entry.partial;
      if (!entry.partial) open.delete(entry.stream);
      continue;
    }
    joined.push(entry);
    if (entry.partial) open.set(entry.stream, entry);
  }
  joined.sort((a, b) => a.time - b.time);
  for (const entry of joined) {
    const time = entry.time;
    out.firstTimestamp = Math.min(out.firstTimestamp ?? time, time);
    const line = numberLine(entry.text, entry.stream, time, entry.lineNumber);
    if (line === 'agent') out.agentRecords++;
    else if (line === 'invalid-agent') out.invalidAgentRecords++;
    else out.lines.push(line);
  }
  return out;
}

/** A Fluent Bit record from its JSON text, or why it is not one. */
function parseRecord(text: string): z.infer<typeof FluentBitRecord> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not a JSON record (truncated?): ${(err as Error).message}`;
  }
  const record = FluentBitRecord.safeParse(value);
  if (!record.success) {
    const issue = record.error.issues[0];
    return `not a Fluent Bit record: ${issue?.path.join('.') || 'record'} ${issue?.message ?? ''}`.trim();
  }
  return record.data;
}

const stripNewline = (s: string): string => s.replace(/\r?\n$/, '');
