/**
 * Entry of the compiled `trainkeeper` (dist/trainkeeper.mjs, scripts/build.ts) and of the checkout launcher
 * (bin/trainkeeper.js): runs `main` with the process's arguments and exits with its code.
 */

// The AWS SDK warns on Node 20 about releases after January 2027; our SDK versions are pinned exactly and the
// Lambdas run on nodejs22.x, so the warning says nothing actionable to a CLI user.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
