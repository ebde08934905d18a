/**
 * What invokes the Lambdas: the IAM-authorized HTTP API (`api`), the log subscription on the application log
 * group (`logs`: directly, or through a Kinesis data stream with `logDelivery: {kinesis}`), the one-minute
 * schedule (`sweep`), and two EventBridge rules (`events`): HyperPod cluster events of this cluster on the
 * default bus, and CLI commands on the stage's bus.
 */
import type { AccountContext } from './account.ts';
import type { StageConfig } from './config.ts';
import type { ControlPlane } from './control-plane.ts';
import { logFilterPattern } from './log-filter.ts';
import {
  API_ROUTES,
  commandEventPattern,
  hyperPodEventPattern,
  logGroupArn,
  logStreamName,
  logsToStreamStatements,
  logsToStreamTrustPolicy,
  policyDocument,
  SWEEP_SCHEDULE,
} from './policy.ts';

/** The HTTP API: every route (and `$default`) uses IAM authorization; access logs kept a month. */
export function httpApi(plane: ControlPlane): sst.aws.ApiGatewayV2 {
  const api = new sst.aws.ApiGatewayV2('Api', {
    accessLog: { retention: '1 month' },
    transform: {
      route: {
        // A route added later without `auth` still gets IAM.
        args: (props: sst.aws.ApiGatewayV2RouteArgs) => {
          props.auth ??= { iam: true };
        },
      },
    },
  });
  for (const route of API_ROUTES) api.route(route, plane.functions.api.arn, { auth: { iam: true } });
  return api;
}

/**
 * The log delivery stream of `logDelivery: {kinesis}` (else none): provisioned shards, records kept 24 hours,
 * encrypted with the AWS-managed key. Created before the control plane, whose `logs` role reads it.
 */
export function logDeliveryStream(config: StageConfig): aws.kinesis.Stream | undefined {
  if (config.logDelivery === 'direct') return undefined;
  return new aws.kinesis.Stream('LogsStream', {
    name: logStreamName(config.stage),
    streamModeDetails: { streamMode: 'PROVISIONED' },
    shardCount: config.logDelivery.kinesis.shards,
    retentionPeriod: 24,
    encryptionType: 'KMS',
    kmsKeyId: 'alias/aws/kinesis',
  });
}

/**
 * The subscription filter on the application log group (its pattern from stacks/log-filter.ts: by default
 * every record of the allowed namespaces) and how its payloads reach `logs`:
 * - `logDelivery: 'direct'`: the filter invokes `logs`, with a permission that lets CloudWatch Logs invoke it
 *   from that log group only;
 * - `logDelivery: {kinesis}`: the filter writes to `stream` (from `logDeliveryStream`) through a role only
 *   CloudWatch Logs may assume for that log group, and an event source mapping feeds `logs` batches of
 *   records, one invocation at a time per shard; a batch that still fails after bisection and retries goes,
 *   as a pointer to its records, to the `logs` DLQ.
 */
export function logIngest(
  config: StageConfig,
  account: AccountContext,
  plane: ControlPlane,
  stream?: aws.kinesis.Stream,
) {
  const sourceArn = $resolve({ partition: account.partition, acct: account.account }).apply(
    ({ partition, acct }) =>
      logGroupArn({ partition, region: config.region, account: acct, name: config.logGroup }),
  );
  const filterPattern = logFilterPattern(config.logFilter, config.allowedNamespaces);
  if (config.logDelivery === 'direct') {
    const permission = new aws.lambda.Permission('LogsInvokePermission', {
      action: 'lambda:InvokeFunction',
      function: plane.functions.logs.name,
      principal: 'logs.amazonaws.com',
      sourceArn,
      sourceAccount: account.account,
    });
    const filter = new aws.cloudwatch.LogSubscriptionFilter(
      'LogsSubscription',
      {
        name: `trainkeeper-${config.stage}`,
        logGroup: config.logGroup,
        filterPattern,
        destinationArn: plane.functions.logs.arn,
      },
      { dependsOn: [permission] },
    );
    return { permission, filter };
  }

  if (!stream) throw new RangeError('logDelivery kinesis needs the stream from logDeliveryStream');
  const { kinesis } = config.logDelivery;
  const queue = plane.queues.logs;
  if (!queue) throw new RangeError('the logs Lambda has no DLQ');
  const role = new aws.iam.Role('LogsStreamWriterRole', {
    assumeRolePolicy: $resolve({ logGroupArn: sourceArn, acct: account.account }).apply(
      ({ logGroupArn, acct }) => JSON.stringify(logsToStreamTrustPolicy({ logGroupArn, account: acct })),
    ),
  });
  const rolePolicy = new aws.iam.RolePolicy('LogsStreamWriterPolicy', {
    role: role.name,
    policy: stream.arn.apply((arn) => JSON.stringify(policyDocument(logsToStreamStatements(arn)))),
  });
  // Another name than the direct filter's: a filter whose destination changes is replaced, and CloudWatch Logs
  // keys filters by name, so deleting the old one after creating its replacement under the same name would
  // delete the new one. Switching modes therefore needs the log group's second filter slot for a moment.
  const filter = new aws.cloudwatch.LogSubscriptionFilter(
    'LogsStreamSubscription',
    {
      name: `trainkeeper-${config.stage}-kinesis`,
      logGroup: config.logGroup,
      filterPattern,
      destinationArn: stream.arn,
      roleArn: role.arn,
      // A log stream's batches stay in order on one shard.
      distribution: 'ByLogStream',
    },
    // CloudWatch Logs puts a test record when the filter is created.
    { dependsOn: [rolePolicy] },
  );
  const mapping = new aws.lambda.EventSourceMapping(
    'LogsStreamMapping',
    {
      eventSourceArn: stream.arn,
      functionName: plane.functions.logs.arn,
      startingPosition: 'LATEST',
      batchSize: kinesis.batchSize,
      maximumBatchingWindowInSeconds: kinesis.batchingWindowSeconds,
      // One invocation at a time per shard: a job's concurrent writers are at most the shard count.
      parallelizationFactor: 1,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 3,
      maximumRecordAgeInSeconds: 3600,
      destinationConfig: { onFailure: { destinationArn: queue.arn } },
    },
    // The role's inline policy (control-plane.ts) carries the stream read and the DLQ write.
    { dependsOn: [plane.functions.logs.nodes.role] },
  );
  return { role, rolePolicy, filter, mapping };
}

/** The sweep, once a minute. */
export function sweepSchedule(plane: ControlPlane): sst.aws.Cron {
  return new sst.aws.Cron('Sweep', { schedule: SWEEP_SCHEDULE, function: plane.functions.sweep.arn });
}

function ruleToEvents(id: string, plane: ControlPlane, rule: aws.cloudwatch.EventRuleArgs) {
  const r = new aws.cloudwatch.EventRule(id, rule);
  new aws.cloudwatch.EventTarget(`${id}Target`, {
    rule: r.name,
    ...(rule.eventBusName ? { eventBusName: rule.eventBusName } : {}),
    arn: plane.functions.events.arn,
  });
  new aws.lambda.Permission(`${id}Permission`, {
    action: 'lambda:InvokeFunction',
    function: plane.functions.events.name,
    principal: 'events.amazonaws.com',
    sourceArn: r.arn,
  });
  return r;
}

/** HyperPod cluster events (default bus; HyperPod clusters only) and CLI commands (the stage's bus). */
export function eventRules(config: StageConfig, plane: ControlPlane) {
  const commands = ruleToEvents('CommandEvents', plane, {
    eventBusName: plane.bus.name,
    eventPattern: JSON.stringify(commandEventPattern()),
  });
  const hyperPod =
    config.cluster.kind === 'hyperpod'
      ? ruleToEvents('HyperPodEvents', plane, {
          eventPattern: JSON.stringify(hyperPodEventPattern(config.cluster.hyperPodArn)),
        })
      : undefined;
  return { commands, hyperPod };
}
