/**
 * Alerting: one SNS topic (with the stage's e-mail subscription), the SQS dead-letter queues of the
 * asynchronous triggers, and the CloudWatch alarms that notify the topic — on the EMF metrics the handlers
 * write (job failed, restart storm), on each Lambda's Errors and Throttles, and on DLQ depth.
 */
import type { StageConfig } from './config.ts';
import { type AlarmSpec, emfAlarms } from './policy.ts';

/** Creates the alarm topic, subscribing `alarmEmail` when configured (the address must confirm). */
export function alarmTopic(config: StageConfig): aws.sns.Topic {
  const topic = new aws.sns.Topic('Alarms', { name: `trainkeeper-${config.stage}-alarms` });
  if (config.alarmEmail) {
    new aws.sns.TopicSubscription('AlarmsEmail', {
      topic: topic.arn,
      protocol: 'email',
      endpoint: config.alarmEmail,
    });
  }
  return topic;
}

/** A dead-letter queue for one asynchronous trigger: 14 days to inspect and redrive, SSE on. */
export function deadLetterQueue(name: string, config: StageConfig): aws.sqs.Queue {
  return new aws.sqs.Queue(`${name}Dlq`, {
    name: `trainkeeper-${config.stage}-${name.toLowerCase()}-dlq`,
    messageRetentionSeconds: 14 * 24 * 3600,
    sqsManagedSseEnabled: true,
  });
}

function alarm(
  id: string,
  spec: AlarmSpec,
  topicArn: $util.Input<string>,
  dimensions?: $util.Input<Record<string, $util.Input<string>>>,
) {
  return new aws.cloudwatch.MetricAlarm(id, {
    alarmDescription: spec.description,
    namespace: spec.namespace,
    metricName: spec.metricName,
    dimensions: dimensions ?? spec.dimensions,
    statistic: spec.statistic,
    period: spec.periodSeconds,
    evaluationPeriods: 1,
    threshold: spec.threshold,
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
    alarmActions: [topicArn],
    okActions: [topicArn],
  });
}

/**
 * Every alarm of the stage. Invariant: each alarm's actions (alarm and OK) are the topic, and nothing else.
 */
export function alarms(input: {
  config: StageConfig;
  topic: aws.sns.Topic;
  functions: Record<string, sst.aws.Function>;
  queues: Record<string, aws.sqs.Queue>;
  /** The log delivery stream (`logDelivery: {kinesis}`), read by the `logs` function. */
  logStream?: aws.kinesis.Stream;
}): aws.cloudwatch.MetricAlarm[] {
  const { config, topic } = input;
  const out: aws.cloudwatch.MetricAlarm[] = [];
  for (const spec of emfAlarms(config.stage, config.restartStormThreshold)) {
    out.push(alarm(`${spec.name}Alarm`, spec, topic.arn));
  }
  for (const [name, fn] of Object.entries(input.functions)) {
    for (const metricName of ['Errors', 'Throttles'] as const) {
      const spec: AlarmSpec = {
        name: `${name}${metricName}`,
        description: `The ${name} Lambda reports ${metricName.toLowerCase()} (stage ${config.stage})`,
        namespace: 'AWS/Lambda',
        metricName,
        dimensions: {},
        statistic: 'Sum',
        periodSeconds: 300,
        threshold: 1,
      };
      out.push(alarm(`${spec.name}Alarm`, spec, topic.arn, { FunctionName: fn.name }));
    }
  }
  for (const [name, queue] of Object.entries(input.queues)) {
    const spec: AlarmSpec = {
      name: `${name}DlqDepth`,
      description: `Failed ${name} invocations are waiting in the DLQ (stage ${config.stage})`,
      namespace: 'AWS/SQS',
      metricName: 'ApproximateNumberOfMessagesVisible',
      dimensions: {},
      statistic: 'Maximum',
      periodSeconds: 300,
      threshold: 1,
    };
    out.push(alarm(`${spec.name}Alarm`, spec, topic.arn, { QueueName: queue.name }));
  }
  const logs = input.functions.logs;
  if (input.logStream && logs) {
    // Log lines waiting in the stream are faults nobody sees yet: the mapping fell behind (or is stuck on
    // a failing batch), or CloudWatch Logs cannot write into the stream fast enough (too few shards).
    const behind: AlarmSpec = {
      name: 'LogsIteratorAge',
      description: `The logs Lambda is more than 5 minutes behind its log stream (stage ${config.stage})`,
      namespace: 'AWS/Lambda',
      metricName: 'IteratorAge',
      dimensions: {},
      statistic: 'Maximum',
      periodSeconds: 300,
      threshold: 300_000,
    };
    out.push(alarm(`${behind.name}Alarm`, behind, topic.arn, { FunctionName: logs.name }));
    const throttled: AlarmSpec = {
      name: 'LogsStreamWriteThrottled',
      description: `CloudWatch Logs is throttled writing into the log stream: add shards (stage ${config.stage})`,
      namespace: 'AWS/Kinesis',
      metricName: 'WriteProvisionedThroughputExceeded',
      dimensions: {},
      statistic: 'Sum',
      periodSeconds: 300,
      threshold: 1,
    };
    out.push(alarm(`${throttled.name}Alarm`, throttled, topic.arn, { StreamName: input.logStream.name }));
  }
  return out;
}
