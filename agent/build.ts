/**
 * `npm run build:agent`: ships `trainkeeper-agent` in two forms.
 * - `dist/trainkeeper-agent.mjs`: one ESM file (esbuild, node20 target), run with any Node ≥ 20.
 * - `dist/trainkeeper-agent`: a standalone Linux executable (Node single-executable application: a CommonJS
 *   bundle turned into a blob with `node --experimental-sea-config`, injected into a copy of this Node
 *   binary with `postject`). Needs no Node in the image.
 *
 * `--bundle-only` skips the executable (tests use `bundleAgent`).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The fuse Node's SEA loader looks for (fixed by Node). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Bundles the agent into one file (`esm` for dist/*.mjs, `cjs` for the SEA blob). Returns the path. */
export async function bundleAgent(outfile: string, format: 'esm' | 'cjs' = 'esm'): Promise<string> {
  await build({
    entryPoints: [join(root, 'agent/entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    banner: format === 'esm' ? { js: '#!/usr/bin/env node' } : {},
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  return outfile;
}

/** Builds the standalone executable from a CommonJS bundle. Returns its path. */
export async function buildExecutable(outDir: string): Promise<string> {
  const work = join(outDir, 'sea');
  mkdirSync(work, { recursive: true });
  const cjs = await bundleAgent(join(work, 'trainkeeper-agent.cjs'), 'cjs');
  const blob = join(work, 'trainkeeper-agent.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: cjs, output: blob, disableExperimentalSEAWarning: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' });
  const exe = join(outDir, 'trainkeeper-agent');
  rmSync(exe, { force: true });
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  const require = createRequire(import.meta.url);
  const { inject } = require('postject') as {
    inject: (file: string, name: string, data: Buffer, opts: { sentinelFuse: string }) => Promise<void>;
  };
  await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  rmSync(work, { recursive: true, force: true });
  return exe;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dist = join(root, 'dist');
  mkdirSync(dist, { recursive: true });
  const mjs = await bundleAgent(join(dist, 'trainkeeper-agent.mjs'));
  console.log(`built ${mjs}`);
  if (!process.argv.includes('--bundle-only')) {
    const exe = await buildExecutable(dist);
    console.log(`built ${exe}`);
  }
}
