/**
 * What invokes the Lambdas: the IAM-authorized HTTP API (`api`), the log subscription on the application log
 * group (`logs`), the one-minute schedule (`sweep`), and two EventBridge rules (`events`): HyperPod cluster
 * events of this cluster on the default bus, and CLI commands on the stage's bus.
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
 * The subscription filter on the application log group (its pattern from stacks/log-filter.ts: by default
 * every record of the allowed namespaces) and the permission that lets CloudWatch Logs invoke `logs` from
 * that log group only.
 */
export function logIngest(config: StageConfig, account: AccountContext, plane: ControlPlane) {
  const permission = new aws.lambda.Permission('LogsInvokePermission', {
    action: 'lambda:InvokeFunction',
    function: plane.functions.logs.name,
    principal: 'logs.amazonaws.com',
    sourceArn: $resolve({ partition: account.partition, acct: account.account }).apply(
      ({ partition, acct }) =>
        logGroupArn({ partition, region: config.region, account: acct, name: config.logGroup }),
    ),
    sourceAccount: account.account,
  });
  const filter = new aws.cloudwatch.LogSubscriptionFilter(
    'LogsSubscription',
    {
      name: `trainkeeper-${config.stage}`,
      logGroup: config.logGroup,
      filterPattern: logFilterPattern(config.logFilter, config.allowedNamespaces),
      destinationArn: plane.functions.logs.arn,
    },
    { dependsOn: [permission] },
  );
  return { permission, filter };
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
