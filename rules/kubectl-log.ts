/**
 * Parses `kubectl logs --timestamps` output (what `trainkeeper rules check --log` reads) into `LogLine`s.
 *
 * Format: `<RFC 3339 timestamp> <text>` per line. A line without a leading timestamp inherits the previous
 * line's time (a multi-line message pasted without stamps). Worker lines forwarded torchrun-style carry
 * `[default<N>]:`; the prefix is removed, N is the local rank, the stream is `<source>/<N>`, and `rank` is
 * N too (one file is one pod, whose global ranks the file does not tell). Lines
 * without the prefix (the launcher, the kernel) form the stream `<source>` with no rank. The agent's
 * structured JSON records (`{"trainkeeper":"agent/v1",...}`) are not rule input and are left out, and so
 * are lines that claim to be records but do not parse: recognised by core/agent-protocol.ts
 * `recogniseAgentLine`, exactly as the logs Lambda recognises them.
 *
 * Invariants: pure; one output line per input line that has text (in order), with its 1-based
 * `lineNumber`; never throws on bad input — a file that starts without a timestamp is an error the caller
 * reports (`firstTimestamp` is undefined), lines before the first timestamp are dropped and counted.
 */
import { recogniseAgentLine, WORKER_LINE_PREFIX } from '../core/agent-protocol.ts';
import type { LogLine } from './types.ts';

/** A parsed line and where it came from. */
export interface NumberedLogLine extends LogLine {
  /** 1-based line number in the input. */
  lineNumber: number;
  /** The local rank from `[default<N>]:`, when present. */
  localRank?: number;
}

/** The parse of one file. */
export interface ParsedKubectlLog {
  lines: NumberedLogLine[];
  /** The first timestamp in the file (the job's start for `rules check`), epoch ms. */
  firstTimestamp: number | undefined;
  /** Lines before the first timestamp (no time to give them). */
  unstamped: number;
  /** Agent JSON records skipped. */
  agentRecords: number;
  /** Lines that claim to be agent records but do not parse: skipped too, as the logs Lambda skips them. */
  invalidAgentRecords: number;
}

/** Epoch ms of an RFC 3339 stamp (fractions beyond milliseconds are truncated). */
export function stampToMs(date: string, fraction: string | undefined, zone: string): number {
  const ms = (fraction ?? '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${date}.${ms}${zone}`);
}

const C_0 = 48;
const C_9 = 57;
const C_DASH = 45;
const C_PLUS = 43;
const C_COLON = 58;
const C_DOT = 46;
const C_T = 84;
const C_Z = 90;
const C_SPACE = 32;
const C_CR = 13;
const C_LF = 10;
/** Bytes decoded at a time by `parseKubectlLog`. */
const CHUNK_BYTES = 1 << 16;
const C_LBRACE = 123;
const C_LBRACKET = 91;

const isDigit = (c: number): boolean => c >= C_0 && c <= C_9;

/** The last `YYYY-MM-DDTHH:MM:SS` seen by `scanStamp`, its zone, and their epoch ms (a one-entry cache). */
let cachedSeconds = '';
let cachedZone = '';
let cachedBase = Number.NaN;

/** Set by `scanStamp`: the stamp's epoch ms (NaN when the date does not exist, as `Date.parse` says). */
let scannedMs = Number.NaN;

/**
 * Scans an RFC 3339 stamp at `text[start]` (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`), not reading at or
 * past `end`. Returns the index just past the zone, or -1 when there is none there; sets `scannedMs` to what
 * `stampToMs` gives for it. Lines of one second share its prefix, so `Date.parse` runs once per second (and
 * zone) and the fraction's milliseconds are added; an hour of 24 (which `Date.parse` treats specially) takes
 * the `stampToMs` path. No regex and no string built per line.
 */
function scanStamp(text: string, start: number, end: number): number {
  if (end - start < 20) return -1;
  const s = start;
  if (
    !isDigit(text.charCodeAt(s)) ||
    !isDigit(text.charCodeAt(s + 1)) ||
    !isDigit(text.charCodeAt(s + 2)) ||
    !isDigit(text.charCodeAt(s + 3)) ||
    text.charCodeAt(s + 4) !== C_DASH ||
    !isDigit(text.charCodeAt(s + 5)) ||
    !isDigit(text.charCodeAt(s + 6)) ||
    text.charCodeAt(s + 7) !== C_DASH ||
    !isDigit(text.charCodeAt(s + 8)) ||
    !isDigit(text.charCodeAt(s + 9)) ||
    text.charCodeAt(s + 10) !== C_T ||
    !isDigit(text.charCodeAt(s + 11)) ||
    !isDigit(text.charCodeAt(s + 12)) ||
    text.charCodeAt(s + 13) !== C_COLON ||
    !isDigit(text.charCodeAt(s + 14)) ||
    !isDigit(text.charCodeAt(s + 15)) ||
    text.charCodeAt(s + 16) !== C_COLON ||
    !isDigit(text.charCodeAt(s + 17)) ||
    !isDigit(text.charCodeAt(s + 18))
  ) {
    return -1;
  }
  let i = s + 19;
  let ms = 0;
  let fractionStart = -1;
  if (i < end && text.charCodeAt(i) === C_DOT) {
    fractionStart = i + 1;
    let j = fractionStart;
    while (j < end && isDigit(text.charCodeAt(j))) {
      if (j - fractionStart < 3) ms = ms * 10 + (text.charCodeAt(j) - C_0);
      j++;
    }
    if (j === fractionStart) return -1;
    for (let k = Math.min(j - fractionStart, 3); k < 3; k++) ms *= 10;
    i = j;
  }
  if (i >= end) return -1;
  const zoneStart = i;
  const z = text.charCodeAt(i);
  if (z === C_Z) i += 1;
  else if (
    (z === C_PLUS || z === C_DASH) &&
    i + 6 <= end &&
    isDigit(text.charCodeAt(i + 1)) &&
    isDigit(text.charCodeAt(i + 2)) &&
    text.charCodeAt(i + 3) === C_COLON &&
    isDigit(text.charCodeAt(i + 4)) &&
    isDigit(text.charCodeAt(i + 5))
  )
    i += 6;
  else return -1;
  const zoneLength = i - zoneStart;
  if (
    cachedZone.length === zoneLength &&
    text.startsWith(cachedSeconds, s) &&
    text.startsWith(cachedZone, zoneStart)
  ) {
    scannedMs = cachedBase + ms;
    return i;
  }
  const seconds = text.slice(s, s + 19);
  const zone = text.slice(zoneStart, i);
  if (text.charCodeAt(s + 11) === C_0 + 2 && text.charCodeAt(s + 12) === C_0 + 4) {
    const fraction = fractionStart < 0 ? undefined : text.slice(fractionStart, zoneStart);
    scannedMs = stampToMs(seconds, fraction, zone);
    return i;
  }
  cachedSeconds = seconds;
  cachedZone = zone;
  cachedBase = Date.parse(`${seconds}.000${zone}`);
  scannedMs = cachedBase + ms;
  return i;
}

/**
 * Epoch ms of `text` when it is exactly an RFC 3339 stamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`),
 * NaN when the date does not exist, undefined when `text` is not such a stamp. Equal to `stampToMs` of its
 * parts.
 */
export function rfc3339ToMs(text: string): number | undefined {
  return scanStamp(text, 0, text.length) === text.length ? scannedMs : undefined;
}

/**
 * Parses `kubectl logs --timestamps` output handed over in pieces of any size, so that a caller can read a
 * big file a block at a time and drop each block's lines once evaluated (`rules check` does: bounded
 * memory). `push(bytes)` returns the lines that `bytes` completes; the unfinished last line is kept (its
 * bytes copied, so the caller may reuse its buffer) until a later `push` or `end` completes it. Pieces may
 * split a line, a `\r\n` or a UTF-8 sequence anywhere: the lines are those of the whole input, as
 * `parseKubectlLog` gives them. The counts (`firstTimestamp`, `unstamped`, …) cover what was parsed so far.
 */
export class KubectlLogParser {
  /** The first timestamp seen (the job's start for `rules check`), epoch ms. */
  firstTimestamp: number | undefined = undefined;
  /** Lines before the first timestamp (no time to give them). */
  unstamped = 0;
  /** Agent JSON records skipped. */
  agentRecords = 0;
  /** Lines that claim to be agent records but do not parse. */
  invalidAgentRecords = 0;
  private time: number | undefined = undefined;
  private lineNumber = 0;
  /** The bytes of the line not finished by the last `push`, in pieces (joined once the line ends). */
  private carry: Buffer[] = [];
  private out: NumberedLogLine[] = [];

  constructor(private readonly source: string) {}

  /** The lines `bytes` completes, in order (see the class comment). */
  push(bytes: Uint8Array): NumberedLogLine[] {
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let from = 0;
    if (this.carry.length > 0) {
      const lf = chunk.indexOf(C_LF);
      if (lf < 0) {
        this.carry.push(Buffer.from(chunk));
        return [];
      }
      const line = Buffer.concat([...this.carry, chunk.subarray(0, lf + 1)]);
      this.carry = [];
      this.bytes(line, 0, line.length);
      from = lf + 1;
    }
    const last = chunk.lastIndexOf(C_LF);
    if (last >= from) this.bytes(chunk, from, last + 1);
    const rest = Math.max(from, last + 1);
    if (rest < chunk.length) this.carry.push(Buffer.from(chunk.subarray(rest)));
    return this.take();
  }

  /** The last line, when the input does not end with `\n` (a final `\r` is then kept: no `\n` follows). */
  end(): NumberedLogLine[] {
    if (this.carry.length > 0) {
      const text = Buffer.concat(this.carry).toString('utf8');
      this.carry = [];
      this.line(text, 0, text.length);
    }
    return this.take();
  }

  /** Parses a whole text (no byte decoding); then `end()`. */
  pushText(input: string): NumberedLogLine[] {
    const length = input.length;
    for (let start = 0; start < length; ) {
      let next = input.indexOf('\n', start);
      if (next < 0) next = length;
      let end = next;
      if (end > start && input.charCodeAt(end - 1) === C_CR && next < length) end--;
      this.line(input, start, end);
      start = next + 1;
    }
    return this.take();
  }

  private take(): NumberedLogLine[] {
    const lines = this.out;
    this.out = [];
    return lines;
  }

  /**
   * The complete lines of `bytes[from, to)` (`to` just past a `\n`). All-ASCII lines are sliced from blocks
   * of `CHUNK_BYTES` decoded as Latin-1 (byte i is char i: no UTF-8 decoding, no string per line); a line
   * with a byte >= 0x80 is decoded as UTF-8 on its own.
   */
  private bytes(bytes: Buffer, from: number, to: number): void {
    const nextHigh = (at: number): number => {
      for (let i = at; i < to; i++) if ((bytes[i] as number) >= 0x80) return i;
      return to;
    };
    let high = nextHigh(from);
    let block = '';
    let blockStart = 0;
    let blockEnd = 0;
    for (let start = from; start < to; ) {
      const next = bytes.indexOf(C_LF, start);
      let end = next;
      if (end > start && bytes[end - 1] === C_CR) end--;
      if (high < end) {
        const text = bytes.toString('utf8', start, end);
        this.line(text, 0, text.length);
        high = nextHigh(end);
      } else {
        if (end > blockEnd) {
          blockStart = start;
          blockEnd = Math.max(end, Math.min(start + CHUNK_BYTES, to));
          block = bytes.toString('latin1', blockStart, blockEnd);
        }
        this.line(block, start - blockStart, end - blockStart);
      }
      start = next + 1;
    }
  }

  /** One line, `text[start, end)` without its line end. */
  private line(text: string, start: number, end: number): void {
    const lineNumber = ++this.lineNumber;
    let bodyStart = start;
    const stampEnd = scanStamp(text, start, end);
    if (stampEnd >= 0 && !Number.isNaN(scannedMs)) {
      this.time = scannedMs;
      this.firstTimestamp ??= scannedMs;
      bodyStart = stampEnd < end && text.charCodeAt(stampEnd) === C_SPACE ? stampEnd + 1 : stampEnd;
    }
    const time = this.time;
    if (time === undefined) {
      this.unstamped++;
      return;
    }
    const line = numberLine(text.slice(bodyStart, end), this.source, time, lineNumber);
    if (line === 'agent') this.agentRecords++;
    else if (line === 'invalid-agent') this.invalidAgentRecords++;
    else this.out.push(line);
  }
}

/**
 * Parses `input` (a whole file: its text, or its UTF-8 bytes) read from `source` (the stream name prefix, e.g.
 * the file's base name). Bytes are split at \n and decoded a line at a time, which gives the same lines as
 * decoding the whole file first (a UTF-8 sequence never contains \n or \r) without building one giant
 * string (slow to decode when it is not all ASCII). `KubectlLogParser` parses the same in pieces.
 */
export function parseKubectlLog(input: string | Uint8Array, source: string): ParsedKubectlLog {
  const parser = new KubectlLogParser(source);
  const lines = typeof input === 'string' ? parser.pushText(input) : parser.push(input);
  lines.push(...parser.end());
  return {
    lines,
    firstTimestamp: parser.firstTimestamp,
    unstamped: parser.unstamped,
    agentRecords: parser.agentRecords,
    invalidAgentRecords: parser.invalidAgentRecords,
  };
}

/**
 * One line of training output as rule input, in every saved-log format (rules/log-formats.ts): an agent
 * record (`agent`) or a line that claims to be one and does not parse (`invalid-agent`) is not rule input;
 * else the line, with the `[default<N>]:` prefix removed and the stream `<stream>/<N>`, rank N.
 */
export function numberLine(
  body: string,
  stream: string,
  timestamp: number,
  lineNumber: number,
): NumberedLogLine | 'agent' | 'invalid-agent' {
  // An agent record starts with `{` after `trimStart` whitespace; a line starting with any other printable
  // ASCII character cannot be one (the common case: no trim, no search).
  const first = body.charCodeAt(0);
  if (first === C_LBRACE || first <= C_SPACE || first >= 0x7f || Number.isNaN(first)) {
    const agent = recogniseAgentLine(body);
    if (agent) return 'record' in agent ? 'agent' : 'invalid-agent';
  }
  const line: NumberedLogLine = { stream, timestamp, text: body, lineNumber };
  const prefix = first === C_LBRACKET ? WORKER_LINE_PREFIX.exec(body) : null;
  if (prefix) {
    const localRank = Number(prefix[1]);
    line.text = body.slice(prefix[0].length);
    line.stream = `${stream}/${localRank}`;
    line.localRank = localRank;
    line.rank = localRank;
  }
  return line;
}
