/**
 * `trainkeeper logs JOB [--rank R] [--pod P] [--since 10m] [--around GEN|TIME] [--follow] [--grep RE]`: a
 * job's training output, read back from where the log path put it: the Container Insights log group
 * `/aws/containerinsights/<cluster>/application` on AWS, the local plane's log group stand-in
 * (local/logs/cloudwatch-logs-api.ts, same protocol) on a loopback endpoint. One reader for both:
 * adapters/aws/cloudwatch-logs.ts. The job document gives the pods, their nodes (stream names) and ranks.
 *
 * Output: `<time> <pod> [rank R] <line>` per line (`[rank ?]` when the line has no `[default<N>]:` prefix),
 * or one JSON object per line with `-o json` (`{"time","pod","rank","localRank","text"}`). Exit 0, 1 on a
 * failed request, 2 on a bad command line.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { JobDocument } from '../../core/api/documents.ts';
import { ValidationError } from '../../core/errors.ts';
import { LOCAL_LOGS_PATH } from '../../local/logs/cloudwatch-logs-api.ts';
import { isAwsEndpoint, regionOfEndpoint, resolveEndpoint } from '../client.ts';
import { action, ExitCode, printOut } from '../io.ts';
import {
  addConnectionOptions,
  clientFrom,
  type JobArg,
  jobRefOf,
  namespaceOption,
  parseJobArg,
} from './common.ts';

/** The cluster name the local plane's log group is named after (local/control-plane.ts). */
const LOCAL_CLUSTER = 'trainkeeper-local';
/** How much output `--around` shows before a fault and after its recovery. */
const AROUND_BEFORE_MS = 60_000;
const AROUND_AFTER_MS = 15_000;

/** `10m`, `30s`, `2h`, `1d` → milliseconds; a usage error otherwise. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s, 10m, 2h');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

/**
 * The time window of `--around`: a remediation's generation (`3`) gives [fault − 60 s, recovery + 15 s]
 * (detection when it has not recovered); an ISO time gives ±60 s.
 */
export function aroundWindow(job: JobDocument, around: string): { startTime: number; endTime: number } {
  if (/^\d+$/.test(around)) {
    const r = job.status.remediations.find((x) => x.generation === Number(around));
    if (!r) {
      const known = job.status.remediations.map((x) => x.generation).join(', ') || 'none';
      throw new ValidationError(`no fault with generation ${around} in ${job.metadata.name}`, [
        { path: '--around', message: `generations with a fault: ${known}` },
      ]);
    }
    const fault = Date.parse(r.faultTime ?? '');
    const end = Date.parse(r.recoveryTime ?? r.detectionTime ?? '');
    return {
      startTime: fault - AROUND_BEFORE_MS,
      endTime: (Number.isNaN(end) ? fault : end) + AROUND_AFTER_MS,
    };
  }
  const at = Date.parse(around);
  if (Number.isNaN(at)) {
    throw new ValidationError(`--around ${around}: expected a generation or an ISO 8601 time`, [
      { path: '--around', message: 'expected a generation (e.g. 2) or a time (e.g. 2025-01-01T12:00:00Z)' },
    ]);
  }
  return { startTime: at - AROUND_BEFORE_MS, endTime: at + AROUND_BEFORE_MS };
}

/** The command `describe` prints to see a fault's log lines. */
export const aroundCommand = (job: { namespace: string; name: string }, generation: number): string =>
  `trainkeeper logs ${job.namespace}/${job.name} --around ${generation}`;

interface LogsOptions {
  namespace: string;
  rank?: number[];
  pod?: string[];
  since?: number;
  around?: string;
  follow?: boolean;
  grep?: RegExp;
  cluster?: string;
  logGroup?: string;
  output: 'text' | 'json';
  endpoint?: string;
  profile?: string;
  region?: string;
}

const collect =
  <T>(parse: (v: string) => T) =>
  (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)];

const parseRank = (v: string): number => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a rank (0, 1, …)');
  return Number(v);
};

const parseRegex = (v: string): RegExp => {
  try {
    return new RegExp(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/** Adds `logs` to the program. */
export function registerLogsCommand(program: Command): void {
  addConnectionOptions(
    program
      .command('logs')
      .description('print a job’s training output (CloudWatch Logs on AWS, the local plane’s logs locally)')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .addOption(
        new Option('--rank <rank>', 'only this global rank (repeatable)').argParser(collect(parseRank)),
      )
      .addOption(new Option('--pod <pod>', 'only this pod (repeatable)').argParser(collect((v) => v)))
      .addOption(
        new Option('--since <duration>', 'only lines newer than this (30s, 10m, 2h)').argParser(
          parseDuration,
        ),
      )
      .addOption(
        new Option(
          '--around <generation|time>',
          'lines around a fault (its generation, see describe) or a time',
        ).conflicts(['since', 'follow']),
      )
      .option('-f, --follow', 'keep printing new lines (polls, backing off while the job is quiet)')
      .addOption(
        new Option('--grep <regex>', 'only lines matching this regular expression').argParser(parseRegex),
      )
      .addOption(
        new Option(
          '--cluster <name>',
          'EKS cluster whose Container Insights log group holds the job (AWS)',
        ).env('TRAINKEEPER_CLUSTER'),
      )
      .addOption(new Option('--log-group <name>', 'read this log group instead of the cluster’s'))
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'),
      ),
  ).action(
    action(async (arg: JobArg, options: LogsOptions) => {
      const client = clientFrom(options);
      const ref = jobRefOf(arg, options.namespace);
      const job = await client.get(ref);
      const endpoint = resolveEndpoint({ endpoint: options.endpoint });
      const local = !isAwsEndpoint(endpoint);
      const cluster = local ? LOCAL_CLUSTER : options.cluster;
      const { applicationLogGroup, JobLogReader, makeLogsClient } = await import(
        '../../adapters/aws/cloudwatch-logs.ts'
      );
      const logGroup = options.logGroup ?? (cluster ? applicationLogGroup(cluster) : undefined);
      if (!logGroup) {
        throw new ValidationError('which cluster runs the job? Pass --cluster or set TRAINKEEPER_CLUSTER', [
          { path: '--cluster', message: 'names the log group /aws/containerinsights/<cluster>/application' },
        ]);
      }
      const reader = new JobLogReader(
        makeLogsClient(
          local
            ? { endpoint: `${endpoint}${LOCAL_LOGS_PATH}` }
            : {
                ...((options.region ?? regionOfEndpoint(endpoint))
                  ? { region: options.region ?? regionOfEndpoint(endpoint) }
                  : {}),
                ...(options.profile ? { profile: options.profile } : {}),
              },
        ),
      );
      const podsOf = (doc: JobDocument) =>
        doc.status.pods
          .filter((p) => options.pod === undefined || options.pod.includes(p.name))
          .map((p) => ({ name: p.name, node: p.node ?? undefined, rank: p.rank ?? undefined }));
      const nproc = Number((job.spec as { nprocPerNode?: unknown }).nprocPerNode);
      const window = options.around
        ? aroundWindow(job, options.around)
        : options.since !== undefined
          ? { startTime: Date.now() - options.since }
          : {};
      const query = {
        logGroup,
        namespace: ref.namespace,
        pods: podsOf(job),
        nprocPerNode: Number.isInteger(nproc) && nproc > 0 ? nproc : undefined,
        ...window,
        ...(options.grep ? { grep: options.grep } : {}),
        ...(options.rank ? { ranks: options.rank } : {}),
      };
      const print = (l: { time: number; pod: string; rank?: number; localRank?: number; text: string }) =>
        printOut(
          options.output === 'json'
            ? JSON.stringify({
                time: new Date(l.time).toISOString(),
                pod: l.pod,
                rank: l.rank ?? null,
                localRank: l.localRank ?? null,
                text: l.text,
              })
            : `${new Date(l.time).toISOString()} ${l.pod} [rank ${l.rank ?? '?'}] ${l.text}`,
        );
      if (!options.follow) {
        for (const line of await reader.read(query)) print(line);
        return ExitCode.Ok;
      }
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        await reader.follow(query, print, {
          signal: stop.signal,
          pods: async () => podsOf(await client.get(ref)),
        });
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
      return ExitCode.Ok;
    }),
  );
}
