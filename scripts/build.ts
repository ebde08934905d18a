/**
 * `npm run build`: the compiled package, in `dist/` (git-ignored), with esbuild.
 *
 * - `dist/trainkeeper.mjs` (+ `dist/chunk-*.mjs`): the CLI, ESM for Node ≥ 20; npm dependencies stay
 *   external (the package's `dependencies`, installed beside it) except the few small ones in `INLINED`. Code splitting keeps what a
 *   command loads lazily (the local control plane, the SigV4 signer, the CloudWatch Logs reader) out of the
 *   entry file, so `trainkeeper --version` parses only the command tree. Every file sits directly in
 *   `dist/`, one level below the package root as `cli/` and `local/` are in a checkout, so the
 *   `new URL('..', import.meta.url)` lookups (package.json, examples/) resolve the same way.
 * - `dist/trainkeeper-agent.mjs`: the agent, one self-contained file (agent/build.ts `bundleAgent`, the
 *   file images copy); the package's `trainkeeper-agent`/`hyperpodrun` bins, and the agent the installed
 *   CLI's local plane puts on its kubelet's PATH (local/agent-bin.ts).
 * - `dist/functions/{api,logs,sweep,events}.mjs`: the Lambda handlers bundled as SST bundles them at deploy
 *   (everything inlined, node22, ESM with a `require` shim); SST still bundles from source, these are for
 *   inspection and for running a handler without SST. Not part of the npm package.
 *
 * The agent's standalone executable stays `npm run build:agent` (it copies the Node binary: ~100 MB).
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundleAgent } from '../agent/build.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

/** The Lambda entry points (functions/*.ts), as stacks/triggers.ts names them. */
export const HANDLERS = ['api', 'logs', 'sweep', 'events'] as const;

/**
 * Small pure-JS dependencies the CLI's entry needs on every run, inlined into its bundle: resolving and
 * loading them file by file from node_modules costs more than the parse (measured in docs/benchmarks.md,
 * "CLI start-up"). Every other dependency stays external and is loaded only by the command that uses it.
 */
const INLINED = ['commander', 'yaml', 'p-retry', 'picocolors'];

/** Builds the CLI into `outdir` (default dist/). */
export async function buildCli(outdir = dist): Promise<void> {
  const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  await build({
    absWorkingDir: root,
    entryPoints: { trainkeeper: 'cli/entry.ts' },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    external: Object.keys(dependencies).filter((name) => !INLINED.includes(name)),
    platform: 'node',
    target: 'node20',
    format: 'esm',
    legalComments: 'none',
    // The inlined CommonJS modules (commander) call `require` for Node built-ins.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  chmodSync(join(outdir, 'trainkeeper.mjs'), 0o755);
}

/** Builds the four handlers into `<outdir>/functions/` the way SST lays them out. */
export async function buildHandlers(outdir = dist): Promise<void> {
  await build({
    absWorkingDir: root,
    entryPoints: HANDLERS.map((name) => `functions/${name}.ts`),
    outdir: join(outdir, 'functions'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    legalComments: 'none',
    logLevel: 'warning',
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  rmSync(dist, { recursive: true, force: true });
  await Promise.all([
    buildCli(),
    bundleAgent(join(dist, 'trainkeeper-agent.mjs')),
    process.argv.includes('--no-handlers') ? undefined : buildHandlers(),
  ]);
  console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
}
