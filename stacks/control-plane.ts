/**
 * The four Lambdas (nodejs22.x, one role and one log group each) and the stage's EventBridge bus. Each
 * function gets the environment `functions/shell/config.ts` reads and only the IAM statements `lambdaStatements`
 * lists for it; the asynchronous ones (logs, sweep, events) retry twice and then land in their own SQS DLQ
 * (on-failure destination of the asynchronous invocation). With `logDelivery: {kinesis}` the `logs` role may
 * also read the log delivery stream (its event source mapping, stacks/triggers.ts, polls with that role).
 *
 * No SST `link`: linking `sst.aws.Dynamo`/`sst.aws.Bus` grants `dynamodb:*`/`events:*`, broader than the
 * handlers use, and the handlers read plain environment variables, not `Resource`.
 */
import type { AccountContext } from './account.ts';
import { eksName, type StageConfig } from './config.ts';
import type { MetricsWorkspace } from './metrics.ts';
import { deadLetterQueue } from './monitoring.ts';
import {
  eksClusterArn,
  LAMBDA_NEEDS,
  LAMBDA_TRUST_POLICY,
  type LambdaName,
  lambdaEnvironment,
  lambdaStatements,
} from './policy.ts';

const TIMEOUTS: Record<LambdaName, `${number} seconds`> = {
  // API Gateway HTTP APIs give up after 30 s.
  api: '29 seconds',
  logs: '60 seconds',
  sweep: '60 seconds',
  events: '60 seconds',
};

/** Component names of the Lambdas (`ApiHandler`, …). */
export const FUNCTION_NAMES: Record<LambdaName, string> = {
  api: 'ApiHandler',
  logs: 'LogsHandler',
  sweep: 'SweepHandler',
  events: 'EventsHandler',
};

/** What `controlPlane` builds. */
export interface ControlPlane {
  bus: sst.aws.Bus;
  functions: Record<LambdaName, sst.aws.Function>;
  /** DLQs of the asynchronous Lambdas. */
  queues: Partial<Record<LambdaName, aws.sqs.Queue>>;
}

/** Creates the bus, the DLQs and the four Lambdas. */
export function controlPlane(input: {
  config: StageConfig;
  account: AccountContext;
  table: sst.aws.Dynamo;
  metrics: MetricsWorkspace;
  /** The log delivery stream (`logDelivery: {kinesis}`; from `logDeliveryStream` in stacks/triggers.ts). */
  logStream?: aws.kinesis.Stream;
}): ControlPlane {
  const { config, account, table, metrics, logStream } = input;
  const bus = new sst.aws.Bus('Bus');
  const eksArn = $resolve({ partition: account.partition, acct: account.account }).apply(
    ({ partition, acct }) =>
      eksClusterArn({
        partition,
        region: config.region,
        account: acct,
        name: eksName(config.cluster),
      }),
  );
  const environment = $resolve({
    tableName: table.name,
    busName: bus.name,
    url: metrics.remoteWriteUrl,
  }).apply(({ tableName, busName, url }) =>
    // A fresh object per read: SST's Function adds its own keys to the environment object it is given.
    lambdaEnvironment(config, { tableName, busName, remoteWriteUrl: url }),
  );
  const hyperPodClusterArn = config.cluster.kind === 'hyperpod' ? config.cluster.hyperPodArn : undefined;

  const queues: Partial<Record<LambdaName, aws.sqs.Queue>> = {};
  const functions = {} as Record<LambdaName, sst.aws.Function>;
  for (const name of Object.keys(FUNCTION_NAMES) as LambdaName[]) {
    const dlq = LAMBDA_NEEDS[name].dlq ? deadLetterQueue(FUNCTION_NAMES[name], config) : undefined;
    if (dlq) queues[name] = dlq;
    // Inside the role's inline policy with the others (SST's `permissions`): a separate RolePolicy would fight
    // the role's exclusive `inlinePolicies`.
    const streamArn = name === 'logs' && logStream ? logStream.arn : undefined;
    const logGroup = new aws.cloudwatch.LogGroup(`${FUNCTION_NAMES[name]}Logs`, {
      name: `/aws/lambda/trainkeeper-${config.stage}-${name}`,
      retentionInDays: 30,
    });
    const permissions = $resolve({
      logGroupArn: logGroup.arn,
      tableArn: table.arn,
      busArn: bus.arn,
      workspaceArn: metrics.arn,
      eksClusterArn: eksArn,
      dlqArn: dlq?.arn ?? '',
      logStreamArn: streamArn ?? '',
    }).apply(({ logGroupArn, tableArn, busArn, workspaceArn, eksClusterArn, dlqArn, logStreamArn }) =>
      lambdaStatements(name, {
        logGroupArn,
        tableArn,
        busArn,
        workspaceArn,
        eksClusterArn,
        ...(hyperPodClusterArn ? { hyperPodClusterArn } : {}),
        ...(dlqArn ? { dlqArn } : {}),
        ...(logStreamArn ? { logStreamArn } : {}),
      }),
    );
    functions[name] = new sst.aws.Function(FUNCTION_NAMES[name], {
      handler: `functions/${name}.handler`,
      runtime: 'nodejs22.x',
      architecture: 'arm64',
      memory: '512 MB',
      timeout: TIMEOUTS[name],
      environment,
      permissions,
      logging: { logGroup: logGroup.name },
      ...(dlq ? { retries: 2 } : {}),
      transform: {
        // Exactly the variables functions/shell/config.ts reads: drop SST's `SST_RESOURCE_App`/`SST_KEY*` (they
        // serve `Resource` from the `sst` package, which the handlers do not use).
        function: (args: aws.lambda.FunctionArgs) => {
          args.environment = { variables: environment.apply((e) => ({ ...e })) };
        },
        // SST 4.17.1 also trusts the account root (for `sst dev`'s live mode, which we do not use): only
        // Lambda may assume a control-plane role.
        // Logging is granted on the Lambda's own log group (see `lambdaStatements`), so no managed policy.
        role: (args: aws.iam.RoleArgs) => {
          args.assumeRolePolicy = JSON.stringify(LAMBDA_TRUST_POLICY);
          args.managedPolicyArns = [];
        },
        ...(dlq
          ? {
              eventInvokeConfig: (args: aws.lambda.FunctionEventInvokeConfigArgs) => {
                args.destinationConfig = { onFailure: { destination: dlq.arn } };
              },
            }
          : {}),
      },
    });
  }
  return { bus, functions, queues };
}
