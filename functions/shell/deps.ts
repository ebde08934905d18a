/**
 * Wires the real adapters into the handlers' ports, once per Lambda instance (module scope), from the
 * validated `Config`. The local control plane calls `buildDeps` with a local config (dynalite endpoint, the
 * local API server's kubeconfig) — the same code path, other endpoints (CONVENTIONS §12).
 *
 * `lambdaHandler(makeHandler)` is what each handler file exports as `handler`: the first invocation reads
 * the environment (a bad variable fails that cold start with every problem listed) and builds the deps;
 * later invocations reuse them. Importing a handler file has no side effects, so tests can import
 * `makeHandler` without any environment. Each invocation runs with its Lambda context in scope, which the
 * `deadline` port (`lambdaDeadline`) reads: the reconciler stops starting agent calls near the time limit.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KubeConfig } from '@kubernetes/client-node';
import { EmfMetricsSink } from '../../adapters/aws/cloudwatch.ts';
import { clusterKubeConfig } from '../../adapters/aws/cluster-endpoint.ts';
import { EventBridgePublisher } from '../../adapters/aws/events.ts';
import { DynamoJobStore } from '../../adapters/dynamo/store.ts';
import { KubeCluster } from '../../adapters/kube/cluster.ts';
import { RemoteWriteMetricsSink } from '../../adapters/prometheus/remote-write.ts';
import { PrometheusTextSink } from '../../adapters/prometheus/text.ts';
import type { Clock, Deadline, EventPublisher, MetricStore, MetricsSink } from '../../core/ports.ts';
import { type Config, loadConfig } from './config.ts';
import { jsonLogger, type Logger } from './logger.ts';
import type { Deps } from './reconcile.ts';

/** Publisher used when no bus is configured (local runs): events stay in the store's timeline only. */
const noEventPublisher: EventPublisher = { publish: async () => {} };

/** The system clock: the only place handlers read wall time. */
const systemClock: Clock = { now: () => Date.now() };

/** What `lambdaDeadline` needs of the Lambda context. */
interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** The context of the invocation the current code runs for (set by `lambdaHandler`). */
const invocation = new AsyncLocalStorage<InvocationContext>();

/**
 * The time left to the Lambda invocation this code runs for (`context.getRemainingTimeInMillis()`);
 * `Infinity` outside one (the local plane and tests call `makeHandler`'s handler directly). Read through
 * AsyncLocalStorage, so it follows the invocation's async work and never another invocation's.
 */
export const lambdaDeadline: Deadline = {
  remainingMs: () => invocation.getStore()?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY,
};

/** Every sink gets every call, in order (aws mode: EMF for alarms and remote write to AMP). */
const allSinks = (sinks: MetricsSink[]): MetricsSink =>
  sinks.length === 1
    ? (sinks[0] as MetricsSink)
    : {
        recordDecision: async (actions, at) => {
          for (const sink of sinks) await sink.recordDecision(actions, at);
        },
        push: async (samples) => {
          for (const sink of sinks) await sink.push(samples);
        },
      };

/**
 * The metrics sinks of a configuration: CloudWatch EMF in aws mode (alarms), remote write when a URL is
 * given (AMP signed with SigV4 in aws mode; a plain Prometheus locally), and otherwise, locally, the text
 * endpoint the local plane serves at `/metrics`.
 */
function metricsSinkFor(config: Config, metricStore: MetricStore, log: Logger): MetricsSink {
  const sinks: MetricsSink[] = [];
  if (config.mode === 'aws') sinks.push(new EmfMetricsSink({ stage: config.stage }));
  if (config.ampRemoteWriteUrl) {
    sinks.push(
      new RemoteWriteMetricsSink({
        url: config.ampRemoteWriteUrl,
        ...(config.mode === 'aws' ? { sigv4: { region: config.region ?? 'us-east-1' } } : {}),
        log: (message, fields) => log.warn(message, fields),
      }),
    );
  } else if (config.mode === 'local') {
    sinks.push(new PrometheusTextSink(metricStore));
  }
  return allSinks(sinks);
}

/** The KubeConfig for the configured cluster: EKS (directly or via HyperPod) or a local kubeconfig/URL. */
async function kubeConfigFor(config: Config): Promise<KubeConfig> {
  const c = config.cluster;
  if (c.kind === 'local') {
    const kc = new KubeConfig();
    if (c.kubeconfig) kc.loadFromFile(c.kubeconfig);
    else {
      kc.loadFromOptions({
        clusters: [{ name: 'local', server: c.endpoint as string, skipTLSVerify: true }],
        users: [{ name: 'local' }],
        contexts: [{ name: 'local', cluster: 'local', user: 'local' }],
        currentContext: 'local',
      });
    }
    return kc;
  }
  const region = config.region as string;
  return clusterKubeConfig({
    target: c.kind === 'hyperpod' ? { hyperPodClusterName: c.name } : { eksClusterName: c.name },
    region,
    credentials: fromNodeProviderChain(),
    eks: new EKSClient({ region }),
    ...(c.kind === 'hyperpod' ? { sagemaker: new SageMakerClient({ region }) } : {}),
  });
}

/** Builds every port from the configuration. Overrides replace single ports (the local control plane). */
export async function buildDeps(config: Config, overrides: Partial<Deps> = {}): Promise<Deps> {
  const log: Logger = overrides.log ?? jsonLogger({ level: config.logLevel });
  const clock = overrides.clock ?? systemClock;
  const region = config.region ?? 'us-east-1';
  // One table behind the four store ports (the client connects lazily: unused when all four are overridden).
  const dynamo = new DynamoJobStore({
    client: DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region,
        ...(config.dynamoEndpoint
          ? {
              endpoint: config.dynamoEndpoint,
              credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
            }
          : {}),
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    ),
    tableName: config.tableName,
    clock,
  });
  const metricStore = overrides.metricStore ?? dynamo;
  const cluster =
    overrides.cluster ??
    new KubeCluster(await kubeConfigFor(config), { agentConcurrency: config.agentConcurrency });
  const events =
    overrides.events ??
    (config.eventBusName
      ? new EventBridgePublisher({
          client: new EventBridgeClient({ region }),
          eventBusName: config.eventBusName,
        })
      : noEventPublisher);
  const metrics = overrides.metrics ?? metricsSinkFor(config, metricStore, log);
  return {
    store: overrides.store ?? dynamo,
    timeline: overrides.timeline ?? dynamo,
    metricStore,
    idempotency: overrides.idempotency ?? dynamo,
    cluster,
    events,
    metrics,
    clock,
    deadline: overrides.deadline ?? lambdaDeadline,
    ids: overrides.ids ?? { uid: () => randomUUID() },
    config,
    log,
  };
}

/**
 * A Lambda entry point over `makeHandler`: deps are built on the first invocation from `process.env` and
 * reused while the instance lives. A failed build is not cached, so the next invocation retries it. The
 * invocation runs with its `context` in scope for `lambdaDeadline` (absent context: no time limit).
 */
export function lambdaHandler<E, R>(
  makeHandler: (deps: Deps) => (event: E) => Promise<R>,
): (event: E, context?: InvocationContext) => Promise<R> {
  let ready: Promise<(event: E) => Promise<R>> | undefined;
  const run = async (event: E): Promise<R> => {
    ready ??= buildDeps(loadConfig(process.env)).then(makeHandler);
    try {
      return await (await ready)(event);
    } catch (err) {
      // Keep a good build; drop a failed one so the next cold path rebuilds.
      await ready.catch(() => {
        ready = undefined;
      });
      throw err;
    }
  };
  return (event, context) => (context ? invocation.run(context, () => run(event)) : run(event));
}
