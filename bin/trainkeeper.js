#!/usr/bin/env node
// `trainkeeper` from a checkout: runs the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api';

// The AWS SDK warns on Node 20 about releases after January 2027; our SDK versions are pinned exactly and the
// Lambdas run on nodejs22.x, so the warning says nothing actionable to a CLI user.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
