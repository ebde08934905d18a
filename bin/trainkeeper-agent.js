#!/usr/bin/env node
// `trainkeeper-agent` (alias `hyperpodrun`) from a checkout: runs the TypeScript agent through tsx.
// Images use the bundled file or the standalone executable from `npm run build:agent` instead.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../agent/main.ts');
await main(process.argv.slice(2));
