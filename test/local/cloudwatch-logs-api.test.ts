/**
 * The local plane's log group stand-in, through the real CloudWatch Logs SDK client and the reader
 * `trainkeeper logs` uses: stock stream names and records, prefix and time filters, pagination, and AWS's
 * error for an unknown log group.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationLogGroup, JobLogReader, makeLogsClient } from '../../adapters/aws/cloudwatch-logs.ts';
import { LOCAL_LOGS_PATH, LocalLogGroup } from '../../local/logs/cloudwatch-logs-api.ts';

const group = new LocalLogGroup(applicationLogGroup('trainkeeper-local'));
let server: Server;
let endpoint: string;

const line = (pod: string, node: string, text: string, timestamp: number) => ({
  namespace: 'default',
  pod,
  node,
  container: 'pytorch',
  stream: 'stdout' as const,
  line: text,
  timestamp,
});

beforeAll(async () => {
  group.accept(line('job-0', 'node-a', '[default0]: step 1', 1000));
  group.accept(line('job-1', 'node-b', '[default1]: step 1', 1500));
  group.accept(line('job-0', 'node-a', '[default1]: step 2', 2000));
  group.accept(line('job-10', 'node-a', '[default0]: other job', 2500));
  server = createServer((req, res) => {
    void group.route(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}${LOCAL_LOGS_PATH}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('LocalLogGroup through the CloudWatch Logs client', () => {
  it('returns a pod’s lines by its stock stream-name prefix (not a pod whose name extends it) with global ranks', async () => {
    const lines = await new JobLogReader(makeLogsClient({ endpoint })).read({
      logGroup: group.name,
      namespace: 'default',
      pods: [
        { name: 'job-0', node: 'node-a', rank: 0 },
        { name: 'job-1', node: 'node-b', rank: 1 },
      ],
      nprocPerNode: 2,
    });
    expect(lines.map((l) => [l.time, l.pod, l.rank, l.text])).toEqual([
      [1000, 'job-0', 0, 'step 1'],
      [1500, 'job-1', 3, 'step 1'],
      [2000, 'job-0', 1, 'step 2'],
    ]);
  });

  it('applies startTime and endTime inclusively and pages with nextToken', async () => {
    const client = makeLogsClient({ endpoint });
    const first = await client.send(
      new FilterLogEventsCommand({ logGroupName: group.name, startTime: 1500, endTime: 2500, limit: 2 }),
    );
    expect(first.events?.map((e) => e.timestamp)).toEqual([1500, 2000]);
    expect(first.events?.[0]?.logStreamName).toMatch(
      /^node-b-application\.var\.log\.containers\.job-1_default_pytorch-[0-9a-f]{64}\.log$/,
    );
    expect(JSON.parse(first.events?.[0]?.message ?? '{}')).toMatchObject({
      log: '[default1]: step 1',
      stream: 'stdout',
    });
    const second = await client.send(
      new FilterLogEventsCommand({
        logGroupName: group.name,
        startTime: 1500,
        endTime: 2500,
        limit: 2,
        nextToken: first.nextToken,
      }),
    );
    expect(second.events?.map((e) => e.timestamp)).toEqual([2500]);
    expect(second.nextToken).toBeUndefined();
  });

  it('answers ResourceNotFoundException for another log group, as CloudWatch does', async () => {
    await expect(
      makeLogsClient({ endpoint }).send(
        new FilterLogEventsCommand({ logGroupName: '/aws/containerinsights/x/application' }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
