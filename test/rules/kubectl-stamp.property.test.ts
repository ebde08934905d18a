/**
 * The fast kubectl timestamp scan (rules/kubectl-log.ts: a per-second cache, no regex per line) against the
 * Date.parse-based parse it replaced: the same epoch ms for generated RFC 3339 stamps (with and without
 * fractions, `Z` and offsets, impossible dates and hour 24 included), and the same parse of whole logs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numberLine, parseKubectlLog, rfc3339ToMs, stampToMs } from '../../rules/kubectl-log.ts';
import { parseLog } from '../../rules/log-formats.ts';

const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2}) ?/;
const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/** The regex + Date.parse parse of one stamp, as rules/log-formats.ts did it. */
function referenceMs(text: string): number | undefined {
  const m = RFC3339.exec(text);
  return m ? stampToMs(m[1] as string, m[2], m[3] as string) : undefined;
}

/** The kubectl parse as it was: split on /\r?\n/, a regex and Date.parse per line. */
function referenceParse(text: string, source: string) {
  const out = {
    lines: [] as unknown[],
    firstTimestamp: undefined as number | undefined,
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

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Mostly valid stamps; hours up to 24, minutes/seconds up to 60 and days up to 31 in any month too. */
const stamp = fc
  .record({
    year: fc.oneof(fc.integer({ min: 1970, max: 2100 }), fc.integer({ min: 0, max: 9999 })),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(24, 25)),
    minute: fc.oneof(fc.integer({ min: 0, max: 59 }), fc.constant(60)),
    second: fc.oneof(fc.integer({ min: 0, max: 59 }), fc.constant(60)),
    fraction: fc.option(fc.stringMatching(/^\d{1,12}$/), { nil: undefined }),
    zone: fc.oneof(
      fc.constant('Z'),
      fc
        .record({
          sign: fc.constantFrom('+', '-'),
          h: fc.integer({ min: 0, max: 24 }),
          m: fc.integer({ min: 0, max: 59 }),
        })
        .map(({ sign, h, m }) => `${sign}${pad(h, 2)}:${pad(m, 2)}`),
    ),
  })
  .map(
    (s) =>
      `${pad(s.year, 4)}-${pad(s.month, 2)}-${pad(s.day, 2)}T${pad(s.hour, 2)}:${pad(s.minute, 2)}:${pad(s.second, 2)}${s.fraction === undefined ? '' : `.${s.fraction}`}${s.zone}`,
  );

/** Runs of stamps sharing their second (what the cache sees in a real log). */
const sameSecond = fc
  .tuple(stamp, fc.array(fc.stringMatching(/^\d{1,9}$/), { minLength: 1, maxLength: 5 }))
  .map(([s, fractions]) => {
    const m = RFC3339.exec(s) as RegExpExecArray;
    return fractions.map((f) => `${m[1]}.${f}${m[3]}`);
  });

const line = fc.oneof(
  fc
    .tuple(stamp, fc.constantFrom(' ', ''), fc.string({ maxLength: 20 }))
    .map(([s, sp, t]) => `${s}${sp}${t}`),
  stamp.map((s) => `${s} [default3]: iteration 7/`),
  stamp.map((s) => `${s} {"trainkeeper":"agent/v1","broken"`),
  fc.constantFrom('', 'no stamp', '2026-03-01T10:00:00.Z x', '2026-03-01T10:00:00+0100 x', '  {x'),
  fc.string({ maxLength: 30 }),
);

describe('fast RFC 3339 scan', () => {
  it('gives what the Date.parse-based parse gives, for one stamp at a time and in runs of one second', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            stamp.map((s) => [s]),
            sameSecond,
          ),
          { maxLength: 10 },
        ),
        (groups) => {
          for (const s of groups.flat()) expect(rfc3339ToMs(s)).toStrictEqual(referenceMs(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects what is not exactly a stamp', () => {
    for (const s of [
      '',
      '2026-03-01T10:00:00',
      '2026-03-01T10:00:00.Z',
      '2026-03-01T10:00:00.5',
      '2026-03-01 10:00:00Z',
      '2026-03-01T10:00:00Z ',
      '2026-03-01T10:00:00+01',
      '2026-03-01t10:00:00z',
    ]) {
      expect(rfc3339ToMs(s)).toBe(referenceMs(s));
    }
  });

  it('parses whole logs (\\n and \\r\\n, unstamped and empty lines) as the regex parse did', () => {
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 30 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        (lines, eol, trailing) => {
          const text = lines.join(eol) + (trailing ? eol : '');
          expect(parseKubectlLog(text, 'pod')).toStrictEqual(referenceParse(text, 'pod'));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('parses a log read as bytes (non-ASCII and invalid UTF-8 included) as the decoded text', () => {
    const unicodeLine = fc.oneof(
      line,
      fc.tuple(stamp, fc.string({ unit: 'grapheme', maxLength: 12 })).map(([s, t]) => `${s} ██▍ ${t}`),
      fc.string({ unit: 'binary', maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            unicodeLine.map((l) => Buffer.from(l)),
            fc.uint8Array({ maxLength: 12 }).map(Buffer.from),
          ),
          {
            maxLength: 30,
          },
        ),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        (lines, eol, trailing) => {
          const sep = Buffer.from(eol);
          const parts = lines.flatMap((l, i) => (i === 0 ? [l] : [sep, l]));
          const bytes = Buffer.concat(trailing ? [...parts, sep] : parts);
          const text = bytes.toString('utf8');
          expect(parseKubectlLog(bytes, 'pod')).toStrictEqual(referenceParse(text, 'pod'));
          expect(parseLog(new Uint8Array(bytes), 'pod')).toStrictEqual(parseLog(text, 'pod'));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('parses a log of several MB (lines across the decoding chunks) read as bytes as the decoded text', () => {
    const parts: string[] = [];
    for (let i = 0; parts.length < 30_000; i++) {
      const ms = Date.UTC(2026, 2, 1) + i * 37;
      const stamp = `${new Date(ms).toISOString().slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}123Z`;
      const text =
        i % 7 === 0 ? `[default${i % 8}]: Epoch 0: ${i % 100}%|██▍ | loss=${i}` : `x`.repeat(i % 211);
      parts.push(i % 13 === 0 ? `continued ${i}` : `${stamp} ${text}`);
    }
    const text = `${parts.join('\r\n')}\n`;
    const bytes = Buffer.from(text);
    expect(bytes.length).toBeGreaterThan(3 << 20);
    expect(parseKubectlLog(bytes, 'pod')).toStrictEqual(referenceParse(text, 'pod'));
  });
});
