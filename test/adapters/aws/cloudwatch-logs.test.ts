/**
 * The CloudWatch Logs reader behind `trainkeeper logs`, on the real SDK client with its `send` mocked
 * (aws-sdk-client-mock): the stock Container Insights stream names and Fluent Bit records, pagination,
 * rank and grep filters, and follow's de-duplication and throttling back-off.
 */
import {
  CloudWatchLogsClient,
  FilterLogEventsCommand,
  type FilterLogEventsCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applicationLogGroup,
  JobLogReader,
  podStreamPrefix,
  recordText,
} from '../../../adapters/aws/cloudwatch-logs.ts';

const cw = mockClient(CloudWatchLogsClient);
afterEach(() => cw.reset());

const HEX = 'a'.repeat(64);
const stream = (node: string, pod: string) =>
  `${node}-application.var.log.containers.${pod}_team-a_pytorch-${HEX}.log`;
/** A Fluent Bit record as the stock add-on ships it (Labels Off). */
const record = (log: string) =>
  JSON.stringify({
    time: '2025-01-01T00:00:00Z',
    stream: 'stdout',
    _p: 'F',
    log: `${log}\n`,
    kubernetes: {},
  });

const POD0 = { name: 'llama-0-g0', node: 'ip-10-0-0-1.ec2.internal', rank: 0 };
const POD1 = { name: 'llama-1-g0', node: 'ip-10-0-0-2.ec2.internal', rank: 1 };
const base = {
  logGroup: applicationLogGroup('prod'),
  namespace: 'team-a',
  pods: [POD0, POD1],
  nprocPerNode: 2,
};

describe('JobLogReader.read', () => {
  it('queries each pod by its stock stream-name prefix and merges the lines by time with global ranks', async () => {
    const calls: FilterLogEventsCommandInput[] = [];
    cw.on(FilterLogEventsCommand).callsFake((input: FilterLogEventsCommandInput) => {
      calls.push(input);
      if (input.logStreamNamePrefix === podStreamPrefix(POD0.name, 'team-a', POD0.node)) {
        return {
          events: [
            {
              eventId: 'a1',
              timestamp: 1000,
              logStreamName: stream(POD0.node, POD0.name),
              message: record('[default1]: step 1 loss 2.5'),
            },
            {
              eventId: 'a2',
              timestamp: 3000,
              logStreamName: stream(POD0.node, POD0.name),
              message: record('agent ready'),
            },
          ],
        };
      }
      return {
        events: [
          {
            eventId: 'b1',
            timestamp: 2000,
            logStreamName: stream(POD1.node, POD1.name),
            message: record('[default0]: step 1 loss 2.4'),
          },
        ],
      };
    });
    const lines = await new JobLogReader(new CloudWatchLogsClient({ region: 'us-east-1' })).read({
      ...base,
      startTime: 500,
      endTime: 5000,
    });
    expect(calls.map((c) => c.logStreamNamePrefix).sort()).toEqual([
      'ip-10-0-0-1.ec2.internal-application.var.log.containers.llama-0-g0_team-a_',
      'ip-10-0-0-2.ec2.internal-application.var.log.containers.llama-1-g0_team-a_',
    ]);
    expect(calls.every((c) => c.logGroupName === '/aws/containerinsights/prod/application')).toBe(true);
    expect(calls.every((c) => c.startTime === 500 && c.endTime === 5000)).toBe(true);
    expect(lines.map(({ eventId, ...l }) => l)).toEqual([
      { time: 1000, pod: 'llama-0-g0', rank: 1, localRank: 1, text: 'step 1 loss 2.5' },
      { time: 2000, pod: 'llama-1-g0', rank: 2, localRank: 0, text: 'step 1 loss 2.4' },
      { time: 3000, pod: 'llama-0-g0', text: 'agent ready' },
    ]);
  });

  it('follows nextToken until the last page', async () => {
    cw.on(FilterLogEventsCommand, { nextToken: undefined })
      .resolves({
        events: [{ eventId: '1', timestamp: 1, message: record('[default0]: one') }],
        nextToken: 't2',
      })
      .on(FilterLogEventsCommand, { nextToken: 't2' })
      .resolves({ events: [{ eventId: '2', timestamp: 2, message: record('[default0]: two') }] });
    const lines = await new JobLogReader(new CloudWatchLogsClient({ region: 'us-east-1' })).read({
      ...base,
      pods: [POD0],
    });
    expect(lines.map((l) => l.text)).toEqual(['one', 'two']);
  });

  it('keeps only the asked ranks and the lines matching --grep, and skips pods with no node yet', async () => {
    cw.on(FilterLogEventsCommand).resolves({
      events: [
        { eventId: '1', timestamp: 1, message: record('[default0]: step 1') },
        { eventId: '2', timestamp: 2, message: record('[default1]: step 1') },
        { eventId: '3', timestamp: 3, message: record('[default1]: NCCL error: unhandled system error') },
      ],
    });
    const reader = new JobLogReader(new CloudWatchLogsClient({ region: 'us-east-1' }));
    const lines = await reader.read({
      ...base,
      pods: [POD0, { name: 'pending', rank: 1 }],
      ranks: [1],
      grep: /NCCL/,
    });
    expect(lines.map((l) => [l.rank, l.text])).toEqual([[1, 'NCCL error: unhandled system error']]);
    expect(cw.commandCalls(FilterLogEventsCommand)).toHaveLength(1);
  });

  it('passes CloudWatch errors other than throttling to the caller', async () => {
    cw.on(FilterLogEventsCommand).rejects(
      Object.assign(new Error('The specified log group does not exist.'), {
        name: 'ResourceNotFoundException',
      }),
    );
    await expect(
      new JobLogReader(new CloudWatchLogsClient({ region: 'us-east-1' })).read(base),
    ).rejects.toThrow('does not exist');
  });
});

describe('JobLogReader.follow', () => {
  it('prints each event once across polls, survives throttling, and stops when aborted', async () => {
    let poll = 0;
    cw.on(FilterLogEventsCommand).callsFake(() => {
      poll += 1;
      if (poll === 2) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      const events = [{ eventId: '1', timestamp: 1000, message: record('[default0]: step 1') }];
      if (poll >= 3) events.push({ eventId: '2', timestamp: 1500, message: record('[default0]: step 2') });
      return { events };
    });
    const stop = new AbortController();
    const seen: string[] = [];
    await new JobLogReader(new CloudWatchLogsClient({ region: 'us-east-1' })).follow(
      { ...base, pods: [POD0] },
      (line) => {
        seen.push(line.text);
        if (seen.length === 2) stop.abort();
      },
      { signal: stop.signal, minDelayMs: 1, maxDelayMs: 4 },
    );
    expect(seen).toEqual(['step 1', 'step 2']);
    expect(poll).toBe(3);
  });
});

describe('recordText', () => {
  it.each([
    ['a Fluent Bit record', record('hello'), 'hello'],
    ['a plain message (raw dialect)', 'plain line\n', 'plain line'],
    ['a record without a log field', '{"message":"x"}', '{"message":"x"}'],
  ])('takes the line from %s', (_what, message, text) => {
    expect(recordText(message)).toBe(text);
  });
});
