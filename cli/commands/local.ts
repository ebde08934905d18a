/**
 * `trainkeeper local up` and `trainkeeper local chaos`: run the whole control plane on this machine
 * (local/control-plane.ts) and inject faults into its jobs (local/chaos.ts).
 *
 * `local up` runs until SIGINT/SIGTERM, then stops everything it started (dynalite or DynamoDB Local, the
 * local Kubernetes API and every pod process, the log shipper, the sweep timer, the API) and removes
 * `<data-dir>/local.json`, so no process and no stale pointer is left behind. `local chaos` finds the
 * running plane through that file. Both default the data directory to `.trainkeeper/` in the current
 * directory.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Argument, type Command, InvalidArgumentError, Option } from 'commander';
import { ValidationError } from '../../core/errors.ts';
import type { ChaosFault } from '../../local/chaos.ts';
import type { LocalStateFile } from '../../local/control-plane.ts';
import type { LogDialect } from '../../local/logs/container-insights.ts';
import { ApiClient } from '../client.ts';
import { action, ExitCode, type OutputFormat, outputOption, printData, printErr, printOut } from '../io.ts';
import { errColors } from '../style.ts';
import { type JobArg, jobRefOf, namespaceOption, parseJobArg } from './common.ts';

/** The data directory both commands use when `--data-dir` is not given (relative to the current directory). */
export const DEFAULT_DATA_DIR = '.trainkeeper';

/**
 * The faults `local chaos` accepts: local/chaos.ts `CHAOS_FAULTS`, repeated here so that loading the CLI
 * does not load the Kubernetes client and the whole control plane (test/cli checks the two lists agree).
 */
export const CHAOS_FAULT_NAMES = [
  'crash',
  'hang',
  'spike',
  'slow',
  'kill-pod',
  'node-fault',
  'node-heal',
] as const satisfies readonly ChaosFault[];

/** local/logs/container-insights.ts `LOG_DIALECTS`, for the same reason. */
export const LOG_DIALECT_NAMES = ['stock', 'labels', 'raw'] as const satisfies readonly LogDialect[];

/** local/control-plane.ts `STATE_FILE`, for the same reason. */
export const LOCAL_STATE_FILE = 'local.json';

const positiveInt = (name: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
  return n;
};

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Reads `<dataDir>/local.json` of a running plane. Throws `ValidationError` naming the file when there is
 * none, it does not parse, or the process that wrote it is gone.
 */
export async function readLocalState(dataDir: string): Promise<LocalStateFile> {
  const file = join(dataDir, LOCAL_STATE_FILE);
  if (!existsSync(file)) {
    throw new ValidationError(`no local control plane found: ${file} does not exist`, [
      {
        path: '--data-dir',
        message: 'start one with `trainkeeper local up`, or point --data-dir at its data directory',
      },
    ]);
  }
  let state: Partial<LocalStateFile>;
  try {
    state = JSON.parse(await readFile(file, 'utf8')) as Partial<LocalStateFile>;
  } catch (err) {
    throw new ValidationError(`${file} is not valid JSON`, [{ path: file, message: (err as Error).message }]);
  }
  const missing = (['apiUrl', 'kubeconfig', 'chaosDir', 'pid'] as const).filter(
    (k) => state[k] === undefined,
  );
  if (missing.length > 0) {
    throw new ValidationError(
      `${file} is incomplete`,
      missing.map((k) => ({ path: k, message: 'missing' })),
    );
  }
  if (!isAlive(state.pid as number)) {
    throw new ValidationError(`no local control plane running: process ${state.pid} of ${file} is gone`, [
      { path: 'pid', message: 'start one with `trainkeeper local up`' },
    ]);
  }
  return state as LocalStateFile;
}

const example = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Adds `local up` and `local chaos` to the program. */
export function registerLocalCommands(program: Command): void {
  const local = program
    .command('local')
    .description('the whole control plane on this machine, for trying things');

  local
    .command('up')
    .description('start the local control plane (dynalite, local Kubernetes, log shipper, API) until Ctrl-C')
    .option('--port <port>', 'API port (0 = any free port)', positiveInt('--port', 0), 0)
    .option('--data-dir <dir>', 'state, checkpoints, chaos files and logs', DEFAULT_DATA_DIR)
    .option('--nodes <n>', 'simulated nodes', positiveInt('--nodes', 1), 4)
    .addOption(
      new Option('--dynamodb <kind>', 'dynalite (in-process) or local (DynamoDB Local, needs Java)')
        .choices(['dynalite', 'local'])
        .default('dynalite'),
    )
    .option(
      '--prometheus-url <url>',
      'remote-write metrics to this Prometheus (else served at <endpoint>/metrics)',
    )
    .addOption(
      new Option(
        '--log-dialect <dialect>',
        'what the log shipper writes: stock (the CloudWatch Observability add-on, Labels Off), labels (Labels On) or raw (plain text lines)',
      )
        .choices(LOG_DIALECT_NAMES)
        .default('stock'),
    )
    .addOption(
      new Option(
        '--log-delivery <how>',
        'how the subscription hands log batches to the logs handler, as the stage setting logDelivery: direct (one stream per invocation) or kinesis (many streams per invocation, through a data stream stand-in)',
      )
        .choices(['direct', 'kinesis'])
        .default('direct'),
    )
    .option(
      '--allowed-namespaces <list>',
      'comma-separated namespaces jobs may use; the shipper applies the default subscription filter over them, as a stage does (* = any: the empty filter)',
      'default',
    )
    .addHelpText(
      'after',
      example([
        'trainkeeper local up',
        'trainkeeper local up --port 8787 --nodes 3 --data-dir /tmp/tk',
        'trainkeeper local up --prometheus-url http://127.0.0.1:9090/api/v1/write',
        'trainkeeper local up --log-dialect raw',
        'trainkeeper local up --allowed-namespaces default,team-a',
      ]),
    )
    .action(
      action(
        async (options: {
          port: number;
          dataDir: string;
          nodes: number;
          dynamodb: 'dynalite' | 'local';
          prometheusUrl?: string;
          logDialect: LogDialect;
          logDelivery: 'direct' | 'kinesis';
          allowedNamespaces: string;
        }) => {
          const dataDir = resolve(options.dataDir);
          const stateFile = join(dataDir, LOCAL_STATE_FILE);
          if (existsSync(stateFile)) {
            const previous = await readLocalState(dataDir).catch(() => undefined);
            if (previous && previous.pid !== process.pid) {
              printErr(
                `error: a local control plane is already running from ${dataDir} (pid ${previous.pid}, endpoint ${previous.apiUrl})`,
              );
              return ExitCode.Failed;
            }
          }
          // Register before starting, so a signal during start-up still stops what was started.
          let signalled: (signal: NodeJS.Signals) => void = () => {};
          const stopped = new Promise<NodeJS.Signals>((done) => {
            signalled = done;
          });
          const onSignal = (signal: NodeJS.Signals) => signalled(signal);
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
          try {
            const { startLocalControlPlane } = await import('../../local/control-plane.ts');
            const started = performance.now();
            const plane = await startLocalControlPlane({
              onProgress: (step) =>
                printErr(
                  errColors.dim(`  ${(performance.now() - started).toFixed(0).padStart(5)} ms  ${step}`),
                ),
              port: options.port,
              dataDir,
              nodes: options.nodes,
              dynamodb: options.dynamodb,
              logDialect: options.logDialect,
              logDelivery: options.logDelivery,
              allowedNamespaces: options.allowedNamespaces
                .split(',')
                .map((n) => n.trim())
                .filter((n) => n !== ''),
              ...(options.prometheusUrl ? { prometheusUrl: options.prometheusUrl } : {}),
            });
            printOut(
              [
                `TrainKeeper local control plane is up (${options.nodes} nodes, ${options.dynamodb}, ${options.logDialect} logs, ${options.logDelivery} delivery)`,
                `  endpoint:   ${plane.apiUrl}`,
                `  data dir:   ${plane.dataDir}`,
                `  kubeconfig: ${join(plane.dataDir, 'kubeconfig.yaml')}`,
                `  metrics:    ${options.prometheusUrl ?? `${plane.apiUrl}/metrics`}`,
                '',
                `export TRAINKEEPER_ENDPOINT=${plane.apiUrl}`,
                '',
                'Press Ctrl-C to stop.',
              ].join('\n'),
            );
            const signal = await stopped;
            printErr(`${signal}: stopping the local control plane…`);
            // A second signal while stopping means "now": exit without waiting.
            process.removeListener('SIGINT', onSignal);
            process.removeListener('SIGTERM', onSignal);
            const force = () => process.exit(ExitCode.Failed);
            process.once('SIGINT', force);
            process.once('SIGTERM', force);
            await plane.stop();
            await rm(stateFile, { force: true });
            printErr('stopped');
            // Anything that still holds the event loop open (a stray socket) must not keep us alive.
            setTimeout(() => process.exit(process.exitCode ?? ExitCode.Ok), 2000).unref();
            return ExitCode.Ok;
          } finally {
            process.removeListener('SIGINT', onSignal);
            process.removeListener('SIGTERM', onSignal);
          }
        },
      ),
    );

  local
    .command('chaos')
    .description('inject a fault into a job of the running local control plane')
    .addArgument(new Argument('<fault>', 'the fault to inject').choices(CHAOS_FAULT_NAMES))
    .requiredOption('--job <job>', 'NAME or NAMESPACE/NAME', parseJobArg)
    .addOption(namespaceOption())
    .option('--rank <rank>', 'global rank to hit (or whose pod/node)', positiveInt('--rank', 0), 0)
    .option('--steps <n>', 'steps a spike/slow lasts', positiveInt('--steps', 1))
    .option('--exit-code <code>', 'exit code of a crash', positiveInt('--exit-code', 1))
    .option('--node <node>', 'node-heal: the node to label Schedulable again (default: every unhealthy node)')
    .option('--data-dir <dir>', 'the data directory of `local up`', DEFAULT_DATA_DIR)
    .addOption(outputOption())
    .addHelpText(
      'after',
      `${example([
        'trainkeeper local chaos crash --job demo-llama --rank 1',
        'trainkeeper local chaos spike --job demo-llama --steps 5',
        'trainkeeper local chaos node-fault --job default/demo-llama --rank 2',
      ])}
Faults: crash (rank exits non-zero), hang (rank blocks), spike (loss ×10), slow (throughput 5 %),
kill-pod (delete the rank's pod), node-fault (label its node UnschedulablePendingReplacement),
node-heal (label --node, or every unhealthy node, Schedulable again: capacity returns).
`,
    )
    .action(
      action(
        async (
          fault: ChaosFault,
          options: {
            job: JobArg;
            namespace?: string;
            rank: number;
            steps?: number;
            exitCode?: number;
            node?: string;
            dataDir: string;
            output: OutputFormat;
          },
        ) => {
          const state = await readLocalState(resolve(options.dataDir));
          const ref = jobRefOf(options.job, options.namespace);
          // Ask the API first: an unknown job is a clear error, not a chaos file nobody will read.
          await new ApiClient({ endpoint: state.apiUrl }).get(ref);
          const { injectChaos } = await import('../../local/chaos.ts');
          const result = await injectChaos(
            {
              apiUrl: state.apiUrl,
              kubeconfigYaml: await readFile(state.kubeconfig, 'utf8'),
              chaosDir: state.chaosDir,
              ...ref,
            },
            fault,
            {
              rank: options.rank,
              ...(options.steps !== undefined ? { steps: options.steps } : {}),
              ...(options.exitCode !== undefined ? { exitCode: options.exitCode } : {}),
              ...(options.node !== undefined ? { node: options.node } : {}),
            },
          );
          const doc = { ...result, time: new Date(result.at).toISOString(), job: ref };
          if (options.output !== 'text') printData(doc, options.output);
          else
            printOut(
              `injected ${fault} into ${result.target} of ${ref.namespace}/${ref.name} at ${doc.time}`,
            );
          return ExitCode.Ok;
        },
      ),
    );
}
