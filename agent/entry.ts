/**
 * Bundle entry of the shipped agent (dist/trainkeeper-agent.mjs and the standalone executable): runs `main`
 * with the process's arguments. No top-level await, so the same entry bundles as CommonJS for Node's
 * single-executable applications.
 */
import { main } from './main.ts';

void main(process.argv.slice(2));
