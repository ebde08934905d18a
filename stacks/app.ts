/**
 * The whole stage, stack by stack, in dependency order. `sst.config.ts` calls this with the stage's
 * configuration and returns its outputs; the offline tests call the same function under Pulumi mocks.
 */
import { accountContext } from './account.ts';
import { clusterAccess } from './cluster-access.ts';
import type { StageConfig } from './config.ts';
import { controlPlane } from './control-plane.ts';
import { metrics } from './metrics.ts';
import { alarms, alarmTopic } from './monitoring.ts';
import { storage } from './storage.ts';
import { eventRules, httpApi, logDeliveryStream, logIngest, sweepSchedule } from './triggers.ts';

/**
 * Creates every resource of the stage and returns the stack outputs: `ApiUrl` (what `trainkeeper
 * --endpoint` takes), `TableName`, `BusName`, the Lambda role ARNs, the alarm topic and the remote-write URL.
 */
export function trainkeeper(config: StageConfig) {
  const account = accountContext(config.region);
  const table = storage(config);
  const workspace = metrics(config, account);
  const logStream = logDeliveryStream(config);
  const plane = controlPlane({
    config,
    account,
    table,
    metrics: workspace,
    ...(logStream ? { logStream } : {}),
  });
  const api = httpApi(plane);
  logIngest(config, account, plane, logStream);
  sweepSchedule(plane);
  eventRules(config, plane);
  clusterAccess(config, plane);
  const topic = alarmTopic(config);
  alarms({
    config,
    topic,
    functions: plane.functions,
    queues: plane.queues,
    ...(logStream ? { logStream } : {}),
  });
  return {
    ApiUrl: api.url,
    TableName: table.name,
    BusName: plane.bus.name,
    ApiRoleArn: plane.functions.api.nodes.role.arn,
    LogsRoleArn: plane.functions.logs.nodes.role.arn,
    SweepRoleArn: plane.functions.sweep.nodes.role.arn,
    EventsRoleArn: plane.functions.events.nodes.role.arn,
    AlarmTopicArn: topic.arn,
    RemoteWriteUrl: workspace.remoteWriteUrl,
  };
}
