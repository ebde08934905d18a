/**
 * Wires the real adapters into the handlers' ports, once per Lambda instance (module scope), from the
 * validated `Config`. The local control plane calls `buildDeps` with a local config (dynalite endpoint, the
 * local API server's kubeconfig) — the same code path, other endpoints (CONVENTIONS §12).
 *
 * `lambdaHandler(makeHandler)` is what each handler file exports as `handler`: the first invocation reads
 * the environment (a bad variable fails that cold start with every problem listed) and builds the deps;
 * later invocations reuse them. Importing a handler file has no side effects, so tests can import
 * `makeHandler` without any environment.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KubeConfig } from '@kubernetes/client-node';
import { clusterKubeConfig } from '../adapters/aws/cluster-endpoint.ts';
import { EventBridgePublisher } from '../adapters/aws/events.ts';
import { DynamoJobStore } from '../adapters/dynamo/store.ts';
import { KubeCluster } from '../adapters/kube/cluster.ts';
import { RemoteWriteMetricsSink } from '../adapters/prometheus/remote-write.ts';
import type { Clock, EventPublisher, MetricsSink } from '../core/ports.ts';
import { type Config, loadConfig } from './config.ts';
import { jsonLogger, type Logger } from './logger.ts';
import type { Deps } from './reconcile.ts';

/** Publisher used when no bus is configured (local runs): events stay in the store's timeline only. */
export const noEventPublisher: EventPublisher = { publish: async () => {} };
/** Sink used when no remote-write URL is configured. */
export const noMetricsSink: MetricsSink = { push: async () => {} };

/** The system clock: the only place handlers read wall time. */
export const systemClock: Clock = { now: () => Date.now() };

/** The KubeConfig for the configured cluster: EKS (directly or via HyperPod) or a local kubeconfig/URL. */
export async function kubeConfigFor(config: Config): Promise<KubeConfig> {
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
  const store =
    overrides.store ??
    new DynamoJobStore({
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
  const cluster = overrides.cluster ?? new KubeCluster(await kubeConfigFor(config));
  const events =
    overrides.events ??
    (config.eventBusName
      ? new EventBridgePublisher({
          client: new EventBridgeClient({ region }),
          eventBusName: config.eventBusName,
        })
      : noEventPublisher);
  const metrics =
    overrides.metrics ??
    (config.ampRemoteWriteUrl
      ? new RemoteWriteMetricsSink({
          url: config.ampRemoteWriteUrl,
          ...(config.mode === 'aws' ? { sigv4: { region } } : {}),
          log: (message, fields) => log.warn(message, fields),
        })
      : noMetricsSink);
  return {
    store,
    cluster,
    events,
    metrics,
    clock,
    ids: overrides.ids ?? { uid: () => randomUUID() },
    config,
    log,
  };
}

/**
 * A Lambda entry point over `makeHandler`: deps are built on the first invocation from `process.env` and
 * reused while the instance lives. A failed build is not cached, so the next invocation retries it.
 */
export function lambdaHandler<E, R>(
  makeHandler: (deps: Deps) => (event: E) => Promise<R>,
): (event: E) => Promise<R> {
  let ready: Promise<(event: E) => Promise<R>> | undefined;
  return async (event) => {
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
}
