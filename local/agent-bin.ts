/**
 * Puts `trainkeeper-agent` and its `hyperpodrun` alias on the local kubelet's PATH, so a real manifest's
 * container command runs as it would in the cluster. The agent is bundled once with the same
 * `bundleAgent` that builds the shipped file, so each pod's agent starts in plain Node.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleAgent } from '../agent/build.ts';

/** Bundles the agent into `dir` and writes the two shims; returns the directory to put first on PATH. */
export async function prepareAgentBin(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const bundle = await bundleAgent(join(dir, 'trainkeeper-agent.mjs'));
  for (const name of ['trainkeeper-agent', 'hyperpodrun']) {
    const shim = join(dir, name);
    await writeFile(
      shim,
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bundle)} "$@"\n`,
    );
    await chmod(shim, 0o755);
  }
  return dir;
}
