/**
 * The log dialects the local plane speaks, against fixtures of what each really delivers and against the
 * `logs` handler's own decoding (functions/shell/log-payload.ts): every worker line and agent record must be
 * attributed to the pod that printed it, in every dialect.
 *
 * Fixtures (test/fixtures/cloudwatch/, decoded `awslogs.data` of a subscription delivery):
 * - `subscription-stock.json`: the Amazon CloudWatch Observability EKS add-on as installed — Container
 *   Insights' Fluent Bit (`application-log.conf`: tail + `multiline.parser docker, cri`, kubernetes filter
 *   `Labels Off`/`Annotations Off`, cloudwatch_logs output `log_stream_prefix ${HOST_NAME}-application.`),
 *   record fields as in the Container Insights user guide ("Set up Fluent Bit as a DaemonSet to send logs
 *   to CloudWatch Logs") and the subscription envelope of the CloudWatch Logs user guide ("Using
 *   CloudWatch Logs subscription filters", Lambda example);
 * - `subscription-labels.json`: the same with the kubernetes filter's `Labels On`;
 * - `subscription-raw.json`: Fluent Bit's cloudwatch_logs output with `log_key log` and
 *   `log_stream_prefix from-fluent-bit-` (plain text messages; the pod only in the stream name).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LOG_DIALECT_NAMES } from '../../cli/commands/local.ts';
import { AGENT_RECORD_MARKER } from '../../core/agent-protocol.ts';
import { POD_LABELS } from '../../core/observations.ts';
import {
  type CloudWatchLogsPayload,
  classifyLine,
  decodeSubscriptionData,
  isMalformed,
  sourceLogEvent,
} from '../../functions/shell/log-payload.ts';
import {
  containerId,
  criFragments,
  eventMessage,
  joinCriFragments,
  LOG_DIALECTS,
  type LogDialect,
  MAX_EVENT_BYTES,
} from '../../local/logs/container-insights.ts';
import { type CapturedLine, type CloudWatchLogsEvent, LogShipper } from '../../local/shipper.ts';
import { LABELS_FILTER_PATTERN, namespaceFilterPattern } from '../../stacks/log-filter.ts';

const fixture = (dialect: LogDialect): CloudWatchLogsPayload =>
  JSON.parse(
    readFileSync(new URL(`../fixtures/cloudwatch/subscription-${dialect}.json`, import.meta.url), 'utf8'),
  ) as CloudWatchLogsPayload;

const agentLine = JSON.stringify({
  trainkeeper: AGENT_RECORD_MARKER,
  ts: '2026-12-05T10:00:01.000Z',
  namespace: 'team-a',
  pod: 'llama-pods-0-g1',
  job: 'llama',
  generation: 1,
  state: 'RUNNING',
  kind: 'heartbeat',
});

const line = (over: Partial<CapturedLine> = {}): CapturedLine => ({
  namespace: 'team-a',
  pod: 'llama-pods-0-g1',
  container: 'pytorch',
  node: 'ip-10-1-2-3.us-west-2.compute.internal',
  labels: { [POD_LABELS.job]: 'llama' },
  stream: 'stdout',
  line: '[default0]:step 12 | Loss: 2.1043',
  timestamp: 1_796_464_800_512,
  ...over,
});

/** Everything the shipper delivers for `lines`, decoded by the handler's own decoder. */
async function ship(
  lines: CapturedLine[],
  options: { dialect?: LogDialect; filterPattern?: string } = {},
): Promise<{ payloads: CloudWatchLogsPayload[]; shipper: LogShipper }> {
  const delivered: CloudWatchLogsEvent[] = [];
  const shipper = new LogShipper({
    logGroup: '/aws/containerinsights/trainkeeper-local/application',
    deliver: async (e) => void delivered.push(e),
    ...options,
  });
  for (const l of lines) shipper.accept(l);
  await shipper.stop();
  const payloads = delivered.map((e) => {
    const p = decodeSubscriptionData(e.awslogs.data);
    if (isMalformed(p)) throw new Error(p.detail);
    return p;
  });
  return { payloads, shipper };
}

/** What the handler's decoding makes of each event: (pod, namespace, container, kind, text). */
function attribute(payload: CloudWatchLogsPayload) {
  return payload.logEvents.map((e) => {
    const sourced = sourceLogEvent(e, payload.logStream);
    if (isMalformed(sourced)) return { malformed: sourced.malformed };
    const classified = classifyLine(sourced.text);
    return {
      pod: sourced.source.pod,
      namespace: sourced.source.namespace,
      container: sourced.source.container,
      kind: isMalformed(classified) ? classified.malformed : classified.kind,
    };
  });
}

const expected = [
  { pod: 'llama-pods-0-g1', namespace: 'team-a', container: 'pytorch', kind: 'worker' },
  { pod: 'llama-pods-0-g1', namespace: 'team-a', container: 'pytorch', kind: 'agent' },
];

describe.each(LOG_DIALECTS)('the %s dialect', (dialect) => {
  it('fixture: the handler attributes the worker line and the agent record to the pod that printed them', () => {
    const payload = fixture(dialect);
    const data = gzipSync(JSON.stringify(payload)).toString('base64');
    const decoded = decodeSubscriptionData(data);
    expect(isMalformed(decoded)).toBe(false);
    expect(attribute(decoded as CloudWatchLogsPayload)).toEqual(expected);
  });

  it('shipper: its payloads attribute the same way, with the fixture stream name and record fields', async () => {
    const { payloads } = await ship([line(), line({ line: agentLine, timestamp: 1_796_464_801_000 })], {
      dialect,
    });
    expect(payloads).toHaveLength(1);
    const [payload] = payloads as [CloudWatchLogsPayload];
    expect(attribute(payload)).toEqual(expected);
    const real = fixture(dialect);
    const shape = (stream: string) => stream.replace(/-[0-9a-f]{64}\.log$/, '-<id>.log');
    expect(shape(payload.logStream)).toBe(shape(real.logStream));
    expect(payload.logStream).toContain(containerId(line()));
    if (dialect === 'raw') {
      expect(payload.logEvents.map((e) => e.message)).toEqual(real.logEvents.map((e) => e.message));
    } else {
      const keys = (m: string) => {
        const r = JSON.parse(m) as { kubernetes: object };
        return [Object.keys(r), Object.keys(r.kubernetes)];
      };
      expect(payload.logEvents.map((e) => keys(e.message))).toEqual(
        real.logEvents.map((e) => keys(e.message)),
      );
    }
  });
});

describe('the dialects', () => {
  it('are the choices of `trainkeeper local up --log-dialect`, stock first (the default)', () => {
    expect([...LOG_DIALECT_NAMES]).toEqual([...LOG_DIALECTS]);
    expect(LOG_DIALECTS[0]).toBe('stock');
  });
});

describe('the stock dialect', () => {
  it('carries no labels, and the labels dialect carries the pod labels', async () => {
    const stock = JSON.parse(eventMessage(line(), 'stock')) as { kubernetes: Record<string, unknown> };
    expect(stock.kubernetes).not.toHaveProperty('labels');
    expect(JSON.stringify(stock)).not.toContain(POD_LABELS.job);
    const labelled = JSON.parse(eventMessage(line(), 'labels')) as { kubernetes: { labels: object } };
    expect(labelled.kubernetes.labels).toEqual({ [POD_LABELS.job]: 'llama' });
  });

  it('splits a line over 16 KiB into CRI partial entries and joins them back into one record', () => {
    const long = `[default0]:${'x'.repeat(40 * 1024)}`;
    const parts = criFragments(long);
    expect(parts.map((p) => p.tag)).toEqual(['P', 'P', 'F']);
    expect(parts.every((p) => Buffer.byteLength(p.log) <= 16 * 1024)).toBe(true);
    expect(joinCriFragments(parts).log).toBe(long);
    const record = JSON.parse(eventMessage(line({ line: long }), 'stock')) as { _p: string; log: string };
    expect(record).toMatchObject({ _p: 'P', log: long });
  });

  it('never splits inside a UTF-8 character', () => {
    const long = 'é'.repeat(20_000);
    const parts = criFragments(long);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((p) => p.log).join('')).toBe(long);
  });

  it('truncates a record over the event limit as the output plugin does; the stream name still names the pod', async () => {
    const huge = `[default0]:${'y'.repeat(300 * 1024)}`;
    const { payloads } = await ship([line({ line: huge })]);
    const [event] = payloads[0]?.logEvents ?? [];
    expect(Buffer.byteLength(event?.message ?? '')).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(() => JSON.parse(event?.message ?? '')).toThrow();
    const [attributed] = attribute(payloads[0] as CloudWatchLogsPayload);
    expect(attributed).toMatchObject({ pod: 'llama-pods-0-g1', namespace: 'team-a', container: 'pytorch' });
  });
});

describe('the subscription filter pattern in the shipper', () => {
  const mix = [
    line(),
    line({ line: agentLine }),
    line({ namespace: 'kube-system', pod: 'coredns-5d78c9869d-abcde', container: 'coredns', labels: {} }),
    line({ namespace: 'web', pod: 'shop-7f9c-xyz', container: 'app', labels: { app: 'shop' } }),
  ];

  it("passes every line of the allowed namespaces (worker lines and agent records) and drops other namespaces' lines", async () => {
    const { payloads, shipper } = await ship(mix, { filterPattern: namespaceFilterPattern(['team-a']) });
    expect(payloads.flatMap(attribute)).toEqual([
      { pod: 'llama-pods-0-g1', namespace: 'team-a', container: 'pytorch', kind: 'worker' },
      { pod: 'llama-pods-0-g1', namespace: 'team-a', container: 'pytorch', kind: 'agent' },
    ]);
    expect(shipper.stats()).toEqual({ lines: 4, filtered: 2, payloads: 1, invocations: 1 });
  });

  it('shows why the labels filter fails with the stock add-on: it passes agent records only, never worker lines', async () => {
    const { payloads } = await ship(mix, { filterPattern: LABELS_FILTER_PATTERN });
    expect(payloads.flatMap(attribute).map((a) => a.kind)).toEqual(['agent']);
    const labelled = await ship(mix, { filterPattern: LABELS_FILTER_PATTERN, dialect: 'labels' });
    expect(labelled.payloads.flatMap(attribute).map((a) => a.kind)).toEqual(['worker', 'agent']);
  });

  it('refuses a pattern outside the supported subset when the shipper is built', () => {
    expect(
      () => new LogShipper({ logGroup: 'g', deliver: async () => {}, filterPattern: '%regex%' }),
    ).toThrow('regular-expression');
  });

  it('still delivers gzip+base64 payloads CloudWatch-style (decodable by plain gunzip)', async () => {
    const delivered: CloudWatchLogsEvent[] = [];
    const shipper = new LogShipper({ logGroup: 'g', deliver: async (e) => void delivered.push(e) });
    shipper.accept(line());
    await shipper.stop();
    const body = JSON.parse(gunzipSync(Buffer.from(delivered[0]!.awslogs.data, 'base64')).toString());
    expect(body.messageType).toBe('DATA_MESSAGE');
  });
});
