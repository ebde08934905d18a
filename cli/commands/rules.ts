/**
 * `trainkeeper rules check --job MANIFEST --log FILE [--format F] [--output text|json|yaml] [--no-presets]`:
 * run a job's log rules (its `logMonitoringConfiguration` plus its presets) over a saved log, offline, with
 * the same engine the logs Lambda runs — to test rules before submitting a job. The log is
 * `kubectl logs --timestamps` output, the JSON `aws logs filter-log-events --output json` prints, or one
 * Fluent Bit record per line (`--format kubectl|cloudwatch-json|fluent-bit`, detected when absent; findings
 * are the same for the same lines, `lineNumber` being the line's, event's or record's 1-based position;
 * events and records that do not parse are counted and skipped; see rules/log-formats.ts).
 *
 * Time comes from the file: the first timestamp is the job's start (rule timers start there), and time
 * advances with the lines, so a silence followed by later output is reported at the first line after the
 * deadline that passed. The check ends at the last line's time (no silence is assumed after the file).
 * `[default<N>]:` prefixes give the local rank (stream `<file>/<N>`, or `<pod>/<N>` when the record names
 * its pod); see rules/kubectl-log.ts.
 *
 * Output: `text` (one line per finding), `json` (one JSON object per finding per line:
 * `{"rule","verdict","reason","stream","rank","at","lineNumber","text","value"}`, `at` in ISO 8601, absent
 * values as null) or `yaml` (a list). Exit 0 when nothing was found, 3 with findings, 1 for a bad manifest
 * or log, 2 for a bad command line.
 */
import { type Command, Option } from 'commander';
import { action, outputOption } from '../io.ts';
import type { RulesCheckOptions } from './rules-check.ts';

/** `--format` choices: rules/log-formats.ts `LOG_FORMATS` (restated so registering loads no parser). */
export const RULES_CHECK_LOG_FORMATS = ['kubectl', 'cloudwatch-json', 'fluent-bit'] as const;

/** Adds `rules check` to the program. */
export function registerRulesCommands(program: Command): void {
  const rules = program.command('rules').description('log-monitoring rules');
  rules
    .command('check')
    .description('run a job’s log rules over a saved log and print what they find')
    .requiredOption('--job <manifest>', 'HyperPodPyTorchJob manifest (YAML or JSON), or - for stdin')
    .requiredOption(
      '--log <file>',
      '`kubectl logs --timestamps` output, `aws logs filter-log-events --output json` output, or Fluent Bit records (JSON lines); - for stdin',
    )
    .addOption(
      new Option('--format <format>', 'the log’s format (default: detected)').choices(
        RULES_CHECK_LOG_FORMATS,
      ),
    )
    .option('--no-presets', 'run only the manifest’s own rules')
    .addOption(outputOption())
    .action(
      action(async (options: RulesCheckOptions) => (await import('./rules-check.ts')).runRulesCheck(options)),
    );
}
