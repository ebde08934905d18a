/**
 * `trainkeeper demo [--torch] [--keep]`: runs the embedded control plane with an example job and four
 * injected faults (local/demo.ts). `npm run demo` is this command.
 */
import type { Command } from 'commander';
import { action } from '../io.ts';

/** Registers `demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run the whole control plane locally: a job, four injected faults, four recoveries, an elastic job shrinking and growing back',
    )
    .option(
      '--torch',
      'use the real PyTorch DDP trainers, plus an in-process restart scene (needs torch for /usr/bin/python3)',
    )
    .option('--keep', 'keep the data directory (logs, checkpoints) afterwards')
    .addHelpText('after', '\nExample:\n  $ trainkeeper demo\n  $ trainkeeper demo --torch')
    .action(
      action(async (opts: { torch?: boolean; keep?: boolean }) => {
        // Loaded on use: the control plane pulls in every handler and SDK, which other commands do not need.
        const { runDemo } = await import('../../local/demo.ts');
        return runDemo({ torch: Boolean(opts.torch), keep: Boolean(opts.keep) });
      }),
    );
}
