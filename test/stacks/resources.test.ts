/**
 * The whole `ci` stage, through sst.config.ts, run under Pulumi mocks with SST's real components: every
 * resource is registered with the inputs a deploy would send, and the assertions read those inputs.
 */
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLE } from '../../adapters/dynamo/table.ts';
import { loadConfig } from '../../functions/shell/config.ts';
import { type StageConfig, stageConfig } from '../../stacks/config.ts';
import { logFilterPattern } from '../../stacks/log-filter.ts';
import {
  API_ROUTES,
  commandEventPattern,
  emfAlarms,
  hyperPodEventPattern,
  KUBERNETES_GROUP,
  LAMBDAS,
  type LambdaName,
  lambdaStatements,
  SWEEP_SCHEDULE,
} from '../../stacks/policy.ts';
import { ACCOUNT, type MockResource, ofType, type Props, runStacks, type StackRun } from './sst-harness.ts';

const FN: Record<LambdaName, string> = {
  api: 'ApiHandler',
  logs: 'LogsHandler',
  sweep: 'SweepHandler',
  events: 'EventsHandler',
};

let run: StackRun;
let config: StageConfig;

beforeAll(async () => {
  config = stageConfig('ci');
  run = await runStacks(config, 'sst.config');
}, 180_000);

afterAll(() => run?.dispose());

function one(type: string, name: string): MockResource {
  const found = run.resources.filter((r) => r.type === type && r.name === name);
  expect(found, `${type} ${name}`).toHaveLength(1);
  return found[0] as MockResource;
}
const lambda = (n: LambdaName) => one('aws:lambda/function:Function', `${FN[n]}Function`);
const role = (n: LambdaName) => one('aws:iam/role:Role', `${FN[n]}Role`);
const queue = (n: LambdaName) => one('aws:sqs/queue:Queue', `${FN[n]}Dlq`);

describe('storage', () => {
  it('creates one on-demand table with point-in-time recovery and the shared keys, indexes and TTL', () => {
    const [table] = ofType(run, 'aws:dynamodb/table:Table');
    expect(ofType(run, 'aws:dynamodb/table:Table')).toHaveLength(1);
    const t = table?.inputs ?? {};
    expect(t.billingMode).toBe('PAY_PER_REQUEST');
    expect(t.pointInTimeRecovery).toEqual({ enabled: true });
    expect(t.ttl).toEqual({ attributeName: TABLE.ttl, enabled: true });
    expect([t.hashKey, t.rangeKey]).toEqual([TABLE.primaryIndex.hashKey, TABLE.primaryIndex.rangeKey]);
    expect(Object.fromEntries(t.attributes.map((a: Props) => [a.name, a.type]))).toEqual(
      Object.fromEntries(Object.entries(TABLE.fields).map(([k, v]) => [k, v === 'number' ? 'N' : 'S'])),
    );
    expect(t.globalSecondaryIndexes).toEqual(
      Object.entries(TABLE.globalIndexes).map(([name, i]) => ({
        name,
        hashKey: i.hashKey,
        rangeKey: i.rangeKey,
        projectionType: 'KEYS_ONLY',
      })),
    );
  });

  it('does not protect the table of a non-production stage from deletion', () => {
    expect(ofType(run, 'aws:dynamodb/table:Table')[0]?.inputs.deletionProtectionEnabled).toBe(false);
  });
});

describe('api', () => {
  it('serves exactly the routes of functions/api.ts plus $default, every one with IAM authorization', () => {
    const routes = ofType(run, 'aws:apigatewayv2/route:Route');
    expect(routes.map((r) => r.inputs.routeKey).sort()).toEqual([...API_ROUTES].sort());
    for (const r of routes) expect(r.inputs.authorizationType, r.inputs.routeKey).toBe('AWS_IAM');
  });

  it('integrates every route with the api Lambda and writes access logs', () => {
    for (const i of ofType(run, 'aws:apigatewayv2/integration:Integration')) {
      expect(i.inputs.integrationUri).toBe(lambda('api').state.arn);
    }
    const [stage] = ofType(run, 'aws:apigatewayv2/stage:Stage');
    expect(stage?.inputs.accessLogSettings?.destinationArn).toMatch(/^arn:aws:logs:/);
    expect(run.outputs.ApiUrl).toBe(ofType(run, 'aws:apigatewayv2/api:Api')[0]?.state.apiEndpoint);
  });
});

describe('lambdas', () => {
  it.each(LAMBDAS)('runs the %s handler on nodejs22.x from its own bundle', (n) => {
    const fn = lambda(n);
    expect(fn.inputs.runtime).toBe('nodejs22.x');
    expect(fn.inputs.handler).toBe(`functions/${n}.handler`);
    expect(fn.inputs.role).toBe(role(n).state.arn);
    expect(run.bundles[FN[n]]?.bytes).toBeGreaterThan(0);
  });

  it('bundles the api handler into an ES module whose cold start names the missing table variable', async () => {
    const bundle = run.bundles[FN.api];
    const mod = (await import(pathToFileURL(bundle?.file ?? '').href)) as {
      handler: (event: unknown) => Promise<unknown>;
    };
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('TRAINKEEPER_')) delete process.env[k];
    delete process.env.AWS_REGION;
    try {
      await expect(mod.handler({})).rejects.toThrow(/invalid TrainKeeper configuration: TRAINKEEPER_TABLE: /);
    } finally {
      process.env = saved;
    }
  });

  it.each(LAMBDAS)('logs the %s Lambda to its own log group, kept 30 days', (n) => {
    const group = one('aws:cloudwatch/logGroup:LogGroup', `${FN[n]}Logs`);
    expect(group.inputs).toMatchObject({ name: `/aws/lambda/trainkeeper-ci-${n}`, retentionInDays: 30 });
    expect(lambda(n).inputs.loggingConfig.logGroup).toBe(group.state.name);
  });

  it.each(LAMBDAS)(
    'gives the %s Lambda exactly the variables functions/shell/config.ts reads, with the stage values',
    (n) => {
      const env: Record<string, string> = fn_env(n);
      const tk = Object.keys(env);
      expect(tk.sort()).toEqual(
        [
          'TRAINKEEPER_MODE',
          'TRAINKEEPER_TABLE',
          'TRAINKEEPER_CLUSTER_KIND',
          'TRAINKEEPER_CLUSTER_NAME',
          'TRAINKEEPER_ALLOWED_NAMESPACES',
          'TRAINKEEPER_ACCESS',
          'TRAINKEEPER_POD_SECURITY',
          'TRAINKEEPER_AMP_REMOTE_WRITE_URL',
          'TRAINKEEPER_EVENT_BUS',
          'TRAINKEEPER_LOG_LEVEL',
          'TRAINKEEPER_STAGE',
        ].sort(),
      );
      // Lambda sets AWS_REGION itself.
      const parsed = loadConfig({ ...env, AWS_REGION: config.region });
      expect(parsed).toMatchObject({
        mode: 'aws',
        tableName: run.outputs.TableName,
        cluster: { kind: 'hyperpod', name: 'ml-cluster' },
        allowedNamespaces: ['team-a', 'team-b'],
        access: config.access,
        eventBusName: run.outputs.BusName,
        ampRemoteWriteUrl: run.outputs.RemoteWriteUrl,
        stage: 'ci',
      });
    },
  );

  it.each(LAMBDAS)(
    'grants the %s Lambda exactly its statements, no wildcard but its own log streams',
    (n) => {
      const inline = role(n).inputs.inlinePolicies as { name: string; policy: string }[];
      expect(inline).toHaveLength(1);
      const doc = JSON.parse(inline[0]?.policy ?? '{}');
      const table = ofType(run, 'aws:dynamodb/table:Table')[0]?.state.arn;
      const expected = lambdaStatements(n, {
        logGroupArn: one('aws:cloudwatch/logGroup:LogGroup', `${FN[n]}Logs`).state.arn,
        tableArn: table,
        busArn: ofType(run, 'aws:cloudwatch/eventBus:EventBus')[0]?.state.arn,
        workspaceArn: ofType(run, 'aws:amp/workspace:Workspace')[0]?.state.arn,
        eksClusterArn: `arn:aws:eks:us-west-2:${ACCOUNT}:cluster/ml-eks`,
        hyperPodClusterArn: 'arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh',
        ...(n === 'api' ? {} : { dlqArn: queue(n).state.arn }),
      });
      expect(doc.Statement).toEqual(
        expected.map((s) => ({ Effect: 'Allow', Action: s.actions, Resource: s.resources })),
      );
      // The only wildcard: the log streams (`:*`) of the Lambda's own log group.
      const ownStreams = `${one('aws:cloudwatch/logGroup:LogGroup', `${FN[n]}Logs`).state.arn}:*`;
      for (const st of doc.Statement) {
        for (const r of st.Resource) if (r !== ownStreams) expect(r).not.toContain('*');
      }
      expect(doc.Statement.flatMap((s: Props) => s.Action)).not.toContain('sts:GetCallerIdentity');
    },
  );

  it.each(['logs', 'sweep', 'events'] as const)(
    'sends the %s Lambda failed asynchronous invocations to its own DLQ after two retries',
    (n) => {
      const cfg = one(
        'aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig',
        `${FN[n]}EventInvokeConfig`,
      );
      expect(cfg.inputs.functionName).toBe(lambda(n).state.name);
      expect(cfg.inputs.maximumRetryAttempts).toBe(2);
      expect(cfg.inputs.destinationConfig).toEqual({ onFailure: { destination: queue(n).state.arn } });
    },
  );
});

function fn_env(n: LambdaName): Record<string, string> {
  return lambda(n).inputs.environment.variables;
}

describe('triggers', () => {
  it("subscribes the logs Lambda to the application log group with a filter passing the allowed namespaces' records", () => {
    const [filter] = ofType(run, 'aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter');
    expect(filter?.inputs.filterPattern).toBe(
      '{ $.kubernetes.namespace_name = "team-a" || $.kubernetes.namespace_name = "team-b" }',
    );
    expect(filter?.inputs).toMatchObject({
      logGroup: '/aws/containerinsights/ml-eks/application',
      filterPattern: logFilterPattern('namespaces', ['team-a', 'team-b']),
      destinationArn: lambda('logs').state.arn,
    });
  });

  it('delivers directly (the default): the filter invokes the Lambda, with no stream, role or mapping', () => {
    const filter = one('aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter', 'LogsSubscription');
    expect(filter.inputs).toEqual({
      name: 'trainkeeper-ci',
      logGroup: '/aws/containerinsights/ml-eks/application',
      filterPattern: logFilterPattern('namespaces', ['team-a', 'team-b']),
      destinationArn: lambda('logs').state.arn,
    });
    expect(ofType(run, 'aws:kinesis/stream:Stream')).toEqual([]);
    expect(ofType(run, 'aws:lambda/eventSourceMapping:EventSourceMapping')).toEqual([]);
    expect(ofType(run, 'aws:iam/role:Role').map((r) => r.name)).not.toContain('LogsStreamWriterRole');
    const names = ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm').map((a) => a.name);
    expect(names).not.toContain('LogsIteratorAgeAlarm');
    expect(names).not.toContain('LogsStreamWriteThrottledAlarm');
  });

  it('lets only CloudWatch Logs from that log group invoke the logs Lambda', () => {
    const p = one('aws:lambda/permission:Permission', 'LogsInvokePermission');
    expect(p.inputs).toMatchObject({
      action: 'lambda:InvokeFunction',
      function: lambda('logs').state.name,
      principal: 'logs.amazonaws.com',
      sourceArn: `arn:aws:logs:us-west-2:${ACCOUNT}:log-group:/aws/containerinsights/ml-eks/application:*`,
      sourceAccount: ACCOUNT,
    });
  });

  it('runs the sweep Lambda on a one-minute schedule', () => {
    const rules = ofType(run, 'aws:cloudwatch/eventRule:EventRule').filter(
      (r) => r.inputs.scheduleExpression,
    );
    expect(rules.map((r) => r.inputs.scheduleExpression)).toEqual([SWEEP_SCHEDULE]);
    const target = ofType(run, 'aws:cloudwatch/eventTarget:EventTarget').find(
      (t) => t.inputs.rule === rules[0]?.state.name,
    );
    expect(target?.inputs.arn).toBe(lambda('sweep').state.arn);
  });

  it('routes this HyperPod cluster events from the default bus to the events Lambda', () => {
    const rule = one('aws:cloudwatch/eventRule:EventRule', 'HyperPodEvents');
    expect(rule.inputs.eventBusName).toBeUndefined();
    expect(JSON.parse(rule.inputs.eventPattern)).toEqual(
      hyperPodEventPattern('arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh'),
    );
    expect(one('aws:cloudwatch/eventTarget:EventTarget', 'HyperPodEventsTarget').inputs.arn).toBe(
      lambda('events').state.arn,
    );
    expect(one('aws:lambda/permission:Permission', 'HyperPodEventsPermission').inputs).toMatchObject({
      principal: 'events.amazonaws.com',
      sourceArn: rule.state.arn,
      function: lambda('events').state.name,
    });
  });

  it('routes CLI commands on the stage bus to the events Lambda', () => {
    const rule = one('aws:cloudwatch/eventRule:EventRule', 'CommandEvents');
    expect(rule.inputs.eventBusName).toBe(run.outputs.BusName);
    expect(JSON.parse(rule.inputs.eventPattern)).toEqual(commandEventPattern());
    const target = one('aws:cloudwatch/eventTarget:EventTarget', 'CommandEventsTarget');
    expect(target.inputs).toMatchObject({
      arn: lambda('events').state.arn,
      eventBusName: run.outputs.BusName,
    });
  });
});

describe('cluster access', () => {
  it.each(LAMBDAS)('maps the %s role to the trainkeeper-control-plane group on the EKS cluster', (n) => {
    const entry = ofType(run, 'aws:eks/accessEntry:AccessEntry').find(
      (e) => e.inputs.principalArn === role(n).state.arn,
    );
    expect(entry?.inputs).toMatchObject({
      clusterName: 'ml-eks',
      kubernetesGroups: [KUBERNETES_GROUP],
      type: 'STANDARD',
    });
  });
});

describe('alarms', () => {
  it('notifies the alarm e-mail through one SNS topic', () => {
    const [topic] = ofType(run, 'aws:sns/topic:Topic');
    expect(ofType(run, 'aws:sns/topicSubscription:TopicSubscription').map((s) => s.inputs)).toEqual([
      { topic: topic?.state.arn, protocol: 'email', endpoint: 'oncall@example.com' },
    ]);
    for (const a of ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm')) {
      expect(a.inputs.alarmActions, a.name).toEqual([topic?.state.arn]);
      expect(a.inputs.okActions, a.name).toEqual([topic?.state.arn]);
    }
  });

  it('alarms on job failures and restart storms from the EMF metrics of this stage', () => {
    for (const spec of emfAlarms('ci', config.restartStormThreshold)) {
      expect(one('aws:cloudwatch/metricAlarm:MetricAlarm', `${spec.name}Alarm`).inputs).toMatchObject({
        namespace: 'TrainKeeper',
        metricName: spec.metricName,
        dimensions: { Stage: 'ci' },
        statistic: 'Sum',
        threshold: spec.threshold,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it.each(LAMBDAS)('alarms on the %s Lambda errors and throttles', (n) => {
    const alarms = ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm').filter(
      (a) => a.inputs.namespace === 'AWS/Lambda' && a.inputs.dimensions.FunctionName === lambda(n).state.name,
    );
    expect(alarms.map((a) => a.inputs.metricName).sort()).toEqual(['Errors', 'Throttles']);
  });

  it.each(['logs', 'sweep', 'events'] as const)('alarms when the %s DLQ holds a message', (n) => {
    const alarm = ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm').find(
      (a) => a.inputs.namespace === 'AWS/SQS' && a.inputs.dimensions.QueueName === queue(n).state.name,
    );
    expect(alarm?.inputs).toMatchObject({ metricName: 'ApproximateNumberOfMessagesVisible', threshold: 1 });
  });
});

describe('outputs and SST', () => {
  it('outputs the API URL, table, bus, role ARNs and remote-write URL', () => {
    expect(run.outputs).toMatchObject({
      TableName: ofType(run, 'aws:dynamodb/table:Table')[0]?.state.name,
      BusName: ofType(run, 'aws:cloudwatch/eventBus:EventBus')[0]?.state.name,
      ApiRoleArn: role('api').state.arn,
      LogsRoleArn: role('logs').state.arn,
      SweepRoleArn: role('sweep').state.arn,
      EventsRoleArn: role('events').state.arn,
      RemoteWriteUrl: `${ofType(run, 'aws:amp/workspace:Workspace')[0]?.state.prometheusEndpoint}api/v1/remote_write`,
    });
  });

  it('calls only the SST RPC methods the stub implements', () => {
    expect(new Set(run.rpcCalls.map((c) => c.method))).toEqual(
      new Set(['Provider.Aws.Bootstrap', 'Runtime.Build']),
    );
  });
});

describe('lambda roles', () => {
  it.each(LAMBDAS)('lets only Lambda assume the %s role and attaches no managed policy', (n) => {
    const r = role(n);
    expect(r.inputs.managedPolicyArns).toEqual([]);
    expect(JSON.parse(r.inputs.assumeRolePolicy).Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
  });
});

describe('sst.config.ts', () => {
  it('names the app, removes non-production stages and pins the AWS provider to the stage region', () => {
    expect(run.app).toEqual({
      name: 'trainkeeper',
      home: 'aws',
      removal: 'remove',
      protect: false,
      providers: { aws: { region: 'us-west-2' } },
    });
  });
});
