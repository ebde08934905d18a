/**
 * `trainkeeper rules check --job MANIFEST --log FILE [--output text|json|yaml] [--no-presets]`: run a job's
 * log rules (its `logMonitoringConfiguration` plus its presets) over a saved `kubectl logs --timestamps`
 * file, offline, with the same engine the logs Lambda runs — to test rules before submitting a job.
 *
 * Time comes from the file: the first timestamp is the job's start (rule timers start there), and time
 * advances with the lines, so a silence followed by later output is reported at the first line after the
 * deadline that passed. The check ends at the last line's time (no silence is assumed after the file).
 * `[default<N>]:` prefixes give the local rank (stream `<file>/<N>`); see rules/kubectl-log.ts.
 *
 * Output: `text` (one line per finding), `json` (one JSON object per finding per line:
 * `{"rule","verdict","reason","stream","rank","at","lineNumber","text","value"}`, `at` in ISO 8601, absent
 * values as null) or `yaml` (a list). Exit 0 when nothing was found, 3 with findings, 1 for a bad manifest
 * or log, 2 for a bad command line.
 */
import type { Command } from 'commander';
import { action, outputOption } from '../io.ts';
import type { RulesCheckOptions } from './rules-check.ts';

/** Adds `rules check` to the program. */
export function registerRulesCommands(program: Command): void {
  const rules = program.command('rules').description('log-monitoring rules');
  rules
    .command('check')
    .description('run a job’s log rules over a `kubectl logs --timestamps` file and print what they find')
    .requiredOption('--job <manifest>', 'HyperPodPyTorchJob manifest (YAML or JSON), or - for stdin')
    .requiredOption('--log <file>', '`kubectl logs --timestamps` output, or - for stdin')
    .option('--no-presets', 'run only the manifest’s own rules')
    .addOption(outputOption())
    .action(
      action(async (options: RulesCheckOptions) => (await import('./rules-check.ts')).runRulesCheck(options)),
    );
}
