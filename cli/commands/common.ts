/**
 * What every API-calling command shares: the connection options (`--endpoint`, `--profile`, `--region`),
 * building the `ApiClient` from them, `JOB` arguments (`name` or `namespace/name`, with `-n`), and the live
 * watch loop behind `submit --watch` and `events --follow`.
 *
 * Invariant of the watch loop: every event is printed exactly once and in order (the `after` cursor of the
 * events route), and the loop ends only when the job is in a terminal phase (or the user stops it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import type { EventDocument, JobDocument } from '../../core/api/documents.ts';
import { isTerminal, type JobPhase } from '../../core/job.ts';
import type { JobRef } from '../../core/ports.ts';
import { ApiClient, ApiError, EndpointError, resolveEndpoint } from '../client.ts';
import { printErr } from '../io.ts';
import { eventLine, statusLine } from '../render.ts';

/** The options `addConnectionOptions` adds. */
export interface ConnectionOptions {
  endpoint?: string;
  profile?: string;
  region?: string;
}

/** Adds `--endpoint`, `--profile`, `--region` to a command (same spelling and help everywhere). */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--endpoint <url>',
        'TrainKeeper API URL (default: $TRAINKEEPER_ENDPOINT, else ApiUrl in .sst/outputs.json)',
      ),
    )
    .addOption(new Option('--profile <name>', 'AWS profile whose credentials sign requests to AWS endpoints'))
    .addOption(new Option('--region <region>', 'signing region (default: from the endpoint host)'));
}

/** The client for these options; throws the "no endpoint configured" error when there is none. */
export function clientFrom(options: ConnectionOptions): ApiClient {
  return new ApiClient({
    endpoint: resolveEndpoint({ endpoint: options.endpoint }),
    profile: options.profile,
    region: options.region,
  });
}

/** A `JOB` argument as written: a name, or `namespace/name`. */
export interface JobArg {
  namespace?: string;
  name: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Commander argument parser for `JOB`: `name` or `namespace/name`, each a Kubernetes name. A malformed
 * value is a usage error (exit 2).
 */
export function parseJobArg(value: string): JobArg {
  const parts = value.split('/');
  if (parts.length > 2 || parts.some((p) => !NAME.test(p))) {
    throw new InvalidArgumentError('expected NAME or NAMESPACE/NAME (lower-case Kubernetes names)');
  }
  return parts.length === 2 ? { namespace: parts[0] as string, name: parts[1] as string } : { name: value };
}

/** The `-n, --namespace` option (default `default`). */
export const namespaceOption = (): Option =>
  new Option('-n, --namespace <namespace>', 'namespace of JOB when it has none').default('default');

/** `namespace/name` from the argument and `-n`; a namespace in the argument wins. */
export function jobRefOf(arg: JobArg, namespace: string | undefined): JobRef {
  return { namespace: arg.namespace ?? namespace ?? 'default', name: arg.name };
}

/** Options of `watchJob`. */
export interface WatchOptions {
  /** Where progress goes (stdout for text output, stderr when stdout carries a document). */
  out: NodeJS.WriteStream;
  /** Print the job's events as they happen (`submit --watch`, `events --follow`). */
  events: 'lines' | 'json' | 'yaml' | 'none';
  /** Print a status line: one updating line on a TTY, appended lines on change otherwise. */
  status: boolean;
  /** Print only events after this `at` (epoch ms); default: all. */
  after?: number;
  /** Poll period. Default 1000 ms. */
  intervalMs?: number;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** Consecutive failed polls tolerated (a blip of the API or the network) before giving up. */
const MAX_POLL_FAILURES = 10;

/**
 * Follows a job until it reaches a terminal phase and returns its last document. Polls the job and its
 * events; prints new events and the status line to `options.out`. On a TTY the status line is redrawn in
 * place with a spinner (and erased on Ctrl-C); otherwise a line is appended whenever it changes.
 */
export async function watchJob(client: ApiClient, ref: JobRef, options: WatchOptions): Promise<JobDocument> {
  const out = options.out;
  const tty = out.isTTY === true;
  const interval = options.intervalMs ?? 1000;
  let after = options.after;
  let lastStatus = '';
  let frame = 0;
  let failures = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) out.write('\r\x1b[2K');
    drawn = false;
  };
  const onSigint = () => {
    clear();
    printErr(
      `stopped watching; ${ref.namespace}/${ref.name} goes on (trainkeeper describe ${ref.namespace}/${ref.name})`,
    );
    process.exit(130);
  };
  if (tty) process.once('SIGINT', onSigint);
  try {
    for (;;) {
      let job: JobDocument;
      let events: EventDocument[] = [];
      try {
        job = await client.get(ref);
        if (options.events !== 'none') events = await client.allEvents(ref, after);
        failures = 0;
      } catch (err) {
        const transient =
          err instanceof EndpointError ||
          (err instanceof ApiError && (err.status >= 500 || err.status === 429));
        if (!transient || ++failures > MAX_POLL_FAILURES) throw err;
        clear();
        printErr(`warning: ${(err as Error).message} (retrying)`);
        await sleep(interval);
        continue;
      }
      if (events.length > 0) {
        clear();
        for (const e of events) out.write(formatEvent(e, options.events));
        after = events.at(-1)?.at ?? after;
      }
      const done = isTerminal(job.status.phase as JobPhase);
      if (options.status) {
        const line = statusLine(job);
        if (tty) {
          // Cut to the terminal's width: a wrapped line could not be redrawn in place.
          const text = `${done ? '' : `${SPINNER[frame++ % SPINNER.length]} `}${line}`;
          out.write(`\r\x1b[2K${out.columns && !done ? text.slice(0, out.columns - 1) : text}`);
          drawn = true;
          if (done) {
            out.write('\n');
            drawn = false;
          }
        } else if (line !== lastStatus) {
          out.write(`${line}\n`);
        }
        lastStatus = line;
      }
      if (done) return job;
      await sleep(interval);
    }
  } finally {
    clear();
    if (tty) process.removeListener('SIGINT', onSigint);
  }
}

/** One event in the stream format asked for. */
export function formatEvent(e: EventDocument, format: WatchOptions['events']): string {
  if (format === 'json') return `${JSON.stringify(e)}\n`;
  if (format === 'yaml') return `---\n${stringify(e)}`;
  return `${eventLine(e)}\n`;
}
