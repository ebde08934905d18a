import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHandlers, HANDLERS } from '../../scripts/build.ts';

// The Lambdas run as esbuild bundles laid out as SST lays them out: `functions/<name>.mjs` under the bundle
// root and nothing else (no files are copied beside them: the rule presets are imported modules). A bundle
// that cannot load its presets would fail every cold start, so each one is built and imported here.
const root = mkdtempSync(join(tmpdir(), 'trainkeeper-bundle-'));

// The same build `npm run build` makes (scripts/build.ts), into a temporary root.
beforeAll(() => buildHandlers(root), 120_000);
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

  it('the logs bundle carries the rule presets in its code, with nothing beside it to read', () => {
    expect(existsSync(join(root, 'rules'))).toBe(false);
    const code = readFileSync(join(root, 'functions', 'logs.mjs'), 'utf8');
    expect(code).toContain('Watchdog caught collective operation timeout');
  });
});
