/**
 * The embedded local control plane: the same Lambda handlers and adapters as on AWS, wired to local
 * stand-ins that speak the real protocols (DESIGN.md "The embedded local control plane"):
 *
 *   loopback API (API Gateway v2 events) ──► functions/api ─┐
 *   kubelet output ─► LogShipper (CW Logs payloads) ─► logs ├──► reconcile ──► dynalite / DynamoDB Local
 *   timer (EventBridge schedule stand-in) ─────────► sweep ─┘        └──────► local Kubernetes API (+ agents)
 *
 * Nothing here forks the control plane's logic: it only chooses endpoints and starts the stand-ins.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applicationLogGroup } from '../adapters/aws/cloudwatch-logs.ts';
import { ensureTable } from '../adapters/dynamo/store.ts';
import { PROMETHEUS_TEXT_CONTENT_TYPE, PrometheusTextSink } from '../adapters/prometheus/text.ts';
import { makeHandler as makeApiHandler } from '../functions/api.ts';
import { makeHandler as makeEventsHandler } from '../functions/events.ts';
import { makeHandler as makeLogsHandler } from '../functions/logs.ts';
import { loadConfig } from '../functions/shell/config.ts';
import { buildDeps } from '../functions/shell/deps.ts';
import { jsonLogger, type Logger } from '../functions/shell/logger.ts';
import type { Deps } from '../functions/shell/reconcile.ts';
import { makeHandler as makeSweepHandler } from '../functions/sweep.ts';
import { logFilterPattern } from '../stacks/log-filter.ts';
import { prepareAgentBin } from './agent-bin.ts';
import { type HttpApiHandler, type LocalApiGateway, startLocalApiGateway } from './api-gateway.ts';
import { type LocalDynamo, makeDocClient, startDynalite, startDynamoDbLocal } from './dynamo.ts';
import { type LocalKube, startLocalKube } from './kube/index.ts';
import { LocalLogGroup } from './logs/cloudwatch-logs-api.ts';
import type { LogDialect } from './logs/container-insights.ts';
import { type CloudWatchLogsEvent, type KinesisEvent, LogShipper } from './shipper.ts';

/**
 * The repository root. Pods do not run here (each gets its own directory under the data dir); its
 * `examples/` is copied into every pod's directory, standing in for the image's contents, so manifests'
 * relative script paths (`examples/trainers/sim_trainer.py`) resolve.
 */
export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface LocalControlPlaneOptions {
  /** Fake HyperPod nodes (one training pod each). Default 4. */
  nodes?: number;
  /** Loopback port of the API (0 = a free one). Default 0. */
  port?: number;
  /** Where state, checkpoints, chaos files and logs go. Default: a new temporary directory, removed on stop. */
  dataDir?: string;
  /** `dynalite` (default, in-process) or `local` (DynamoDB Local; needs Java). */
  dynamodb?: 'dynalite' | 'local';
  /** Remote-write metrics to this Prometheus; otherwise they are served at `<api>/metrics`. */
  prometheusUrl?: string;
  /** How often the sweep runs. Default 1000 ms (EventBridge runs it every minute on AWS). */
  sweepIntervalMs?: number;
  /** Where the handlers' JSON logs go. Default: `<dataDir>/control-plane.log`. */
  log?: Logger;
  /**
   * What the log shipper stand-in writes (local/logs/container-insights.ts): `stock` (default, the Amazon
   * CloudWatch Observability add-on's records, Labels Off), `labels` (Labels On) or `raw` (plain lines).
   */
  logDialect?: LogDialect;
  /**
   * How the subscription hands log batches to `logs`, as the stage's `logDelivery` deploys it: `direct`
   * (default: one stream's batch per invocation) or `kinesis` (through a data stream stand-in: many streams'
   * batches per invocation, one invocation at a time per shard; local/shipper.ts).
   */
  logDelivery?: 'direct' | 'kinesis';
  /** Told each start-up step as it completes (`trainkeeper local up` prints them). */
  onProgress?: (step: string) => void;
  /**
   * The subscription filter pattern the shipper applies (CloudWatch semantics). Default: the deployed
   * default (`logFilterPattern('namespaces', …)` of stacks/log-filter.ts) over this plane's allowed
   * namespaces.
   */
  logFilterPattern?: string;
  /**
   * Namespaces jobs may run in (`TRAINKEEPER_ALLOWED_NAMESPACES`). Default `LOCAL_ALLOWED_NAMESPACES`: a
   * concrete list, as a stage has, so the default subscription filter is the JSON namespace pattern AWS
   * applies (with `*` it would be the empty pattern, kinder than any real stage).
   */
  allowedNamespaces?: readonly string[];
}

/** The local plane's allowed namespaces unless told otherwise: where its example jobs run. */
export const LOCAL_ALLOWED_NAMESPACES: readonly string[] = ['default'];

export interface LocalControlPlane {
  /** The TrainKeeper API (what `--endpoint` takes). */
  apiUrl: string;
  kube: LocalKube;
  deps: Deps;
  dataDir: string;
  /** Every pod sees it as `TRAINKEEPER_CHAOS_DIR` (fault injection files, see `local chaos`). */
  chaosDir: string;
  /** Runs one sweep now (tests use it instead of waiting for the timer). */
  sweep(): Promise<void>;
  /** Ships every captured log line now and waits for its delivery. */
  flushLogs(): Promise<void>;
  /** Invokes the `events` handler with an EventBridge envelope (HyperPod node events, commands). */
  sendEvent(event: unknown): Promise<unknown>;
  /** Stops everything it started, leaving no process behind. Idempotent. */
  stop(): Promise<void>;
}

/** The file `trainkeeper local up` writes so that `local chaos` and the CLI find a running plane. */
export interface LocalStateFile {
  apiUrl: string;
  kubeconfig: string;
  chaosDir: string;
  pid: number;
}

export const STATE_FILE = 'local.json';

/** A JSON logger appending to `file`; its stream is closed by one of the `cleanups`. */
function fileLogger(file: string, cleanups: (() => Promise<void>)[]): Logger {
  const out = createWriteStream(file, { flags: 'a' });
  cleanups.push(() => new Promise<void>((resolve) => out.end(resolve)));
  return jsonLogger({ level: 'info', write: (line) => out.write(`${line}\n`) });
}

/** Starts the whole control plane on this machine. */
export async function startLocalControlPlane(
  options: LocalControlPlaneOptions = {},
): Promise<LocalControlPlane> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = resolve(options.dataDir ?? (await mkdtemp(join(tmpdir(), 'trainkeeper-'))));
  const chaosDir = join(dataDir, 'chaos');
  await mkdir(chaosDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const log: Logger = options.log ?? fileLogger(join(dataDir, 'control-plane.log'), cleanups);
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((err) => log.warn('local: cleanup failed', { error: String(err) }));
    }
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const dynamo: LocalDynamo =
      options.dynamodb === 'local' ? await startDynamoDbLocal() : await startDynalite();
    cleanups.push(() => dynamo.stop());
    const tableName = 'trainkeeper-local';
    await ensureTable(makeDocClient(dynamo.endpoint), tableName);
    const progress = options.onProgress ?? (() => {});
    progress(`DynamoDB ready (${options.dynamodb === 'local' ? 'DynamoDB Local' : 'dynalite'})`);

    const binDir = await prepareAgentBin(join(dataDir, 'bin'));
    progress('agent ready');
    const kube = await startLocalKube({
      nodes: options.nodes ?? 4,
      podsDir: join(dataDir, 'pods'),
      imageFiles: [join(REPO_ROOT, 'examples')],
      pathPrepend: [binDir],
      env: { TRAINKEEPER_CHAOS_DIR: chaosDir },
    });
    cleanups.push(() => kube.stop());
    const kubeconfig = join(dataDir, 'kubeconfig.yaml');
    // It holds the API's bearer token: readable by the user only.
    await kube.writeKubeconfig(kubeconfig);
    progress(`Kubernetes API and ${options.nodes ?? 4} node(s) ready`);

    const config = loadConfig({
      TRAINKEEPER_MODE: 'local',
      TRAINKEEPER_TABLE: tableName,
      TRAINKEEPER_DYNAMO_ENDPOINT: dynamo.endpoint,
      TRAINKEEPER_CLUSTER_KIND: 'local',
      TRAINKEEPER_KUBECONFIG: kubeconfig,
      TRAINKEEPER_ALLOWED_NAMESPACES: (options.allowedNamespaces ?? LOCAL_ALLOWED_NAMESPACES).join(','),
      TRAINKEEPER_POD_SECURITY: 'baseline',
      TRAINKEEPER_STAGE: 'local',
      ...(options.prometheusUrl ? { TRAINKEEPER_AMP_REMOTE_WRITE_URL: options.prometheusUrl } : {}),
    });
    const deps = await buildDeps(config, { log });

    const api = makeApiHandler(deps) as unknown as HttpApiHandler;
    const logs = makeLogsHandler(deps);
    const sweepHandler = makeSweepHandler(deps);
    const events = makeEventsHandler(deps);

    const shipper = new LogShipper({
      logGroup: applicationLogGroup('trainkeeper-local'),
      dialect: options.logDialect ?? 'stock',
      filterPattern: options.logFilterPattern ?? logFilterPattern('namespaces', config.allowedNamespaces),
      ...(options.logDelivery === 'kinesis'
        ? { kinesis: { shards: 2 }, deliver: (event: KinesisEvent) => logs(event) }
        : { deliver: (event: CloudWatchLogsEvent) => logs(event) }),
      onError: (err, attempt) => log.warn('local: log delivery failed', { attempt, error: String(err) }),
    });
    // What the log group holds, for `trainkeeper logs` (FilterLogEvents at <api>/local/cloudwatch-logs).
    const logGroup = new LocalLogGroup(applicationLogGroup('trainkeeper-local'));
    const unsubscribe = kube.onLog((line) => {
      logGroup.accept(line);
      shipper.accept(line);
    });
    cleanups.push(async () => {
      unsubscribe();
      await shipper.stop();
    });

    // The EventBridge schedule stand-in: one sweep at a time, like a schedule with reserved concurrency 1.
    let sweeping: Promise<void> | undefined;
    const sweep = () => {
      sweeping ??= sweepHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })
        .then(() => undefined)
        .catch((err) => log.warn('local: sweep failed', { error: String(err) }))
        .finally(() => {
          sweeping = undefined;
        });
      return sweeping;
    };
    const timer = setInterval(() => void sweep(), options.sweepIntervalMs ?? 1000);
    cleanups.push(async () => {
      clearInterval(timer);
      await sweeping;
    });

    const gateway: LocalApiGateway = await startLocalApiGateway({
      handler: api,
      ...(options.port !== undefined ? { port: options.port } : {}),
      extraRoutes: [
        (req, res) => logGroup.route(req, res),
        async (req, res) => {
          // Served when the configuration chose the text sink (no remote-write URL).
          const metrics = deps.metrics;
          if (req.method !== 'GET' || req.url !== '/metrics' || !(metrics instanceof PrometheusTextSink))
            return false;
          res.writeHead(200, { 'content-type': PROMETHEUS_TEXT_CONTENT_TYPE });
          res.end(await metrics.scrape());
          return true;
        },
      ],
      onError: (err) => log.error('local: api handler failed', { error: String(err) }),
    });
    cleanups.push(() => gateway.close());
    progress('handlers, log shipper, sweep and API started');

    const state: LocalStateFile = { apiUrl: gateway.url, kubeconfig, chaosDir, pid: process.pid };
    await writeFile(join(dataDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);

    return {
      apiUrl: gateway.url,
      kube,
      deps,
      dataDir,
      chaosDir,
      sweep,
      flushLogs: () => shipper.flush(),
      sendEvent: (event) => events(event),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
