#!/usr/bin/env node
// `trainkeeper-agent` (alias `hyperpodrun`) from a checkout, for development and the test suites: runs the
// TypeScript agent through tsx (a devDependency). The package's bins are the bundled
// dist/trainkeeper-agent.mjs (`npm run build`); images use that file or the standalone executable from
// `npm run build:agent`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../agent/main.ts');
await main(process.argv.slice(2));
