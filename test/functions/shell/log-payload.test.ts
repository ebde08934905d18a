import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyLine,
  decodeSubscriptionData,
  isMalformed,
  MAX_LINE_LENGTH,
  parseLogStreamName,
  type StreamTail,
  sourceLogEvent,
} from '../../../functions/shell/log-payload.ts';
import { eventMessage } from '../../../local/logs/container-insights.ts';
import { encodeSubscriptionPayload } from '../../../local/shipper.ts';
import { parseKubectlLog } from '../../../rules/kubectl-log.ts';

const HEX = 'a'.repeat(64);

describe('decodeSubscriptionData', () => {
  it('decodes a real gzip + base64 DATA_MESSAGE into its log events', () => {
    const event = encodeSubscriptionPayload('/aws/containerinsights/c/application', 'stream-1', [
      { id: '1', timestamp: 1000, message: 'hello' },
    ]);
    const payload = decodeSubscriptionData(event.awslogs.data);
    expect(isMalformed(payload)).toBe(false);
    if (isMalformed(payload)) return;
    expect(payload.logGroup).toBe('/aws/containerinsights/c/application');
    expect(payload.logEvents).toEqual([{ id: '1', timestamp: 1000, message: 'hello' }]);
  });

  it.each([
    ['text that is not base64', 'not base64 at all!', 'payload-base64'],
    [
      'base64 of bytes that are not gzip',
      Buffer.from('plain text, no gzip').toString('base64'),
      'payload-gzip',
    ],
    ['gzip of text that is not JSON', gzipSync('{oops').toString('base64'), 'payload-json'],
    [
      'JSON without the CloudWatch fields',
      gzipSync(JSON.stringify({ messageType: 'DATA_MESSAGE' })).toString('base64'),
      'payload-schema',
    ],
  ])('rejects %s with a bounded kind', (_name, data, kind) => {
    const result = decodeSubscriptionData(data);
    expect(isMalformed(result) && result.malformed).toBe(kind);
  });

  it.each<[string, unknown, string]>([
    [
      'a message that is not text',
      { id: '2', timestamp: 5, message: 7 },
      'payload.logEvents.1.message: expected a string',
    ],
    ['no id', { timestamp: 5, message: 'x' }, 'payload.logEvents.1.id: expected a string'],
    [
      'a timestamp that is text',
      { id: '2', timestamp: '5', message: 'x' },
      'payload.logEvents.1.timestamp: expected a number',
    ],
    ['an event that is not an object', 'x', 'payload.logEvents.1: expected an object'],
  ])('rejects a payload whose second event has %s, naming the event and field', (_name, event, detail) => {
    const body = {
      messageType: 'DATA_MESSAGE',
      owner: '1',
      logGroup: 'g',
      logStream: 's',
      subscriptionFilters: ['f'],
      logEvents: [{ id: '1', timestamp: 1, message: 'ok' }, event],
    };
    const result = decodeSubscriptionData(gzipSync(JSON.stringify(body)).toString('base64'));
    expect(result).toEqual({ malformed: 'payload-schema', detail });
  });
});

describe('parseLogStreamName', () => {
  it.each([
    [`kube.var.log.containers.job-a-0_default_pytorch-${HEX}.log`, 'job-a-0', 'default', 'pytorch'],
    [`ip-10-0-0-1-application.var.log.containers.p-1_team-a_main.log`, 'p-1', 'team-a', 'main'],
    [`job-b-worker-3_ml_trainer-${HEX}`, 'job-b-worker-3', 'ml', 'trainer'],
  ])('reads pod, namespace and container from %s', (stream, pod, namespace, container) => {
    expect(parseLogStreamName(stream)).toEqual({ pod, namespace, container });
  });

  it.each([['i-0123/syslog'], ['plain-stream'], ['a_b']])(
    'returns nothing for the foreign stream %s',
    (s) => {
      expect(parseLogStreamName(s)).toBeUndefined();
    },
  );
});

describe('sourceLogEvent', () => {
  it('attributes a Container Insights record by its kubernetes fields only: pod labels are not part of the source', () => {
    const message = JSON.stringify({
      log: '[default1]:step 5\n',
      stream: 'stdout',
      kubernetes: {
        pod_name: 'p-0',
        namespace_name: 'ns',
        container_name: 'c',
        host: 'node-1',
        labels: { 'trainkeeper.dev/job': 'j' },
      },
    });
    const line = sourceLogEvent({ id: '9', timestamp: 5, message }, 'whatever');
    expect(line).toEqual({
      id: '9',
      timestamp: 5,
      source: {
        pod: 'p-0',
        namespace: 'ns',
        container: 'c',
        node: 'node-1',
      },
      text: '[default1]:step 5',
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['no pod name', { log: 'x', kubernetes: { namespace_name: 'ns' } }],
    ['an empty namespace', { log: 'x', kubernetes: { pod_name: 'p-0', namespace_name: '' } }],
    ['a log that is not text', { log: 5, kubernetes: { pod_name: 'p-0', namespace_name: 'ns' } }],
    [
      'a stream that is not text',
      { log: 'x', stream: 1, kubernetes: { pod_name: 'p-0', namespace_name: 'ns' } },
    ],
    [
      'a container that is not text',
      { log: 'x', kubernetes: { pod_name: 'p-0', namespace_name: 'ns', container_name: 3 } },
    ],
    [
      'a host that is not text',
      { log: 'x', kubernetes: { pod_name: 'p-0', namespace_name: 'ns', host: {} } },
    ],
    ['kubernetes null', { log: 'x', kubernetes: null }],
  ])('takes a JSON message with %s for a plain line of its stream, not a record', (_, record) => {
    const message = JSON.stringify(record);
    const line = sourceLogEvent({ id: '1', timestamp: 5, message }, `q_other_c-${HEX}`);
    expect(line).toEqual({
      id: '1',
      timestamp: 5,
      source: { pod: 'q', namespace: 'other', container: 'c' },
      text: message,
    });
  });

  it.each([
    ['step 5\n', 'step 5'],
    ['step 5\r\n', 'step 5'],
    ['step 5', 'step 5'],
    ['step 5\n\n', 'step 5\n'],
    ['\n', ''],
  ])('strips one trailing line break from a record line %j', (log, text) => {
    const message = JSON.stringify({ log, kubernetes: { pod_name: 'p-0', namespace_name: 'ns' } });
    const line = sourceLogEvent({ id: '1', timestamp: 5, message }, 'whatever');
    expect(isMalformed(line) ? undefined : line.text).toBe(text);
  });

  it('reads a stream of records as it reads each alone when it reuses the previous kubernetes member', () => {
    // Records of a few containers in any key order, with log text that looks like record syntax, some
    // truncated (no longer JSON), some with a member written twice, and plain lines between them.
    const pods = [
      { pod_name: 'p-0', namespace_name: 'ns', container_name: 'c', host: 'n-1' },
      { pod_name: 'p-1', namespace_name: 'ns', container_name: 'c', host: 'n-2' },
      { pod_name: 'p-0', namespace_name: 'ns', container_name: 'agent' },
      { namespace_name: 'ns', container_name: 'c' },
    ];
    const text = fc
      .array(fc.constantFrom('step 5', ',"kubernetes":{', '"', '\\', '}', '{"log":"x"', '\n', ' '), {
        maxLength: 5,
      })
      .map((parts) => parts.join(''));
    const fluentBitOrder = ['time', 'stream', '_p', 'log', 'kubernetes'];
    const rarely = <T>(arb: fc.Arbitrary<T>, usual: T) =>
      fc.oneof({ arbitrary: fc.constant(usual), weight: 5 }, { arbitrary: arb, weight: 1 });
    const record = fc.record({
      keys: rarely(fc.shuffledSubarray([...fluentBitOrder, 'extra'], { minLength: 1 }), fluentBitOrder),
      log: rarely(fc.oneof(text, fc.constant(5)), 'step 5'),
      pod: fc.nat(pods.length - 1),
      cut: rarely(fc.nat(400), undefined as number | undefined),
      // a member written a second time (JSON.parse keeps the last)
      again: rarely(fc.constantFrom('kubernetes', 'log'), undefined as string | undefined),
    });
    const message = fc.oneof({ arbitrary: record, weight: 6 }, { arbitrary: text, weight: 1 }).map((r) => {
      if (typeof r === 'string') return r;
      const values: Record<string, unknown> = {
        time: '2026-12-06T03:42:58.716000000Z',
        stream: 'stdout',
        _p: 'F',
        log: r.log,
        kubernetes: pods[r.pod],
        extra: { kubernetes: pods[0] },
      };
      let json = JSON.stringify(Object.fromEntries(r.keys.map((k) => [k, values[k]])));
      if (r.again === 'kubernetes')
        json = json.replace(/}$/, `,"kubernetes":${JSON.stringify(pods[(r.pod + 1) % pods.length])}}`);
      if (r.again === 'log') json = json.replace(/}$/, ',"log":"again"}');
      return r.cut === undefined ? json : json.slice(0, r.cut);
    });
    let reused = 0;
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), (messages) => {
        const tail: StreamTail = {};
        for (const [i, m] of messages.entries()) {
          const event = { id: String(i), timestamp: i, message: m };
          if (tail.last && m.endsWith(tail.last.text)) reused++;
          expect(sourceLogEvent(event, `q_other_c-${HEX}`, tail)).toEqual(
            sourceLogEvent(event, `q_other_c-${HEX}`),
          );
        }
      }),
      { numRuns: 400 },
    );
    // not vacuous: many records ended with the member before them
    expect(reused).toBeGreaterThan(100);
  });

  it('parses only the head of a container-insights record that repeats the previous kubernetes member', () => {
    const source = { namespace: 'ns', pod: 'p-0', container: 'pytorch', node: 'n-1', image: 'img:1' };
    const tail: StreamTail = {};
    const lines = ['[default0]:step 1', '[default1]:step 1 ,"kubernetes":{"pod_name":"forged"}'].map(
      (line, i) =>
        sourceLogEvent(
          {
            id: String(i),
            timestamp: i,
            message: eventMessage({ ...source, stream: 'stdout', line, timestamp: i }, 'stock'),
          },
          'whatever',
          tail,
        ),
    );
    expect(lines.map((l) => (isMalformed(l) ? l : [l.source, l.text]))).toEqual([
      [{ pod: 'p-0', namespace: 'ns', container: 'pytorch', node: 'n-1' }, '[default0]:step 1'],
      [
        { pod: 'p-0', namespace: 'ns', container: 'pytorch', node: 'n-1' },
        '[default1]:step 1 ,"kubernetes":{"pod_name":"forged"}',
      ],
    ]);
    // one source object for the container's lines: the second record's member was not parsed again
    const [first, second] = lines;
    expect(first !== undefined && second !== undefined && !isMalformed(first) && !isMalformed(second)).toBe(
      true,
    );
    if (first && second && !isMalformed(first) && !isMalformed(second))
      expect(second.source).toBe(first.source);
  });

  it('attributes a plain line by its stream name', () => {
    const line = sourceLogEvent({ id: '1', timestamp: 5, message: 'x' }, `p_ns_c-${HEX}`);
    expect(isMalformed(line) ? undefined : line.source.pod).toBe('p');
  });

  it('skips a 1 MB line as oversized and a plain line in a foreign stream as unattributed', () => {
    const big = sourceLogEvent({ id: '1', timestamp: 5, message: 'x'.repeat(1024 * 1024) }, `p_ns_c-${HEX}`);
    expect(isMalformed(big) && big.malformed).toBe('oversized-line');
    expect(MAX_LINE_LENGTH).toBeLessThan(1024 * 1024);
    const foreign = sourceLogEvent({ id: '1', timestamp: 5, message: 'x' }, 'syslog');
    expect(isMalformed(foreign) && foreign.malformed).toBe('unattributed-line');
  });
});

describe('classifyLine', () => {
  it('parses an agent heartbeat as an agent record', () => {
    const line = JSON.stringify({
      trainkeeper: 'agent/v1',
      kind: 'heartbeat',
      ts: '2026-01-01T00:00:00Z',
      generation: 2,
      state: 'RUNNING',
      progress: { step: 7 },
    });
    const c = classifyLine(line);
    expect(!isMalformed(c) && c.kind === 'agent' && c.record.kind).toBe('heartbeat');
  });

  it('reports an agent record that does not match the schema as malformed', () => {
    const c = classifyLine('{"trainkeeper":"agent/v1","kind":"heartbeat"}');
    expect(isMalformed(c) && c.malformed).toBe('agent-record');
  });

  it.each([
    ['{"trainkeeper":"agent/v1","ts":"t","generation":0,"state":"RUNNING","kind":"heartbeat"}'],
    ['  {"trainkeeper": "agent/v1", "ts": "t", "generation": 0, "state": "READY", "kind": "state"}'],
    ['{"trainkeeper":"agent/v1","kind":"heartbeat"}'],
    ['{"trainkeeper":"agent/v1", truncated'],
    ['{"note":"agent/v1","trainkeeper":"agent/v1"}'],
    ['[default0]:{"trainkeeper":"agent/v1"}'],
    ['{"step": 5, "loss": 1.25}'],
    ['trainkeeper agent/v1 started'],
  ])('agrees with `rules check` (parseKubectlLog) on whether %j is rule input', (text) => {
    const c = classifyLine(text);
    const isRuleInput = !isMalformed(c) && c.kind === 'worker';
    const log = parseKubectlLog(`2026-03-01T10:00:00Z ${text}\n`, 'pod.log');
    expect(log.lines.length === 1).toBe(isRuleInput);
    expect(log.agentRecords + log.invalidAgentRecords).toBe(isRuleInput ? 0 : 1);
  });

  it.each([
    ['[default3]:loss 1.5', 3, 'loss 1.5'],
    ['[default12]:', 12, ''],
    ['no prefix here', undefined, 'no prefix here'],
  ])('splits the worker line %j into local rank %s and text', (text, localRank, rest) => {
    const c = classifyLine(text);
    expect(c).toEqual(
      localRank === undefined ? { kind: 'worker', text: rest } : { kind: 'worker', localRank, text: rest },
    );
  });
});
