/**
 * The saved-log formats of `rules check --log` (rules/log-formats.ts). Fixtures in test/fixtures/saved-logs/
 * hold test/fixtures/logs/nccl-watchdog-timeout.log (a `kubectl logs --timestamps` file) as the other two
 * formats deliver the same lines:
 * - `*.cloudwatch.json`: what `aws logs filter-log-events --log-group-name /aws/containerinsights/<cluster>/application
 *   --output json` prints (AWS CLI v2, FilterLogEvents response: `events[{logStreamName, timestamp, message,
 *   ingestionTime, eventId}]`, `searchedLogStreams[{logStreamName, searchedCompletely}]`), each message a record of
 *   the Amazon CloudWatch Observability add-on's Fluent Bit (stream names and record fields as in
 *   ../shared/reference/hyperpod-v1.2-and-aws-logs.md, Labels Off);
 * - `*.fluent-bit.jsonl`: those records one per line (Fluent Bit's JSON lines output: `time`, `stream`, `_p`,
 *   `log`, `kubernetes{…}`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import { parseKubectlLog } from '../../rules/kubectl-log.ts';
import { detectLogFormat, type LogFormat, parseLog } from '../../rules/log-formats.ts';
import { loadPresetRules } from '../../rules/presets/index.ts';

const fixture = (path: string) => readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');
const KUBECTL = fixture('logs/nccl-watchdog-timeout.log');
const CLOUDWATCH = fixture('saved-logs/nccl-watchdog-timeout.cloudwatch.json');
const FLUENT_BIT = fixture('saved-logs/nccl-watchdog-timeout.fluent-bit.jsonl');
const POD = 'gpt-pods-1-g0';

const record = (log: string, time: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    time,
    stream: 'stdout',
    _p: 'F',
    log,
    kubernetes: { pod_name: POD, namespace_name: 'team-a' },
    ...extra,
  });

describe('detectLogFormat', () => {
  it.each([
    [KUBECTL, 'kubectl'],
    [CLOUDWATCH, 'cloudwatch-json'],
    [FLUENT_BIT, 'fluent-bit'],
    ['{"events":[]}', 'cloudwatch-json'],
    ['{"events": [', 'cloudwatch-json'],
    ['  \n{"log":"x","time":"2026-01-01T00:00:00Z"}\n', 'fluent-bit'],
    ['iteration 1/ 10\n', 'kubectl'],
  ] as [string, LogFormat][])('reads %# as %s', (text, format) => {
    expect(detectLogFormat(text)).toBe(format);
  });
});

describe('parseLog', () => {
  it('gives the same lines, streams, ranks, times and line numbers for one log in the three formats', () => {
    const kubectl = parseLog(KUBECTL, POD);
    const cloudwatch = parseLog(CLOUDWATCH, 'download.json');
    const fluentBit = parseLog(FLUENT_BIT, 'records.jsonl');
    expect([kubectl.format, cloudwatch.format, fluentBit.format]).toEqual([
      'kubectl',
      'cloudwatch-json',
      'fluent-bit',
    ]);
    expect(kubectl.lines).toHaveLength(34);
    expect(cloudwatch.lines).toEqual(kubectl.lines);
    expect(fluentBit.lines).toEqual(kubectl.lines);
    expect(cloudwatch.firstTimestamp).toBe(kubectl.firstTimestamp);
    expect(fluentBit.firstTimestamp).toBe(kubectl.firstTimestamp);
    expect([cloudwatch.malformed, fluentBit.malformed]).toEqual([0, 0]);
  });

  it('and so the same findings from the rule engine', () => {
    const compiled = compileRules(loadPresetRules(['nccl']));
    const findings = (text: string, source: string) => {
      const log = parseLog(text, source);
      const start = log.firstTimestamp as number;
      const last = Math.max(...log.lines.map((l) => l.timestamp));
      return evaluateLines(compiled, initialRuleState(compiled, 0, start), log.lines, last).findings;
    };
    const expected = findings(KUBECTL, POD);
    expect(expected.map((f) => f.verdict)).toContain('FAULTED');
    expect(findings(CLOUDWATCH, 'x.json')).toEqual(expected);
    expect(findings(FLUENT_BIT, 'x.jsonl')).toEqual(expected);
  });

  it('counts and skips a truncated record, a record without log or time, and keeps the good lines’ positions', () => {
    const text = [
      record('[default0]:step 1', '2026-03-02T09:00:00.000000000Z'),
      record('[default0]:step 2', '2026-03-02T09:00:01.000000000Z').slice(0, 60),
      JSON.stringify({ time: '2026-03-02T09:00:02Z', kubernetes: { pod_name: POD } }),
      JSON.stringify({ log: 'no time' }),
      '',
      record('[default0]:step 3', '2026-03-02T09:00:03.000000000Z'),
    ].join('\n');
    const log = parseLog(text, 'f.jsonl');
    expect(log.format).toBe('fluent-bit');
    expect(log.lines.map((l) => [l.lineNumber, l.text])).toEqual([
      [1, 'step 1'],
      [6, 'step 3'],
    ]);
    expect(log.malformed).toBe(3);
    expect(log.skipped.map((s) => s.lineNumber)).toEqual([2, 3, 4]);
    expect(log.skipped[0]?.reason).toMatch(/not a JSON record \(truncated\?\)/);
    expect(log.skipped[2]?.reason).toMatch(/no RFC 3339 time/);
  });

  it('counts and skips bad events of a filter-log-events document, reads plain messages as lines of their stream, and numbers by event position', () => {
    const doc = {
      events: [
        { logStreamName: 's1', timestamp: 1000, message: record('[default1]:a', '2026-03-02T09:00:00.000Z') },
        { logStreamName: 's1', timestamp: 2000 },
        { logStreamName: 'raw-stream', timestamp: 3000, message: 'plain line\n' },
        { logStreamName: 's1', timestamp: 4000, message: '{"time":"2026-03-02T09:00:04Z","log":"trunc' },
      ],
      searchedLogStreams: [],
    };
    const log = parseLog(JSON.stringify(doc), 'x.json');
    expect(log.format).toBe('cloudwatch-json');
    expect(log.malformed).toBe(2);
    expect(log.skipped.map((s) => s.lineNumber)).toEqual([2, 4]);
    expect(log.lines.map((l) => [l.lineNumber, l.stream, l.rank, l.text])).toEqual([
      [3, 'raw-stream', undefined, 'plain line'],
      [1, `${POD}/1`, 1, 'a'],
    ]);
  });

  it('reads aws logs get-log-events output (one stream, no logStreamName) the same way', () => {
    const doc = JSON.parse(CLOUDWATCH) as { events: Record<string, unknown>[] };
    const single = {
      events: doc.events.map(({ timestamp, message, ingestionTime }) => ({
        timestamp,
        message,
        ingestionTime,
      })),
      nextForwardToken: 'f/38112345678901234567890123456789012345678901234567890263',
      nextBackwardToken: 'b/38112345678901234567890123456789012345678901234567890230',
    };
    const log = parseLog(JSON.stringify(single, null, 4), 'x.json');
    expect(log.format).toBe('cloudwatch-json');
    expect(log.lines).toEqual(parseLog(KUBECTL, POD).lines);
  });

  it('fails a cloudwatch-json file that is not the filter-log-events document as a whole', () => {
    expect(parseLog('{"events": [', 'x', 'cloudwatch-json').error).toMatch(
      /not the JSON of aws logs filter-log-events/,
    );
    expect(parseLog('{"items": []}', 'x', 'cloudwatch-json').error).toMatch(/expected \{"events"/);
    expect(parseLog(KUBECTL, 'x', 'cloudwatch-json').error).toBeDefined();
  });

  it('joins runtime-split pieces (_p P) of a stream onto the first piece', () => {
    const text = [
      record('[default0]:CUDA out of ', '2026-03-02T09:00:00.000Z', { _p: 'P' }),
      record('memory. Tried to allocate', '2026-03-02T09:00:00.001Z'),
      record('[default0]:next', '2026-03-02T09:00:01.000Z'),
    ].join('\n');
    const log = parseLog(text, 'x');
    expect(log.lines.map((l) => [l.lineNumber, l.text])).toEqual([
      [1, 'CUDA out of memory. Tried to allocate'],
      [3, 'next'],
    ]);
  });

  it('reads the records of the stock subscription fixture (test/fixtures/cloudwatch/) as Fluent Bit lines', () => {
    const payload = JSON.parse(fixture('cloudwatch/subscription-stock.json')) as {
      logEvents: { message: string }[];
    };
    const log = parseLog(payload.logEvents.map((e) => e.message).join('\n'), 'x');
    expect(log.format).toBe('fluent-bit');
    expect(log.malformed).toBe(0);
    expect(log.agentRecords).toBe(1);
    expect(log.lines.map((l) => [l.stream, l.rank, l.text, new Date(l.timestamp).toISOString()])).toEqual([
      ['llama-pods-0-g1/0', 0, 'step 12 | Loss: 2.1043', '2026-12-05T10:00:00.512Z'],
    ]);
  });

  it('leaves agent records out of the rule input in every format, as the kubectl parser does', () => {
    const agent = '{"trainkeeper":"agent/v1","ts":"2026-03-02T09:00:00.000Z","kind":"heartbeat"}';
    const kubectl = parseKubectlLog(`2026-03-02T09:00:00.000Z ${agent}\n`, POD);
    const fluentBit = parseLog(record(agent, '2026-03-02T09:00:00.000Z'), 'x');
    expect(fluentBit.lines).toEqual(kubectl.lines);
    expect([fluentBit.agentRecords + fluentBit.invalidAgentRecords]).toEqual([
      kubectl.agentRecords + kubectl.invalidAgentRecords,
    ]);
    expect(fluentBit.agentRecords + fluentBit.invalidAgentRecords).toBe(1);
  });
});
