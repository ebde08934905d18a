import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toManifest } from '../../core/spec/manifest.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';

const names = ['p5-16-nodes-log-rules.yaml', 'kueue-spares.yaml', 'fsdp-hyperpodrun.yaml', 'minimal.json'];
const fixtures = names.map((name) =>
  readFileSync(new URL(`../fixtures/manifests/${name}`, import.meta.url), 'utf8'),
);

/** Fields a fuzzed value is dropped into, from the top of the document to deep inside a rule. */
const FIELDS = [
  [],
  ['metadata'],
  ['metadata', 'name'],
  ['metadata', 'labels'],
  ['spec'],
  ['spec', 'nprocPerNode'],
  ['spec', 'replicaSpecs'],
  ['spec', 'replicaSpecs', 0],
  ['spec', 'replicaSpecs', 0, 'replicas'],
  ['spec', 'replicaSpecs', 0, 'template'],
  ['spec', 'replicaSpecs', 0, 'template', 'spec', 'containers'],
  ['spec', 'runPolicy'],
  ['spec', 'runPolicy', 'restartPolicy'],
  ['spec', 'runPolicy', 'logMonitoringConfiguration'],
  ['spec', 'runPolicy', 'logMonitoringConfiguration', 0],
  ['spec', 'runPolicy', 'logMonitoringConfiguration', 0, 'logPattern'],
  ['spec', 'runPolicy', 'logMonitoringConfiguration', 0, 'metricThreshold'],
  ['spec', 'trainkeeper'],
  ['spec', 'trainkeeper', 'progressRule'],
] as const;

function setAt(doc: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  const node = (doc !== null && typeof doc === 'object' ? doc : {}) as Record<string | number, unknown>;
  node[head] = setAt(node[head], rest, value);
  return node;
}

describe('parseJobManifest properties', () => {
  it('never throws and always explains a rejection with string paths and messages, whatever value sits in any field', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        fc.constantFrom(...FIELDS),
        fc.anything(),
        (text, field, value) => {
          const parsed = parseJobManifest(text);
          if (!parsed.ok) throw new Error('fixture must parse');
          const doc = setAt(structuredClone(toManifest(parsed.spec)), field, value);
          const result = parseJobManifest(doc);
          if (!result.ok) {
            expect(result.errors.length).toBeGreaterThan(0);
            for (const issue of result.errors) {
              expect(typeof issue.path).toBe('string');
              expect(issue.message).toMatch(/\S/);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each([
    ['an alias before its anchor', '*a'],
    [
      'an alias expansion bomb',
      `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from(
        { length: 8 },
        (_, i) =>
          `b${i}: &b${i} [${Array(10)
            .fill(i === 0 ? '*a' : `*b${i - 1}`)
            .join(', ')}]`,
      ).join('\n')}\n`,
    ],
  ])('rejects %s as invalid YAML instead of throwing', (_what, text) => {
    const result = parseJobManifest(text);
    expect(result).toMatchObject({
      ok: false,
      errors: [{ path: '', message: expect.stringMatching(/^not valid YAML/) }],
    });
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(typeof parseJobManifest(text).ok).toBe('boolean');
      }),
      { numRuns: 200 },
    );
  });

  it.each(names.map((name, i) => [name, fixtures[i] as string]))(
    'gets the same spec back from toManifest of the parsed %s',
    (_name, text) => {
      const first = parseJobManifest(text);
      if (!first.ok) throw new Error('fixture must parse');
      const again = parseJobManifest(toManifest(first.spec));
      expect(again).toEqual(first);
    },
  );
});
