/**
 * The `ci` stage with `logDelivery: {kinesis}` (an entry's batch settings, the shard count from
 * TRAINKEEPER_DEPLOY_LOG_DELIVERY): the subscription filter writes to a Kinesis stream through a role only
 * CloudWatch Logs may assume, and an event source mapping feeds the `logs` Lambda. Same stacks under Pulumi
 * mocks (own process: Pulumi's runtime is process-wide).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STAGES, type StageConfig, stageConfig } from '../../stacks/config.ts';
import { logFilterPattern } from '../../stacks/log-filter.ts';
import { LAMBDAS, type LambdaName, lambdaStatements } from '../../stacks/policy.ts';
import { ACCOUNT, type MockResource, ofType, type Props, runStacks, type StackRun } from './sst-harness.ts';

const FN: Record<LambdaName, string> = {
  api: 'ApiHandler',
  logs: 'LogsHandler',
  sweep: 'SweepHandler',
  events: 'EventsHandler',
};
const LOG_GROUP = '/aws/containerinsights/ml-eks/application';
const LOG_GROUP_ARN = `arn:aws:logs:us-west-2:${ACCOUNT}:log-group:${LOG_GROUP}:*`;

let run: StackRun;
let config: StageConfig;

beforeAll(async () => {
  config = stageConfig(
    'ci',
    { TRAINKEEPER_DEPLOY_LOG_DELIVERY: 'kinesis:4' },
    { ci: { ...STAGES.ci, logDelivery: { kinesis: { batchSize: 500, batchingWindowSeconds: 5 } } } },
  );
  run = await runStacks(config);
}, 180_000);

afterAll(() => run?.dispose());

function one(type: string, name?: string): MockResource {
  const found = run.resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  expect(found, `${type} ${name ?? ''}`).toHaveLength(1);
  return found[0] as MockResource;
}
const stream = () => one('aws:kinesis/stream:Stream');
const lambda = (n: LambdaName) => one('aws:lambda/function:Function', `${FN[n]}Function`);
const role = (n: LambdaName) => one('aws:iam/role:Role', `${FN[n]}Role`);
const statements = (r: MockResource): Props[] =>
  JSON.parse((r.inputs.inlinePolicies as { policy: string }[])[0]?.policy ?? '{}').Statement;

it('reads the stage settings: 4 shards from the environment, the batch settings from the entry', () => {
  expect(config.logDelivery).toEqual({ kinesis: { shards: 4, batchingWindowSeconds: 5, batchSize: 500 } });
});

describe('stream', () => {
  it('is one provisioned stream of the configured shards, kept 24 hours, encrypted with the AWS-managed key', () => {
    expect(stream().inputs).toEqual({
      name: 'trainkeeper-ci-logs',
      streamModeDetails: { streamMode: 'PROVISIONED' },
      shardCount: 4,
      retentionPeriod: 24,
      encryptionType: 'KMS',
      kmsKeyId: 'alias/aws/kinesis',
    });
  });
});

describe('subscription', () => {
  it('writes the filtered application log group into the stream, each log stream on one shard', () => {
    const filter = one('aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter');
    expect(filter.name).toBe('LogsStreamSubscription');
    expect(filter.inputs).toEqual({
      name: 'trainkeeper-ci-kinesis',
      logGroup: LOG_GROUP,
      filterPattern: logFilterPattern('namespaces', ['team-a', 'team-b']),
      destinationArn: stream().state.arn,
      roleArn: one('aws:iam/role:Role', 'LogsStreamWriterRole').state.arn,
      distribution: 'ByLogStream',
    });
  });

  it('lets only CloudWatch Logs, for that log group of this account, assume the writer role', () => {
    const writer = one('aws:iam/role:Role', 'LogsStreamWriterRole');
    expect(JSON.parse(writer.inputs.assumeRolePolicy).Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'logs.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: {
          ArnLike: { 'aws:SourceArn': LOG_GROUP_ARN },
          StringEquals: { 'aws:SourceAccount': ACCOUNT },
        },
      },
    ]);
    expect(writer.inputs.inlinePolicies).toBeUndefined();
    expect(writer.inputs.managedPolicyArns).toBeUndefined();
  });

  it('lets the writer role put records into the stream only', () => {
    const policy = one('aws:iam/rolePolicy:RolePolicy', 'LogsStreamWriterPolicy');
    expect(policy.inputs.role).toBe(one('aws:iam/role:Role', 'LogsStreamWriterRole').state.name);
    expect(JSON.parse(policy.inputs.policy)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['kinesis:PutRecord'], Resource: [stream().state.arn] }],
    });
  });

  it('gives CloudWatch Logs no permission to invoke the logs Lambda', () => {
    const permissions = ofType(run, 'aws:lambda/permission:Permission');
    expect(permissions.filter((p) => p.inputs.principal === 'logs.amazonaws.com')).toEqual([]);
    expect(permissions.filter((p) => p.inputs.function === lambda('logs').state.name)).toEqual([]);
  });
});

describe('event source mapping', () => {
  it('feeds the logs Lambda from the stream, one batch at a time per shard, failed batches to its DLQ', () => {
    expect(one('aws:lambda/eventSourceMapping:EventSourceMapping', 'LogsStreamMapping').inputs).toEqual({
      eventSourceArn: stream().state.arn,
      functionName: lambda('logs').state.arn,
      startingPosition: 'LATEST',
      batchSize: 500,
      maximumBatchingWindowInSeconds: 5,
      parallelizationFactor: 1,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 3,
      maximumRecordAgeInSeconds: 3600,
      destinationConfig: {
        onFailure: { destinationArn: one('aws:sqs/queue:Queue', 'LogsHandlerDlq').state.arn },
      },
    });
  });

  it('lets the logs role read that stream (and send to its DLQ), in its one inline policy', () => {
    const expected = lambdaStatements('logs', {
      logGroupArn: one('aws:cloudwatch/logGroup:LogGroup', 'LogsHandlerLogs').state.arn,
      tableArn: one('aws:dynamodb/table:Table').state.arn,
      busArn: one('aws:cloudwatch/eventBus:EventBus').state.arn,
      workspaceArn: one('aws:amp/workspace:Workspace').state.arn,
      eksClusterArn: `arn:aws:eks:us-west-2:${ACCOUNT}:cluster/ml-eks`,
      hyperPodClusterArn: 'arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh',
      dlqArn: one('aws:sqs/queue:Queue', 'LogsHandlerDlq').state.arn,
      logStreamArn: stream().state.arn,
    });
    expect(role('logs').inputs.inlinePolicies).toHaveLength(1);
    expect(statements(role('logs'))).toEqual(
      expected.map((s) => ({ Effect: 'Allow', Action: s.actions, Resource: s.resources })),
    );
    expect(statements(role('logs'))).toContainEqual({
      Effect: 'Allow',
      Action: [
        'kinesis:DescribeStream',
        'kinesis:DescribeStreamSummary',
        'kinesis:GetRecords',
        'kinesis:GetShardIterator',
        'kinesis:ListShards',
        'kinesis:SubscribeToShard',
      ],
      Resource: [stream().state.arn],
    });
  });

  it.each(LAMBDAS.filter((n) => n !== 'logs'))('grants the %s Lambda no Kinesis action', (n) => {
    const actions = statements(role(n)).flatMap((s) => s.Action as string[]);
    expect(actions.filter((a) => a.startsWith('kinesis:'))).toEqual([]);
  });

  it('alarms when the logs Lambda falls 5 minutes behind the stream, and when writes into it are throttled', () => {
    expect(one('aws:cloudwatch/metricAlarm:MetricAlarm', 'LogsIteratorAgeAlarm').inputs).toMatchObject({
      namespace: 'AWS/Lambda',
      metricName: 'IteratorAge',
      dimensions: { FunctionName: lambda('logs').state.name },
      statistic: 'Maximum',
      threshold: 300_000,
    });
    expect(
      one('aws:cloudwatch/metricAlarm:MetricAlarm', 'LogsStreamWriteThrottledAlarm').inputs,
    ).toMatchObject({
      namespace: 'AWS/Kinesis',
      metricName: 'WriteProvisionedThroughputExceeded',
      dimensions: { StreamName: stream().state.name },
      threshold: 1,
    });
  });

  it('keeps the one wildcard of each Lambda policy its own log streams', () => {
    for (const n of LAMBDAS) {
      const own = `${one('aws:cloudwatch/logGroup:LogGroup', `${FN[n]}Logs`).state.arn}:*`;
      for (const st of statements(role(n))) {
        for (const r of st.Resource as string[]) if (r !== own) expect(r, n).not.toContain('*');
      }
    }
  });
});
