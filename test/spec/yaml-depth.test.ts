import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { MAX_YAML_DEPTH, yamlTooDeep } from '../../core/spec/yaml-depth.ts';

const FIXTURES = new URL('../fixtures/manifests/', import.meta.url);
const flow = (depth: number) => `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`;
const block = (depth: number) =>
  Array.from({ length: depth }, (_, k) => `${'  '.repeat(k)}k${k}:`).join('\n') + ` 1\n`;

describe('yamlTooDeep', () => {
  it.each([
    ['flow mappings', flow(101), 1, 4 * 100 + 1],
    ['flow lists on a later line', `# yaml\nx: ${'['.repeat(800)}${']'.repeat(800)}`, 2, 3 + 100],
    ['block mappings', block(120), 101, 201],
    ['compact block sequences', `${'- '.repeat(150)}x`, 1, 203],
  ])('finds %s nested past the limit, with the line and column', (_, text, line, column) => {
    expect(yamlTooDeep(text)).toEqual({
      line,
      column,
      message: `nested deeper than ${MAX_YAML_DEPTH} levels at line ${line}, column ${column}`,
    });
  });

  it.each([
    ['flow mappings at the limit', flow(100)],
    ['block mappings at the limit', block(100)],
    ['brackets in a block scalar', `a: |\n  ${'['.repeat(500)}\n  ${'{'.repeat(500)}\nb: 1`],
    [
      'brackets in quoted scalars, also across lines',
      `a: "${'['.repeat(500)}\n  ${'['.repeat(500)}"\nb: '${'{'.repeat(500)}'`,
    ],
    ['brackets in comments and plain scalars', `a: x${'['.repeat(500)} # ${'{'.repeat(500)}`],
  ])('accepts %s', (_, text) => {
    expect(yamlTooDeep(text)).toBeUndefined();
  });

  it('counts every fixture manifest within one level of its real depth', () => {
    const depthOf = (v: unknown): number =>
      v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0;
    for (const file of readdirSync(FIXTURES)) {
      const text = readFileSync(new URL(file, FIXTURES), 'utf8');
      const real = depthOf(parse(text));
      expect(real, file).toBeGreaterThan(5);
      expect(yamlTooDeep(text, real + 1), file).toBeUndefined();
      expect(yamlTooDeep(text, real - 2), file).toBeDefined();
    }
  });
});

describe('parseJobManifest on deep YAML', () => {
  it('refuses flow YAML nested 2,000 deep with the depth and where, not a stack overflow', () => {
    const text = `apiVersion: sagemaker.amazonaws.com/v1\nkind: HyperPodPyTorchJob\nmetadata: ${flow(2000)}\n`;
    const result = parseJobManifest(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors).toEqual([
      {
        path: '',
        message: `nested deeper than ${MAX_YAML_DEPTH} levels at line 3, column ${10 + 4 * 99 + 1}`,
      },
    ]);
  });
});
