import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import * as handlerEvents from '../../functions/events.ts';
import { loadConfig } from '../../functions/shell/config.ts';
import { stageConfig } from '../../stacks/config.ts';
import {
  COMMAND_EVENT,
  commandEventPattern,
  type EventPattern,
  HYPERPOD_EVENT,
  hyperPodEventPattern,
  KUBERNETES_GROUP,
  LAMBDAS,
  type LambdaName,
  lambdaEnvironment,
  lambdaStatements,
  logGroupArn,
  logStreamName,
  logsToStreamStatements,
  logsToStreamTrustPolicy,
  policyDocument,
  remoteWriteUrl,
} from '../../stacks/policy.ts';
import { ROOT } from './sst-harness.ts';

/** EventBridge matching for patterns of exact-value arrays on top-level fields. */
function eventBridgeMatches(pattern: EventPattern, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([field, allowed]) => {
    const value = event[field];
    const values = Array.isArray(value) ? value : [value];
    return values.some((v) => allowed.includes(v as string));
  });
}

describe('EventBridge patterns', () => {
  const fixture = (name: string) =>
    JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/events', name), 'utf8')) as Record<
      string,
      unknown
    >;
  const reboot = fixture('hyperpod-instance-reboot.json');
  const command = fixture('trainkeeper-command-restart.json');
  const arn = (reboot.resources as string[])[0] as string;

  it('agree with the identities functions/events.ts handles', () => {
    expect(HYPERPOD_EVENT).toEqual(handlerEvents.HYPERPOD_EVENT);
    expect(COMMAND_EVENT).toEqual(handlerEvents.COMMAND_EVENT);
  });

  it.each<[string, EventPattern, Record<string, unknown>, boolean]>([
    ['the cluster HyperPod event', hyperPodEventPattern(arn), reboot, true],
    [
      'another cluster HyperPod event',
      hyperPodEventPattern('arn:aws:sagemaker:us-west-2:111122223333:cluster/other'),
      reboot,
      false,
    ],
    ['a CLI command, for the HyperPod rule', hyperPodEventPattern(arn), command, false],
    ['a CLI command', commandEventPattern(), command, true],
    ['a HyperPod event, for the command rule', commandEventPattern(), reboot, false],
  ])('matches %s: %s', (_, pattern, event, matches) => {
    expect(eventBridgeMatches(pattern, event)).toBe(matches);
  });
});

const TARGETS = {
  logGroupArn: 'arn:aws:logs:us-west-2:1:log-group:/aws/lambda/x',
  tableArn: 'arn:aws:dynamodb:us-west-2:1:table/t',
  busArn: 'arn:aws:events:us-west-2:1:event-bus/b',
  workspaceArn: 'arn:aws:aps:us-west-2:1:workspace/ws-1',
  eksClusterArn: 'arn:aws:eks:us-west-2:1:cluster/e',
  hyperPodClusterArn: 'arn:aws:sagemaker:us-west-2:1:cluster/abc',
  dlqArn: 'arn:aws:sqs:us-west-2:1:q',
};

describe('lambdaStatements', () => {
  const reconcile = [
    { actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [`${TARGETS.logGroupArn}:*`] },
    {
      actions: [
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      resources: [
        TARGETS.tableArn,
        `${TARGETS.tableArn}/index/byNamespace`,
        `${TARGETS.tableArn}/index/byPhase`,
        `${TARGETS.tableArn}/index/active`,
        `${TARGETS.tableArn}/index/due`,
      ],
    },
    { actions: ['events:PutEvents'], resources: [TARGETS.busArn] },
    { actions: ['aps:RemoteWrite'], resources: [TARGETS.workspaceArn] },
    { actions: ['eks:DescribeCluster'], resources: [TARGETS.eksClusterArn] },
    { actions: ['sagemaker:DescribeCluster'], resources: [TARGETS.hyperPodClusterArn] },
  ];
  const dlq = { actions: ['sqs:SendMessage'], resources: [TARGETS.dlqArn] };

  it.each<[LambdaName, object[]]>([
    ['api', reconcile],
    ['logs', [...reconcile, dlq]],
    ['sweep', [...reconcile, dlq]],
    ['events', [...reconcile, dlq]],
  ])('grants the %s Lambda reconcile access plus its own extras', (name, expected) => {
    expect(lambdaStatements(name, TARGETS)).toEqual(expected);
  });

  it.each(LAMBDAS)('names no SageMaker action for the %s Lambda on a plain EKS cluster', (name) => {
    const { hyperPodClusterArn: _, ...eks } = TARGETS;
    const actions = lambdaStatements(name, eks).flatMap((s) => s.actions);
    expect(actions.filter((a) => a.startsWith('sagemaker:'))).toEqual([]);
  });

  it.each(['logs', 'sweep', 'events'] as const)(
    'refuses to build the %s Lambda policy without its DLQ',
    (name) => {
      const { dlqArn: _, ...noDlq } = TARGETS;
      expect(() => lambdaStatements(name, noDlq)).toThrow(`the ${name} Lambda needs its DLQ ARN`);
    },
  );
});

describe('log delivery through Kinesis', () => {
  const streamArn = 'arn:aws:kinesis:us-west-2:1:stream/trainkeeper-ci-logs';
  const kinesisRead = {
    actions: [
      'kinesis:DescribeStream',
      'kinesis:DescribeStreamSummary',
      'kinesis:GetRecords',
      'kinesis:GetShardIterator',
      'kinesis:ListShards',
      'kinesis:SubscribeToShard',
    ],
    resources: [streamArn],
  };

  it('lets the logs Lambda read the stream (its event source mapping) and keeps its DLQ write, the mapping’s on-failure destination', () => {
    const statements = lambdaStatements('logs', { ...TARGETS, logStreamArn: streamArn });
    expect(statements.slice(-2)).toEqual([
      { actions: ['sqs:SendMessage'], resources: [TARGETS.dlqArn] },
      kinesisRead,
    ]);
    expect(statements.slice(0, -1)).toEqual(lambdaStatements('logs', TARGETS));
  });

  it('grants no account-level Kinesis action and no action on any other stream', () => {
    const statements = lambdaStatements('logs', { ...TARGETS, logStreamArn: streamArn });
    const kinesis = statements.filter((s) => s.actions.some((a) => a.startsWith('kinesis:')));
    expect(kinesis).toEqual([kinesisRead]);
    expect(kinesis.flatMap((s) => s.actions)).not.toContain('kinesis:ListStreams');
    for (const s of statements) for (const r of s.resources) expect(r).not.toBe('*');
  });

  it('grants no Kinesis action without a stream (direct delivery)', () => {
    for (const name of LAMBDAS) {
      const actions = lambdaStatements(name, TARGETS).flatMap((s) => s.actions);
      expect(actions.filter((a) => a.startsWith('kinesis:'))).toEqual([]);
    }
  });

  it.each(['api', 'sweep', 'events'] as const)('refuses to let the %s Lambda read the log stream', (name) => {
    expect(() => lambdaStatements(name, { ...TARGETS, logStreamArn: streamArn })).toThrow(
      `the ${name} Lambda reads no log stream`,
    );
  });

  it('lets CloudWatch Logs put records into that stream only', () => {
    expect(logsToStreamStatements(streamArn)).toEqual([
      { actions: ['kinesis:PutRecord'], resources: [streamArn] },
    ]);
    expect(policyDocument(logsToStreamStatements(streamArn))).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['kinesis:PutRecord'], Resource: [streamArn] }],
    });
  });

  it('lets only CloudWatch Logs, for the application log group of this account, assume the writer role', () => {
    const group = logGroupArn({
      partition: 'aws',
      region: 'us-west-2',
      account: '123456789012',
      name: '/aws/containerinsights/e/application',
    });
    expect(logsToStreamTrustPolicy({ logGroupArn: group, account: '123456789012' })).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'logs.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: {
            ArnLike: {
              'aws:SourceArn':
                'arn:aws:logs:us-west-2:123456789012:log-group:/aws/containerinsights/e/application:*',
            },
            StringEquals: { 'aws:SourceAccount': '123456789012' },
          },
        },
      ],
    });
  });

  it('names the stream after the stage', () => {
    expect(logStreamName('ci')).toBe('trainkeeper-ci-logs');
  });
});

describe('resource names', () => {
  it('maps the Lambda roles to the group deploy/kubernetes/rbac.yaml binds', () => {
    const docs = parseAllDocuments(
      fs.readFileSync(path.join(ROOT, 'deploy/kubernetes/rbac.yaml'), 'utf8'),
    ).map((d) => d.toJS() as { kind: string; subjects?: { kind: string; name: string }[] });
    const bindings = docs.filter((d) => d.kind.endsWith('Binding'));
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings)
      expect(b.subjects).toEqual([expect.objectContaining({ kind: 'Group', name: KUBERNETES_GROUP })]);
  });

  it.each([
    [
      'https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/',
      'https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write',
    ],
    [
      'https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1',
      'https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write',
    ],
  ])('derives the remote-write URL from the endpoint %s', (endpoint, url) => {
    expect(remoteWriteUrl(endpoint)).toBe(url);
  });

  it('scopes the log group ARN to every stream of that group', () => {
    expect(logGroupArn({ partition: 'aws', region: 'us-west-2', account: '1', name: '/a/b' })).toBe(
      'arn:aws:logs:us-west-2:1:log-group:/a/b:*',
    );
  });
});

describe('lambdaEnvironment', () => {
  it('is a configuration functions/shell/config.ts loads back to the stage settings', () => {
    const stage = stageConfig(
      'team',
      {
        TRAINKEEPER_DEPLOY_REGION: 'eu-west-1',
        TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
        TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'train-eks',
        TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: 'a,b',
        TRAINKEEPER_DEPLOY_POD_SECURITY: 'restricted',
      },
      {},
    );
    const env = lambdaEnvironment(stage, {
      tableName: 't',
      busName: 'b',
      remoteWriteUrl: 'https://x/api/v1/remote_write',
    });
    expect(loadConfig({ ...env, AWS_REGION: 'eu-west-1' })).toEqual({
      mode: 'aws',
      tableName: 't',
      region: 'eu-west-1',
      cluster: { kind: 'eks', name: 'train-eks' },
      allowedNamespaces: ['a', 'b'],
      podSecurityLevel: 'restricted',
      ampRemoteWriteUrl: 'https://x/api/v1/remote_write',
      eventBusName: 'b',
      logLevel: 'info',
      stage: 'team',
      agentConcurrency: 64,
      actMarginMs: 10_000,
    });
  });

  it('carries the stage’s principal → namespace mapping, which the handler loads back rule for rule', () => {
    const access = [
      { principal: 'arn:aws:iam::123456789012:role/TeamA-Engineers', namespaces: ['a'] },
      { principal: 'arn:aws:sts::123456789012:assumed-role/TeamB-*/*', namespaces: '*' },
    ];
    const stage = stageConfig(
      'team',
      {
        TRAINKEEPER_DEPLOY_REGION: 'eu-west-1',
        TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
        TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'train-eks',
        TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: 'a,b',
        TRAINKEEPER_DEPLOY_ACCESS: JSON.stringify(access),
      },
      {},
    );
    const env = lambdaEnvironment(stage, { tableName: 't', busName: 'b', remoteWriteUrl: 'https://x/w' });
    expect(JSON.parse(env.TRAINKEEPER_ACCESS ?? 'null')).toEqual(access);
    expect(loadConfig({ ...env, AWS_REGION: 'eu-west-1' }).access).toEqual(access);
  });
});
