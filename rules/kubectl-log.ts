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

const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2}) ?/;

/** Epoch ms of an RFC 3339 stamp (fractions beyond milliseconds are truncated). */
export function stampToMs(date: string, fraction: string | undefined, zone: string): number {
  const ms = (fraction ?? '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${date}.${ms}${zone}`);
}

/** Parses `text` (a whole file) read from `source` (the stream name prefix, e.g. the file's base name). */
export function parseKubectlLog(text: string, source: string): ParsedKubectlLog {
  const out: ParsedKubectlLog = {
    lines: [],
    firstTimestamp: undefined,
    unstamped: 0,
    agentRecords: 0,
    invalidAgentRecords: 0,
  };
  let time: number | undefined;
  const raw = text.split(/\r?\n/);
  if (raw.at(-1) === '') raw.pop();
  raw.forEach((rawLine, index) => {
    let body = rawLine;
    const stamp = STAMP.exec(rawLine);
    if (stamp) {
      const t = stampToMs(stamp[1] as string, stamp[2], stamp[3] as string);
      if (!Number.isNaN(t)) {
        time = t;
        out.firstTimestamp ??= t;
        body = rawLine.slice(stamp[0].length);
      }
    }
    if (time === undefined) {
      out.unstamped++;
      return;
    }
    const line = numberLine(body, source, time, index + 1);
    if (line === 'agent') out.agentRecords++;
    else if (line === 'invalid-agent') out.invalidAgentRecords++;
    else out.lines.push(line);
  });
  return out;
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
  const agent = recogniseAgentLine(body);
  if (agent) return 'record' in agent ? 'agent' : 'invalid-agent';
  const line: NumberedLogLine = { stream, timestamp, text: body, lineNumber };
  const prefix = WORKER_LINE_PREFIX.exec(body);
  if (prefix) {
    const localRank = Number(prefix[1]);
    line.text = body.slice(prefix[0].length);
    line.stream = `${stream}/${localRank}`;
    line.localRank = localRank;
    line.rank = localRank;
  }
  return line;
}
