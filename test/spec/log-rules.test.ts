import { describe, expect, it } from 'vitest';
import { logRuleWarnings, parseLogRules } from '../../core/spec/log-rules.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';
import type { FieldIssue } from '../../core/spec/types.ts';

const MANIFEST_RULES = 'spec.runPolicy.logMonitoringConfiguration';

/**
 * The issues a manifest carrying `rules` gets, re-rooted at `rules` (what the API reported before, except
 * that a duplicate's message now names the first rule as `rules[i]` too).
 */
function manifestRuleIssues(rules: unknown): FieldIssue[] {
  const result = parseJobManifest({
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: { name: 'rules' },
    spec: {
      replicaSpecs: [{ name: 'w', replicas: 1, template: { spec: { containers: [{ name: 'c' }] } } }],
      runPolicy: { logMonitoringConfiguration: rules },
    },
  });
  if (result.ok) return [];
  return result.errors.map((e) => ({
    path: e.path.replace(MANIFEST_RULES, 'rules'),
    message: e.message.replaceAll(MANIFEST_RULES, 'rules'),
  }));
}

describe('parseLogRules', () => {
  it('applies the manifest defaults and keeps only the fields given', () => {
    expect(parseLogRules([{ name: 'Start', logPattern: '.*started', ranks: ['0'] }], 'rules')).toEqual({
      ok: true,
      rules: [
        {
          name: 'Start',
          logPattern: '.*started',
          metricEvaluationDataPoints: 1,
          faultOnMatch: false,
          scope: 'job',
          ranks: [0],
          source: { kind: 'user' },
        },
      ],
    });
  });

  it.each([
    ['a list that is a mapping', { name: 'x' }],
    ['an unknown field with a hint', [{ name: 'a', logPattern: '.*', faultOnMatch: true, operater: 'gt' }]],
    ['a bad operator', [{ name: 'Hang', logPattern: '.*step.*', operator: 'bogus' }]],
    ['a dangerous lookahead pattern', [{ name: 'a', logPattern: '(?=x)(a+)+$' }]],
    ['a variable-width lookbehind', [{ name: 'a', logPattern: '(?<=a*)b', metricThreshold: 1 }]],
    [
      'a duplicate name after a malformed rule',
      [{ name: 'a', logPattern: '(a)\\1+' }, 'not a rule', { name: 'a', logPattern: '.*', stopPattern: '' }],
    ],
    ['a missing pattern and a bad name', [{ name: 'a\tb' }]],
  ])('reports %s with the paths and messages the manifest parser gives', (_case, rules) => {
    const result = parseLogRules(rules, 'rules');
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.path.startsWith('rules'))).toBe(true);
    expect(errors).toEqual(manifestRuleIssues(rules));
  });

  it('roots every path at the path it is given', () => {
    const result = parseLogRules([{ name: 'a', logPattern: '.*', operator: 'bogus' }], 'body.rules');
    expect(result.ok ? [] : result.errors.map((e) => e.path)).toEqual(['body.rules[0].operator']);
  });

  it('accepts any non-empty name, operator without threshold and lookaround, and warns about the operator', () => {
    const list = [{ name: 'GPU Error', logPattern: '.*(?<!cuda )error (\\d+)', operator: 'gt' }];
    const result = parseLogRules(list, 'rules');
    expect(result.ok && result.rules.map((r) => [r.name, r.operator, r.metricThreshold])).toEqual([
      ['GPU Error', 'gt', undefined],
    ]);
    expect(logRuleWarnings(list, 'rules')).toEqual([
      { path: 'rules[0].operator', message: expect.stringContaining('metric evaluation is skipped') },
    ]);
  });

  it('names the rule in an invalid-pattern message and keeps the path a plain field path', () => {
    const list = [
      { name: 'Good', logPattern: '.*ok' },
      { name: 'BadRegex', logPattern: '(a+)\\1+', stopPattern: '[' },
      { name: 'a.b[0]', logPattern: '(' },
      { logPattern: '(' },
    ];
    const result = parseLogRules(list, 'spec.runPolicy.logMonitoringConfiguration');
    expect(result.ok ? [] : result.errors).toEqual([
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[1].logPattern',
        message: expect.stringMatching(
          /^is not a valid pattern \(rule `BadRegex`\): .*repeated backreference/,
        ),
      },
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[1].stopPattern',
        message: expect.stringMatching(/^is not a valid pattern \(rule `BadRegex`\): .*missing closing \]/),
      },
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[2].logPattern',
        message: expect.stringMatching(/^is not a valid pattern \(rule `a\.b\[0\]`\): /),
      },
      { path: 'spec.runPolicy.logMonitoringConfiguration[3].name', message: expect.any(String) },
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[3].logPattern',
        message: expect.stringMatching(/^is not a valid pattern: /),
      },
    ]);
  });
});
