/**
 * Puts `trainkeeper-agent` and its `hyperpodrun` alias on the local kubelet's PATH, so a real manifest's
 * container command runs as it would in the cluster, each pod's agent starting in plain Node.
 *
 * From the compiled package (scripts/build.ts) the agent is the shipped `dist/trainkeeper-agent.mjs` beside
 * this code; from a checkout it is bundled once with the same `bundleAgent` that builds that file (esbuild is
 * a devDependency, so the installed package never loads it).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this module runs as TypeScript source (tsx, vitest), false inside the compiled package. */
const isSource = import.meta.url.endsWith('.ts');

/** The agent bundle: the package's own, or a fresh bundle in `dir` from a checkout. */
async function agentBundle(dir: string): Promise<string> {
  if (!isSource) return fileURLToPath(new URL('./trainkeeper-agent.mjs', import.meta.url));
  // Not a literal: the compiled CLI must not bundle the build script (and its esbuild import).
  const buildScript = '../agent/build.ts';
  const { bundleAgent } = (await import(buildScript)) as typeof import('../agent/build.ts');
  return bundleAgent(join(dir, 'trainkeeper-agent.mjs'));
}

/** Writes the two shims into `dir` (bundling the agent there from a checkout); returns the directory to put first on PATH. */
export async function prepareAgentBin(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const bundle = await agentBundle(dir);
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
