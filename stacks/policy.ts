/**
 * Pure builders the stacks call: IAM statements per Lambda, EventBridge patterns, the HTTP API route table,
 * ARNs and the Lambda environment (the log subscription filter pattern is in stacks/log-filter.ts). No SST globals and no Pulumi
 * types, so tests check them directly and the stacks only wire their results into resources.
 *
 * Invariants:
 * - every statement names concrete resources: the only wildcard is `<own log group>:*` (its log streams) — and
 *   the application log group's ARN (`…:log-group:<name>:*`) in the conditions of the CloudWatch Logs role;
 * - each Lambda's statements are exactly what its code path calls (see `LAMBDA_NEEDS`);
 * - the Lambda environment holds only variables `functions/shell/config.ts` reads.
 */
import { EMF_NAMESPACE } from '../adapters/aws/cloudwatch.ts';
import { TABLE } from '../adapters/dynamo/table.ts';
import type { StageConfig } from './config.ts';

/** The four Lambdas. */
export const LAMBDAS = ['api', 'logs', 'sweep', 'events'] as const;
/** One of the four Lambdas. */
export type LambdaName = (typeof LAMBDAS)[number];

/** One IAM policy statement (Allow). */
export interface Statement {
  actions: string[];
  resources: string[];
}

/**
 * DynamoDB actions `DynamoJobStore` sends on the hot path (Get/Put/Update/Delete, Query on the table and
 * its indexes, BatchWrite for a job's parts and timeline). `TransactWriteItems` needs no action of its own:
 * IAM checks each Put in it as `PutItem`. `CreateTable`/`UpdateTimeToLive` are only used by `ensureTable`
 * in local runs, never by a Lambda.
 */
export const DYNAMO_ITEM_ACTIONS = [
  'dynamodb:BatchWriteItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
] as const;

/** What a Lambda calls, by port. Every trigger ends in `reconcile`, which uses all four ports. */
export interface LambdaNeeds {
  /** Job store (DynamoDB). */
  store: boolean;
  /** Lifecycle events (EventBridge PutEvents). */
  events: boolean;
  /** Metrics push (AMP remote write). */
  metrics: boolean;
  /** Cluster endpoint resolution (eks/sagemaker DescribeCluster). */
  cluster: boolean;
  /** Asynchronous trigger with an on-failure SQS destination. */
  dlq: boolean;
  /**
   * May be fed by the log delivery stream (`logDelivery: {kinesis}`): Lambda's event source mapping polls it
   * with the function's role. Granted only when `PolicyTargets.logStreamArn` is given.
   */
  logStream: boolean;
}

/**
 * The needs of each Lambda. All four reconcile (store, events, metrics, cluster); `api` is synchronous (no
 * DLQ: the caller sees the error).
 */
export const LAMBDA_NEEDS: Record<LambdaName, LambdaNeeds> = {
  api: { store: true, events: true, metrics: true, cluster: true, dlq: false, logStream: false },
  logs: { store: true, events: true, metrics: true, cluster: true, dlq: true, logStream: true },
  sweep: { store: true, events: true, metrics: true, cluster: true, dlq: true, logStream: false },
  events: { store: true, events: true, metrics: true, cluster: true, dlq: true, logStream: false },
};

/** The ARNs a Lambda's statements are scoped to. */
export interface PolicyTargets {
  /** The Lambda's own log group (`arn:…:log-group:<name>`, without `:*`). */
  logGroupArn: string;
  tableArn: string;
  busArn: string;
  workspaceArn: string;
  eksClusterArn: string;
  /** Absent for a plain EKS cluster. */
  hyperPodClusterArn?: string;
  /**
   * The Lambda's own DLQ (absent for `api`). For `logs` fed by Kinesis it is also the event source mapping's
   * on-failure destination, which Lambda writes to with the same `sqs:SendMessage`.
   */
  dlqArn?: string;
  /** The log delivery stream (`logs` only, and only when `logDelivery` is `{kinesis}`). */
  logStreamArn?: string;
}

/**
 * The IAM statements of one Lambda. No STS statement: the EKS token is a *presigned* `GetCallerIdentity`
 * URL that the EKS authenticator calls, and `GetCallerIdentity` needs no permission anyway. Logging (and the
 * EMF lines CloudWatch turns into metrics) needs only stream creation and writes in the Lambda's own log
 * group, which the stack creates — instead of AWSLambdaBasicExecutionRole's `logs:*` actions on `*`.
 */
export function lambdaStatements(name: LambdaName, t: PolicyTargets): Statement[] {
  const needs = LAMBDA_NEEDS[name];
  const out: Statement[] = [
    { actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [`${t.logGroupArn}:*`] },
  ];
  if (needs.store) {
    out.push({
      actions: [...DYNAMO_ITEM_ACTIONS],
      resources: [t.tableArn, ...Object.keys(TABLE.globalIndexes).map((i) => `${t.tableArn}/index/${i}`)],
    });
  }
  if (needs.events) out.push({ actions: ['events:PutEvents'], resources: [t.busArn] });
  if (needs.metrics) out.push({ actions: ['aps:RemoteWrite'], resources: [t.workspaceArn] });
  if (needs.cluster) {
    out.push({ actions: ['eks:DescribeCluster'], resources: [t.eksClusterArn] });
    if (t.hyperPodClusterArn) {
      out.push({ actions: ['sagemaker:DescribeCluster'], resources: [t.hyperPodClusterArn] });
    }
  }
  if (needs.dlq) {
    if (!t.dlqArn) throw new RangeError(`the ${name} Lambda needs its DLQ ARN`);
    out.push({ actions: ['sqs:SendMessage'], resources: [t.dlqArn] });
  }
  if (t.logStreamArn) {
    if (!needs.logStream) throw new RangeError(`the ${name} Lambda reads no log stream`);
    out.push(...kinesisConsumerStatements(t.logStreamArn));
  }
  return out;
}

/**
 * What Lambda's Kinesis event source mapping (standard iterator, no enhanced fan-out consumer) calls with the
 * function's role, all authorized on the stream itself: the list in the Lambda developer guide ("Process Amazon
 * Kinesis Data Streams records with Lambda"). `kinesis:ListStreams`, which AWSLambdaKinesisExecutionRole also
 * grants, is left out: it is account-level (no resource to scope it to), the guide no longer lists it among
 * what the mapping needs (older versions did), and the mapping is given the stream's ARN, so it never has to
 * list streams. `SubscribeToShard` serves enhanced fan-out only; it is in the guide's list and scoped to this
 * stream, so a later switch to a consumer needs no policy change.
 */
export const KINESIS_CONSUMER_ACTIONS = [
  'kinesis:DescribeStream',
  'kinesis:DescribeStreamSummary',
  'kinesis:GetRecords',
  'kinesis:GetShardIterator',
  'kinesis:ListShards',
  'kinesis:SubscribeToShard',
] as const;

/**
 * The statements that let the `logs` Lambda's event source mapping read `streamArn`. The stream is encrypted
 * with the AWS-managed key `alias/aws/kinesis`, which needs no KMS statement (Kinesis Data Streams developer
 * guide: the default service key "does not require application of custom IAM permissions").
 */
export function kinesisConsumerStatements(streamArn: string): Statement[] {
  return [{ actions: [...KINESIS_CONSUMER_ACTIONS], resources: [streamArn] }];
}

/**
 * What the role CloudWatch Logs assumes may do: `kinesis:PutRecord` on the delivery stream only — the one
 * action the CloudWatch Logs guide grants for a Kinesis subscription (it grants no `PutRecords`).
 */
export function logsToStreamStatements(streamArn: string): Statement[] {
  return [{ actions: ['kinesis:PutRecord'], resources: [streamArn] }];
}

/**
 * Trust policy of the role CloudWatch Logs assumes to write into the delivery stream: `logs.amazonaws.com`,
 * only on behalf of the application log group (`aws:SourceArn`, its `logGroupArn`) of this account
 * (`aws:SourceAccount`) — the confused-deputy guard the CloudWatch Logs guide recommends, narrowed from its
 * example's `arn:aws:logs:<region>:<account>:*` to the one log group.
 */
export function logsToStreamTrustPolicy(p: { logGroupArn: string; account: string }) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'logs.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: {
          ArnLike: { 'aws:SourceArn': p.logGroupArn },
          StringEquals: { 'aws:SourceAccount': p.account },
        },
      },
    ],
  } as const;
}

/** An IAM policy document allowing `statements`. */
export function policyDocument(statements: Statement[]) {
  return {
    Version: '2012-10-17',
    Statement: statements.map((s) => ({ Effect: 'Allow', Action: s.actions, Resource: s.resources })),
  } as const;
}

/** Name of the stage's log delivery stream (`logDelivery: {kinesis}`). */
export function logStreamName(stage: string): string {
  return `trainkeeper-${stage}-logs`;
}

/** Trust policy of every Lambda role: assumable by the Lambda service only. */
export const LAMBDA_TRUST_POLICY = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
} as const;

/** `arn:<partition>:eks:<region>:<account>:cluster/<name>` (the resource eks:DescribeCluster authorizes). */
export function eksClusterArn(p: {
  partition: string;
  region: string;
  account: string;
  name: string;
}): string {
  return `arn:${p.partition}:eks:${p.region}:${p.account}:cluster/${p.name}`;
}

/** The ARN of an existing AMP workspace (`aps:RemoteWrite` is authorized on it). */
export function ampWorkspaceArn(p: {
  partition: string;
  region: string;
  account: string;
  id: string;
}): string {
  return `arn:${p.partition}:aps:${p.region}:${p.account}:workspace/${p.id}`;
}

/** Remote-write URL from a workspace's Prometheus endpoint (`https://aps-workspaces…/workspaces/ws-…`). */
export function remoteWriteUrl(prometheusEndpoint: string): string {
  return `${prometheusEndpoint.replace(/\/+$/, '')}/api/v1/remote_write`;
}

/** The Prometheus endpoint of an existing workspace. */
export function ampEndpoint(region: string, workspaceId: string): string {
  return `https://aps-workspaces.${region}.amazonaws.com/workspaces/${workspaceId}/`;
}

/** `arn:…:logs:<region>:<account>:log-group:<name>:*` — what `logs.amazonaws.com` invokes from. */
export function logGroupArn(p: { partition: string; region: string; account: string; name: string }): string {
  return `arn:${p.partition}:logs:${p.region}:${p.account}:log-group:${p.name}:*`;
}

/**
 * EventBridge identity of the events the `events` Lambda handles. Equal to `HYPERPOD_EVENT` and
 * `COMMAND_EVENT` in functions/events.ts (restated so the SST program does not bundle the handler's
 * dependencies; test/stacks checks they agree).
 */
export const HYPERPOD_EVENT = {
  source: 'aws.sagemaker',
  detailType: 'SageMaker HyperPod Cluster Event',
} as const;
/** See `HYPERPOD_EVENT`. */
export const COMMAND_EVENT = { source: 'trainkeeper.cli', detailType: 'TrainKeeper Command' } as const;

/** An EventBridge event pattern. */
export type EventPattern = Record<string, string[]>;

/** HyperPod cluster events of this stage's cluster only (on the account's default bus). */
export function hyperPodEventPattern(clusterArn: string): EventPattern {
  return {
    source: [HYPERPOD_EVENT.source],
    'detail-type': [HYPERPOD_EVENT.detailType],
    resources: [clusterArn],
  };
}

/** TrainKeeper CLI commands on the stage's bus. */
export function commandEventPattern(): EventPattern {
  return { source: [COMMAND_EVENT.source], 'detail-type': [COMMAND_EVENT.detailType] };
}

/** The HTTP API routes `functions/api.ts` serves; `$default` sends anything else to it for its 404/405. */
export const API_ROUTES = [
  'POST /jobs',
  'GET /jobs',
  'GET /jobs/{namespace}/{name}',
  'DELETE /jobs/{namespace}/{name}',
  'GET /jobs/{namespace}/{name}/events',
  'POST /jobs/{namespace}/{name}/restart',
  'PUT /jobs/{namespace}/{name}/rules',
  '$default',
] as const;

/**
 * The Lambda environment: exactly the variables `functions/shell/config.ts` reads (in `aws` mode; `AWS_REGION` is
 * set by Lambda). Resource names are Pulumi outputs in the stacks, plain strings here.
 */
export function lambdaEnvironment(
  config: StageConfig,
  r: { tableName: string; busName: string; remoteWriteUrl: string },
): Record<string, string> {
  return {
    TRAINKEEPER_MODE: 'aws',
    TRAINKEEPER_TABLE: r.tableName,
    TRAINKEEPER_CLUSTER_KIND: config.cluster.kind,
    TRAINKEEPER_CLUSTER_NAME: config.cluster.name,
    TRAINKEEPER_ALLOWED_NAMESPACES: config.allowedNamespaces.join(','),
    ...(config.access ? { TRAINKEEPER_ACCESS: JSON.stringify(config.access) } : {}),
    TRAINKEEPER_POD_SECURITY: config.podSecurity,
    TRAINKEEPER_AMP_REMOTE_WRITE_URL: r.remoteWriteUrl,
    TRAINKEEPER_EVENT_BUS: r.busName,
    TRAINKEEPER_LOG_LEVEL: config.logLevel,
    TRAINKEEPER_STAGE: config.stage,
  };
}

/** One CloudWatch alarm, plainly. */
export interface AlarmSpec {
  name: string;
  description: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  statistic: 'Sum' | 'Maximum';
  periodSeconds: number;
  threshold: number;
}

/**
 * Alarms on the EMF metrics (`TrainKeeper` namespace, `[Stage]` dimension set, adapters/aws/cloudwatch.ts):
 * any job failure, and a restart storm (`threshold` restarts of any level within 5 minutes).
 */
export function emfAlarms(stage: string, restartStormThreshold: number): AlarmSpec[] {
  return [
    {
      name: 'JobFailed',
      description: `A TrainKeeper job failed (stage ${stage})`,
      namespace: EMF_NAMESPACE,
      metricName: 'JobFailures',
      dimensions: { Stage: stage },
      statistic: 'Sum',
      periodSeconds: 60,
      threshold: 1,
    },
    {
      name: 'RestartStorm',
      description: `At least ${restartStormThreshold} restarts within 5 minutes (stage ${stage})`,
      namespace: EMF_NAMESPACE,
      metricName: 'Restarts',
      dimensions: { Stage: stage },
      statistic: 'Sum',
      periodSeconds: 300,
      threshold: restartStormThreshold,
    },
  ];
}

/** The Kubernetes group the Lambdas' roles map to (subjects of deploy/kubernetes/rbac.yaml). */
export const KUBERNETES_GROUP = 'trainkeeper-control-plane';

/** The sweep's schedule: once a minute (the finest EventBridge rate). */
export const SWEEP_SCHEDULE = 'rate(1 minute)';
