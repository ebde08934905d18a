/**
 * `KubectlLogParser` (rules/kubectl-log.ts), which `rules check` feeds a file a block at a time: for any
 * split of the bytes into pieces — inside a line, inside a `\r\n`, inside a UTF-8 sequence, one byte at a
 * time — it gives exactly the lines and counts of `parseKubectlLog` on the whole input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KubectlLogParser, type NumberedLogLine, parseKubectlLog } from '../../rules/kubectl-log.ts';

/** Lines of every kind the parser tells apart, with multi-byte characters and both line ends. */
const LOG = Buffer.from(
  [
    'no stamp yet ██',
    '2026-03-01T10:00:00.123456789Z [default2]:hello ██▍ 你好',
    'continued without a stamp é',
    '2026-03-01T10:00:01+00:00 launcher line\r',
    '2026-03-01T10:00:02.5Z {"trainkeeper":"agent/v1","ts":"x","generation":0,"state":"RUNNING","kind":"heartbeat"}',
    '2026-03-01T10:00:03Z {"trainkeeper":"agent/v1","kind":"heartbeat"}',
    '',
    '2026-03-01T10:00:04.000Z [default7]:Epoch 0: 12%|██▍       | 12/100 [00:01<00:09] 🚀',
    '2026-03-01T10:00:05Z tail with a lone CR\r',
  ].join('\n'),
);

/** The parse of `bytes` handed to one parser in pieces cut at `cuts`. */
function parseInPieces(bytes: Uint8Array, cuts: number[], source: string) {
  const parser = new KubectlLogParser(source);
  const lines: NumberedLogLine[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    lines.push(...parser.push(bytes.subarray(from, cut)));
    from = cut;
  }
  lines.push(...parser.push(bytes.subarray(from)), ...parser.end());
  return {
    lines,
    firstTimestamp: parser.firstTimestamp,
    unstamped: parser.unstamped,
    agentRecords: parser.agentRecords,
    invalidAgentRecords: parser.invalidAgentRecords,
  };
}

describe('KubectlLogParser', () => {
  it('gives the whole-input parse for pieces of one byte (every split inside every sequence)', () => {
    const cuts = Array.from({ length: LOG.length - 1 }, (_, i) => i + 1);
    const whole = parseKubectlLog(LOG, 'pod');
    expect(whole.lines.map((l) => l.text)).toContain('hello ██▍ 你好');
    expect(parseInPieces(LOG, cuts, 'pod')).toStrictEqual(whole);
  });

  it('gives the whole-input parse for any split, with or without a final line end', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', '\n', '\r\n', '\r'),
        fc.array(fc.integer({ min: 0, max: LOG.length + 2 }), { maxLength: 12 }),
        (tail, cuts) => {
          const bytes = Buffer.concat([LOG, Buffer.from(tail)]);
          const inRange = cuts.map((c) => Math.min(c, bytes.length));
          expect(parseInPieces(bytes, inRange, 'pod')).toStrictEqual(parseKubectlLog(bytes, 'pod'));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps nothing of a piece it was given: the caller may overwrite its buffer', () => {
    const parser = new KubectlLogParser('pod');
    const buffer = Buffer.alloc(16);
    const lines: NumberedLogLine[] = [];
    for (let at = 0; at < LOG.length; at += buffer.length) {
      const n = LOG.copy(buffer, 0, at, at + buffer.length);
      lines.push(...parser.push(buffer.subarray(0, n)));
      buffer.fill(0x58); // 'X' over the block, as the next read would
    }
    lines.push(...parser.end());
    expect(lines).toStrictEqual(parseKubectlLog(LOG, 'pod').lines);
  });

  it('joins a line given in many pieces without a line end among them', () => {
    const line = `2026-03-01T10:00:00Z ${'█'.repeat(5000)}`;
    const bytes = Buffer.from(`${line}\n`);
    const cuts = Array.from({ length: 300 }, (_, i) => (i + 1) * 50);
    const parsed = parseInPieces(bytes, cuts, 'pod');
    expect(parsed.lines.map((l) => l.text)).toEqual(['█'.repeat(5000)]);
  });
});
