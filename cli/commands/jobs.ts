/**
 * The job commands: `submit`, `list`, `get`, `describe`, `events`, `cancel`, `restart` and `rules set`,
 * each one request (or a poll loop) against the TrainKeeper API through `ApiClient`.
 *
 * Output: human tables by default; `-o json|yaml` prints the API's own documents (functions/README.md),
 * so scripts see the same schema whether they call the API or the CLI (cli/README.md lists them).
 * Exit codes: 0 ok, 1 failed request or invalid input (problem documents printed as `path: message`
 * lines), 2 usage; `submit --watch` exits 1 when the job ends Failed or Cancelled.
 */
import { createHash } from 'node:crypto';
import { type Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { JobDocument } from '../../core/api/documents.ts';
import { ValidationError } from '../../core/errors.ts';
import { JOB_PHASES } from '../../core/job.ts';
import type { CancelResult } from '../client.ts';
import {
  action,
  ExitCode,
  type OutputFormat,
  outputOption,
  printData,
  printErr,
  printIssues,
  printOut,
  readInput,
} from '../io.ts';
import { describeJob, eventTable, jobTable, refOf } from '../render.ts';
import {
  addConnectionOptions,
  type ConnectionOptions,
  clientFrom,
  formatEvent,
  type JobArg,
  jobRefOf,
  namespaceOption,
  parseJobArg,
  watchJob,
} from './common.ts';

type Opts = ConnectionOptions & { output: OutputFormat; namespace?: string };

/** `Idempotency-Key` a submit sends when none is given: the SHA-256 of the manifest text, so a retry is safe. */
export function defaultIdempotencyKey(manifest: string): string {
  return `sha256-${createHash('sha256').update(manifest).digest('hex')}`;
}

/**
 * The rule list `rules set` sends, from what the file holds: a list of rules, `{logMonitoringConfiguration}`,
 * or a whole manifest (its `spec.runPolicy.logMonitoringConfiguration`). Throws `ValidationError` with
 * the path of what is missing.
 */
export function rulesFromDocument(doc: unknown): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (doc && typeof doc === 'object') {
    const o = doc as Record<string, unknown>;
    if ('logMonitoringConfiguration' in o) {
      if (Array.isArray(o.logMonitoringConfiguration)) return o.logMonitoringConfiguration;
      throw new ValidationError('no rules in the file', [
        { path: 'logMonitoringConfiguration', message: 'must be a list of rules' },
      ]);
    }
    if ('spec' in o || 'kind' in o) {
      const list = (o.spec as { runPolicy?: { logMonitoringConfiguration?: unknown } } | undefined)?.runPolicy
        ?.logMonitoringConfiguration;
      if (Array.isArray(list)) return list;
      throw new ValidationError('no rules in the manifest', [
        { path: 'spec.runPolicy.logMonitoringConfiguration', message: 'missing or not a list of rules' },
      ]);
    }
  }
  throw new ValidationError('no rules in the file', [
    {
      path: '',
      message: 'expected a list of rules, or a manifest with spec.runPolicy.logMonitoringConfiguration',
    },
  ]);
}

const example = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Adds the job commands (and `rules set` under the existing `rules` group, if any) to the program. */
export function registerJobCommands(program: Command): void {
  addConnectionOptions(
    program
      .command('submit')
      .description('submit a HyperPodPyTorchJob manifest (YAML or JSON), validated locally first')
      .argument('<file>', 'manifest file, or - for stdin')
      .option('-w, --watch', 'follow the job until it finishes; exit 0 if it Succeeded, 1 otherwise')
      .option(
        '--idempotency-key <key>',
        'makes a retried submit safe (default: a hash of the file content, so the same file within 24 h ' +
          'answers the job it first created; pass a new key to run a finished job of that name again)',
      )
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example([
        'trainkeeper submit job.yaml',
        'trainkeeper submit job.yaml --watch',
        'envsubst < job.yaml | trainkeeper submit - -o json',
        'trainkeeper submit job.yaml --idempotency-key "rerun-$(date +%s)"',
      ]),
    )
    .action(
      action(async (file: string, options: Opts & { watch?: boolean; idempotencyKey?: string }) => {
        const text = await readInput(file);
        const { parseJobManifest } = await import('../../core/spec/parse.ts');
        const parsed = parseJobManifest(text);
        if (!parsed.ok) {
          printIssues(parsed.errors, parsed.warnings);
          return ExitCode.Failed;
        }
        printIssues([], parsed.warnings);
        const client = clientFrom(options);
        const contentType = text.trimStart().startsWith('{') ? 'application/json' : 'application/yaml';
        const res = await client.submit(
          text,
          contentType,
          options.idempotencyKey ?? defaultIdempotencyKey(text),
        );
        const job = res.body;
        const ref = { namespace: job.metadata.namespace, name: job.metadata.name };
        if (options.output === 'text') {
          printOut(
            res.status === 201
              ? `job ${refOf(job)} submitted (uid ${job.metadata.uid})`
              : `job ${refOf(job)} was already submitted with this content; not submitted again`,
          );
        }
        if (!options.watch) {
          if (options.output !== 'text') printData(job, options.output);
          return ExitCode.Ok;
        }
        const final = await watchJob(client, ref, {
          out: options.output === 'text' ? process.stdout : process.stderr,
          events: 'lines',
          status: true,
        });
        if (options.output !== 'text') printData(final, options.output);
        else printOut(`job ${refOf(final)} ${final.status.phase}`);
        return final.status.phase === 'Succeeded' ? ExitCode.Ok : ExitCode.Failed;
      }),
    );

  addConnectionOptions(
    program
      .command('list')
      .alias('ls')
      .description('list jobs (in one namespace, or all with -A)')
      .addOption(namespaceOption())
      .option('-A, --all-namespaces', 'list jobs of every namespace')
      .addOption(new Option('--phase <phase>', 'only jobs in this phase').choices(JOB_PHASES))
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example([
        'trainkeeper list',
        'trainkeeper list -A --phase Running',
        'trainkeeper list -n team-a -o json',
      ]),
    )
    .action(
      action(async (options: Opts & { allNamespaces?: boolean; phase?: string }) => {
        const client = clientFrom(options);
        const jobs = await client.listAll({
          ...(options.allNamespaces ? {} : { namespace: options.namespace ?? 'default' }),
          ...(options.phase ? { phase: options.phase } : {}),
        });
        if (options.output !== 'text') {
          printData({ items: jobs }, options.output);
          return ExitCode.Ok;
        }
        if (jobs.length === 0) {
          printErr(
            options.allNamespaces ? 'No jobs found.' : `No jobs found in namespace ${options.namespace}.`,
          );
          return ExitCode.Ok;
        }
        printOut(jobTable(jobs, Date.now(), options.allNamespaces === true));
        return ExitCode.Ok;
      }),
    );

  addConnectionOptions(
    program
      .command('get')
      .description('show one job as a table row, or its job document with -o json|yaml')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .addOption(outputOption()),
  )
    .addHelpText('after', example(['trainkeeper get demo-llama', 'trainkeeper get team-a/llama -o yaml']))
    .action(
      action(async (arg: JobArg, options: Opts) => {
        const job = await clientFrom(options).get(jobRefOf(arg, options.namespace));
        if (options.output !== 'text') printData(job, options.output);
        else printOut(jobTable([job], Date.now(), false));
        return ExitCode.Ok;
      }),
    );

  addConnectionOptions(
    program
      .command('describe')
      .description(
        'show a job in detail: status, budgets, conditions, pods, faults and recoveries, recent events',
      )
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example(['trainkeeper describe demo-llama', 'trainkeeper describe team-a/llama -o json']),
    )
    .action(
      action(async (arg: JobArg, options: Opts) => {
        const client = clientFrom(options);
        const ref = jobRefOf(arg, options.namespace);
        const job = await client.get(ref);
        const events = await client.allEvents(ref);
        if (options.output !== 'text') printData({ job, events }, options.output);
        else printOut(describeJob(job, events, Date.now()));
        return ExitCode.Ok;
      }),
    );

  addConnectionOptions(
    program
      .command('events')
      .description('print a job’s timeline; with --follow keep printing until the job finishes')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .option('-f, --follow', 'keep printing new events until the job finishes')
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example([
        'trainkeeper events demo-llama',
        'trainkeeper events team-a/llama --follow -o json | jq .reason',
      ]),
    )
    .action(
      action(async (arg: JobArg, options: Opts & { follow?: boolean }) => {
        const client = clientFrom(options);
        const ref = jobRefOf(arg, options.namespace);
        const format = options.output === 'text' ? 'lines' : options.output;
        if (options.follow) {
          await watchJob(client, ref, { out: process.stdout, events: format, status: false });
          return ExitCode.Ok;
        }
        const events = await client.allEvents(ref);
        if (options.output === 'yaml') printData(events, 'yaml');
        else if (options.output === 'json')
          for (const e of events) process.stdout.write(formatEvent(e, 'json'));
        else if (events.length === 0) printErr(`No events for ${ref.namespace}/${ref.name}.`);
        else printOut(eventTable(events));
        return ExitCode.Ok;
      }),
    );

  addConnectionOptions(
    program
      .command('cancel')
      .description('cancel a job: stop its workers and delete its pods')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .addOption(outputOption()),
  )
    .addHelpText('after', example(['trainkeeper cancel demo-llama', 'trainkeeper cancel team-a/llama']))
    .action(
      action(async (arg: JobArg, options: Opts) => {
        const ref = jobRefOf(arg, options.namespace);
        const result: CancelResult = await clientFrom(options).cancel(ref);
        if (options.output !== 'text') printData(result, options.output);
        else
          printOut(
            result.status.phase === 'Deleted'
              ? `job ${ref.namespace}/${ref.name} cancelled and deleted`
              : `job ${ref.namespace}/${ref.name} ${result.status.phase === 'Cancelled' ? 'cancelled' : `is ${result.status.phase}`}`,
          );
        return ExitCode.Ok;
      }),
    );

  addConnectionOptions(
    program
      .command('restart')
      .description('restart a job’s workers (process level, pods kept) or the whole job (pods recreated)')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .addOption(namespaceOption())
      .addOption(
        new Option('--level <level>', 'process: restart worker processes; job: recreate all pods')
          .choices(['process', 'job'])
          .default('process'),
      )
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example(['trainkeeper restart demo-llama', 'trainkeeper restart team-a/llama --level job']),
    )
    .action(
      action(async (arg: JobArg, options: Opts & { level: 'process' | 'job' }) => {
        const ref = jobRefOf(arg, options.namespace);
        const job: JobDocument = await clientFrom(options).restart(ref, options.level);
        if (options.output !== 'text') printData(job, options.output);
        else
          printOut(
            `job ${refOf(job)}: ${options.level}-level restart requested (phase ${job.status.phase}, generation ${job.status.generation})`,
          );
        return ExitCode.Ok;
      }),
    );

  const rules =
    program.commands.find((c) => c.name() === 'rules') ??
    program.command('rules').description('log-monitoring rules');
  addConnectionOptions(
    rules
      .command('set')
      .description('replace a running job’s log-monitoring rules')
      .argument('<job>', 'NAME or NAMESPACE/NAME', parseJobArg)
      .requiredOption(
        '--file <file>',
        'YAML/JSON list of rules, or a manifest (its spec.runPolicy.logMonitoringConfiguration); - for stdin',
      )
      .addOption(namespaceOption())
      .addOption(outputOption()),
  )
    .addHelpText(
      'after',
      example([
        'trainkeeper rules set demo-llama --file rules.yaml',
        'trainkeeper rules set team-a/llama --file job.yaml',
      ]),
    )
    .action(
      action(async (arg: JobArg, options: Opts & { file: string }) => {
        const text = await readInput(options.file);
        let doc: unknown;
        try {
          doc = parseYaml(text);
        } catch (err) {
          throw new ValidationError(`${options.file} does not parse`, [
            { path: options.file, message: (err as Error).message },
          ]);
        }
        const list = rulesFromDocument(doc);
        const ref = jobRefOf(arg, options.namespace);
        const job = await clientFrom(options).setRules(ref, list);
        if (options.output !== 'text') printData(job, options.output);
        else {
          const names = list.map((r) => (r as { name?: unknown })?.name).filter((n) => typeof n === 'string');
          printOut(`rules of job ${refOf(job)} set: ${names.length > 0 ? names.join(', ') : 'none'}`);
        }
        return ExitCode.Ok;
      }),
    );
}
