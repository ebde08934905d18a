/**
 * `trainkeeper`: the command-line entry point (`cli/entry.ts` calls `main`).
 *
 * Each command group lives in `cli/commands/<group>.ts` and exports `register<Group>(program)`; adding a
 * group is one import and one line in the list below. Exit codes are `ExitCode` (cli/io.ts): 0 ok,
 * 1 failed request / invalid input, 2 usage error (every commander error), 3 findings.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerCompletionCommand } from './commands/completion.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerJobCommands } from './commands/jobs.ts';
import { registerLocalCommands } from './commands/local.ts';
import { registerLogsCommand } from './commands/logs.ts';
import { registerRulesCommands } from './commands/rules.ts';
import { registerValidate } from './commands/validate.ts';
import { ExitCode, exitCodeOf, printErr } from './io.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Build the program, run the command `argv` names (arguments after the executable), return the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('trainkeeper')
    .description('Fault recovery for distributed PyTorch training on EKS and SageMaker HyperPod')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  registerValidate(program);
  registerRulesCommands(program);
  registerJobCommands(program);
  registerLogsCommand(program);
  registerLocalCommands(program);
  registerDemoCommand(program);
  registerCompletionCommand(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    printErr(`error: ${err instanceof Error ? err.message : String(err)}`);
    return ExitCode.Failed;
  }
  return exitCodeOf(program);
}
