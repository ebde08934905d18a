/**
 * `trainkeeper validate FILE`: parse a job manifest exactly as the API would and say what is wrong with
 * it, without contacting anything. `FILE` may be `-` for stdin.
 *
 * Exit 0 with the normalized `JobSpec` (`--output json|yaml`) or a short summary (`text`); exit 1 with one
 * `path: message` line per error on stderr. Warnings (`warning: path: message`) go to stderr either way.
 * `--pod-security <level>` also checks the pod templates against a Pod Security Standards level.
 */
import { type Command, Option } from 'commander';
import {
  checkPodSecurity,
  POD_SECURITY_LEVELS,
  type PodSecurityLevel,
} from '../../core/spec/pod-security.ts';
import type { JobSpec } from '../../core/spec/types.ts';
import {
  action,
  ExitCode,
  type OutputFormat,
  outputOption,
  printData,
  printIssues,
  printOut,
  readInput,
} from '../io.ts';

/** Adds `validate` to the program. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a HyperPodPyTorchJob manifest (YAML or JSON) and print it normalized')
    .argument('<file>', 'manifest file, or - for stdin')
    .addOption(outputOption())
    .addOption(
      new Option(
        '--pod-security <level>',
        'also check pod templates against this Pod Security Standards level',
      ).choices(POD_SECURITY_LEVELS),
    )
    .action(
      action(async (file: string, options: { output: OutputFormat; podSecurity?: PodSecurityLevel }) => {
        const { parseJobManifest } = await import('../../core/spec/parse.ts');
        const result = parseJobManifest(await readInput(file));
        if (!result.ok) {
          printIssues(result.errors, result.warnings);
          return ExitCode.Failed;
        }
        const podErrors = options.podSecurity ? checkPodSecurity(result.spec, options.podSecurity) : [];
        printIssues(podErrors, result.warnings);
        if (podErrors.length > 0) return ExitCode.Failed;
        if (options.output === 'text') printOut(summarize(result.spec, result.warnings.length));
        else printData(result.spec, options.output);
        return ExitCode.Ok;
      }),
    );
}

/** A few lines a person can check at a glance: job, replicas, rules, presets, warnings. */
export function summarize(spec: JobSpec, warnings: number): string {
  const replicas = spec.replicaSpecs.reduce((n, r) => n + r.replicas, 0);
  const spares = spec.replicaSpecs.reduce((n, r) => n + r.spares, 0);
  const sets = spec.replicaSpecs.map(
    (r) => `${r.name}: ${r.replicas}${r.spares > 0 ? ` + ${r.spares} spare` : ''}`,
  );
  const rules = spec.runPolicy.logMonitoringConfiguration.map((r) => r.name);
  return [
    `job ${spec.namespace}/${spec.name} is valid`,
    `replicas: ${replicas}${spares > 0 ? ` + ${spares} spare` : ''} (${sets.join(', ')}), nprocPerNode ${spec.nprocPerNode}`,
    `rules: ${rules.length > 0 ? rules.join(', ') : 'none'}; presets: ${spec.trainkeeper.presets.join(', ') || 'none'}`,
    `warnings: ${warnings}`,
  ].join('\n');
}
