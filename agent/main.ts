/**
 * `trainkeeper-agent` / `hyperpodrun` entry point (bin/trainkeeper-agent.js, dist bundle, standalone
 * executable): parses the torchrun-compatible command line, resolves `--nproc-per-node`, runs the agent and
 * exits with its code (0 after /shutdown or a completed run, 1 after a standalone fault, 128+signal when
 * killed by a signal before completion, 2 for a bad command line).
 */
import { AGENT_ENV } from '../core/agent-protocol.ts';
import { countCpus, countGpus, startAgent } from './agent.ts';
import { parseAgentArgs, resolveNproc, UsageError } from './options.ts';

const USAGE = `usage: trainkeeper-agent [--nproc-per-node N|auto|gpu|cpu] [--nnodes M] [--tee 3] [--redirects 3]
  [--log-dir D] [--shutdown-signal SIGTERM|SIGKILL] [--shutdown-timeout S] [--server-host H] [--server-port P]
  [--pre-train-script P --pre-train-args A] [--post-train-script P --post-train-args A] [--standalone]
  [--max-restarts N] [--python PATH] [--heartbeat-interval S] [--rank-ip-file PATH] [--bind-gpus]
  TRAINING_SCRIPT [ARGS...]
`;

/** Runs the agent with `argv` (without node and the script path) and exits the process with its code. */
export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let code: number;
  try {
    const options = parseAgentArgs(argv);
    for (const w of options.warnings) process.stderr.write(`trainkeeper-agent: warning: ${w}\n`);
    const needsGpus = options.nprocPerNode === 'auto' || options.nprocPerNode === 'gpu' || options.bindGpus;
    const gpus = needsGpus ? countGpus() : 0;
    const fromEnv = process.env[AGENT_ENV.nprocPerNode];
    const nproc = resolveNproc(
      options.nprocPerNode === 1 &&
        fromEnv &&
        /^\d+$/.test(fromEnv) &&
        !argv.some((a) => /^--nproc[-_]per[-_]node/.test(a))
        ? Number(fromEnv)
        : options.nprocPerNode,
      gpus,
      countCpus(),
    );
    const agent = await startAgent({
      options,
      nproc,
      gpus,
      env: process.env,
      stdout: (chunk) => process.stdout.write(chunk),
      stderr: (text) => process.stderr.write(text),
      handleSignals: true,
    });
    code = await agent.done;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`trainkeeper-agent: ${err.message}\n${USAGE}`);
      code = 2;
    } else {
      process.stderr.write(
        `trainkeeper-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      code = 1;
    }
  }
  process.exit(code);
}
