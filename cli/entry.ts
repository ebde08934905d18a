/**
 * Entry of the compiled `trainkeeper` (dist/trainkeeper.mjs, scripts/build.ts) and of the checkout launcher
 * (bin/trainkeeper.js): runs `main` with the process's arguments and exits with its code.
 *
 * `trainkeeper --version` (or `-V`) alone is answered here, before the command tree and its libraries load:
 * the same line commander prints for it (cli/main.ts), at about Node's own start-up cost
 * (docs/benchmarks.md, "CLI start-up").
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  process.stdout.write(`${version}\n`);
} else {
  // The AWS SDK warns on Node 20 about releases after January 2027; our SDK versions are pinned exactly and
  // the Lambdas run on nodejs22.x, so the warning says nothing actionable to a CLI user.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { main } = await import('./main.ts');
  process.exitCode = await main(args);
}
