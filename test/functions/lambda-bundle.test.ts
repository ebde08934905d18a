import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The Lambdas run as esbuild bundles laid out as SST lays them out: `functions/<name>.mjs` under the bundle
// root, with the rule presets copied to `rules/presets/` (stacks/control-plane.ts `copyFiles`). A bundle
// that cannot load its presets would fail every cold start, so each one is built and imported here.
const root = mkdtempSync(join(tmpdir(), 'trainkeeper-bundle-'));
const HANDLERS = ['api', 'logs', 'sweep', 'events'];

beforeAll(async () => {
  await build({
    entryPoints: HANDLERS.map((name) => `functions/${name}.ts`),
    outdir: join(root, 'functions'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'silent',
  });
  cpSync('rules/presets', join(root, 'rules', 'presets'), {
    recursive: true,
    filter: (src) => !src.endsWith('.ts'),
  });
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('Lambda bundles', () => {
  it.each(HANDLERS)(
    'the %s handler bundles into one ESM file that loads its rule presets and exports `handler`',
    (name) => {
      const probe = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(join(root, 'functions', `${name}.mjs`))}); console.log(typeof m.handler);`,
        ],
        {
          encoding: 'utf8',
          cwd: root,
          env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        },
      );
      expect(probe.stderr).toBe('');
      expect(probe.stdout.trim()).toBe('function');
    },
    60_000,
  );

  it('the logs bundle fails loudly at load when the presets were not copied beside it', () => {
    rmSync(join(root, 'rules'), { recursive: true, force: true });
    const probe = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'functions', 'logs.mjs'))});`],
      { encoding: 'utf8', cwd: root },
    );
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toMatch(/rule preset nccl: no nccl\.yaml/);
  });
});
