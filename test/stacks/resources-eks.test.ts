/**
 * A production stage on a plain EKS cluster, pushing to an existing AMP workspace, with every log line
 * subscribed: the same stacks under Pulumi mocks (own process: Pulumi's runtime is process-wide).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stageConfig } from '../../stacks/config.ts';
import { ACCOUNT, ofType, type Props, runStacks, type StackRun } from './sst-harness.ts';

let run: StackRun;

beforeAll(async () => {
  const config = stageConfig(
    'production',
    {
      TRAINKEEPER_DEPLOY_REGION: 'eu-west-1',
      TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
      TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'train-eks',
      TRAINKEEPER_DEPLOY_AMP_WORKSPACE_ID: 'ws-0123abcd-4567',
      TRAINKEEPER_DEPLOY_LOG_FILTER: 'all',
      TRAINKEEPER_DEPLOY_ACCESS: JSON.stringify([
        { principal: 'arn:aws:iam::123456789012:role/MLPlatform-Admin', namespaces: '*' },
      ]),
    },
    {},
  );
  run = await runStacks(config);
}, 180_000);

afterAll(() => run?.dispose());

const statements = (r: { inputs: Props }): Props[] =>
  JSON.parse((r.inputs.inlinePolicies as { policy: string }[])[0]?.policy ?? '{}').Statement;

it('protects the production table from deletion', () => {
  expect(ofType(run, 'aws:dynamodb/table:Table')[0]?.inputs.deletionProtectionEnabled).toBe(true);
});

it('creates no HyperPod rule and grants no SageMaker action on a plain EKS cluster', () => {
  const rules = ofType(run, 'aws:cloudwatch/eventRule:EventRule');
  expect(rules.map((r) => r.name).sort()).toEqual(['CommandEvents', 'SweepRule']);
  for (const role of ofType(run, 'aws:iam/role:Role')) {
    const actions = statements(role).flatMap((s) => s.Action as string[]);
    expect(
      actions.filter((a) => a.startsWith('sagemaker:')),
      role.name,
    ).toEqual([]);
    expect(statements(role)).toContainEqual({
      Effect: 'Allow',
      Action: ['eks:DescribeCluster'],
      Resource: [`arn:aws:eks:eu-west-1:${ACCOUNT}:cluster/train-eks`],
    });
  }
});

it('pushes to the existing AMP workspace and creates none', () => {
  expect(ofType(run, 'aws:amp/workspace:Workspace')).toEqual([]);
  expect(run.outputs.RemoteWriteUrl).toBe(
    'https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd-4567/api/v1/remote_write',
  );
  for (const role of ofType(run, 'aws:iam/role:Role')) {
    expect(statements(role)).toContainEqual({
      Effect: 'Allow',
      Action: ['aps:RemoteWrite'],
      Resource: [`arn:aws:aps:eu-west-1:${ACCOUNT}:workspace/ws-0123abcd-4567`],
    });
  }
});

it('subscribes every line of the EKS cluster application log group', () => {
  const [filter] = ofType(run, 'aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter');
  expect(filter?.inputs.logGroup).toBe('/aws/containerinsights/train-eks/application');
  expect(filter?.inputs.filterPattern ?? '').toBe('');
});

it('maps every Lambda role on the EKS cluster itself', () => {
  const entries = ofType(run, 'aws:eks/accessEntry:AccessEntry');
  expect(entries.map((e) => e.inputs.clusterName)).toEqual([
    'train-eks',
    'train-eks',
    'train-eks',
    'train-eks',
  ]);
});

it('subscribes no e-mail when none is configured, yet keeps the alarms on the topic', () => {
  expect(ofType(run, 'aws:sns/topicSubscription:TopicSubscription')).toEqual([]);
  expect(ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm')).toHaveLength(13);
});
