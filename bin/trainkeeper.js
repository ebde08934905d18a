#!/usr/bin/env node
// `trainkeeper` from a checkout, for development and the test suites: runs the TypeScript CLI through tsx
// (a devDependency), no build step. The package's `trainkeeper` is the compiled dist/trainkeeper.mjs
// (`npm run build`).
import { register } from 'tsx/esm/api';

register();
await import('../cli/entry.ts');
