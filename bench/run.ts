/**
 * `npm run bench [-- name… [--flag…]]`: runs every `bench/*.bench.ts` (or the named ones) in turn; flags are
 * left for the benches (e.g. `scale --json`). Each bench
 * measures its own baseline in the same run and prints its figures; nothing here asserts wall-clock times.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
// Bench names are the bare words; flags (`--json`) and their values (`--sizes 16,256`) are the benches' own.
const wanted = process.argv.slice(2).filter((a) => /^[a-z][a-z-]*$/.test(a));
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

for (const name of benches) {
  console.log(`\n=== bench: ${name} ===`);
  const mod = (await import(`./${name}.bench.ts`)) as { default: () => Promise<void> };
  await mod.default();
}
