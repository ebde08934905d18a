import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors.ts';
import {
  effectivePattern,
  grantOf,
  isGranted,
  matchesPrincipal,
  parseAccessRules,
} from '../../../functions/shell/access.ts';
import { loadConfig } from '../../../functions/shell/config.ts';

const ACCT = '123456789012';

describe('matchesPrincipal', () => {
  it.each([
    // [rule principal, userArn from requestContext.authorizer.iam, matches]
    [
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-*/*`,
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-Eng/alice`,
      true,
    ],
    [
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-*/*`,
      `arn:aws:sts::${ACCT}:assumed-role/TeamB-Eng/alice`,
      false,
    ],
    [
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-*/*`,
      `arn:aws:sts::999999999999:assumed-role/TeamA-Eng/a`,
      false,
    ],
    // `*` does not cross `/`: a role-name wildcard never swallows the session segment
    [
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-*/alice`,
      `arn:aws:sts::${ACCT}:assumed-role/TeamA-x/bob`,
      false,
    ],
    [`arn:aws:sts::${ACCT}:assumed-role/TeamA/alice`, `arn:aws:sts::${ACCT}:assumed-role/TeamA/alice`, true],
    // a role ARN matches every session of that role (the assumed-role ARN drops the role's path)
    [`arn:aws:iam::${ACCT}:role/TeamA`, `arn:aws:sts::${ACCT}:assumed-role/TeamA/botocore-session-1`, true],
    [`arn:aws:iam::${ACCT}:role/teams/ml/TeamA`, `arn:aws:sts::${ACCT}:assumed-role/TeamA/s`, true],
    [`arn:aws:iam::${ACCT}:role/TeamA`, `arn:aws:sts::${ACCT}:assumed-role/TeamA-Admin/s`, false],
    [
      `arn:aws:iam::${ACCT}:role/AWSReservedSSO_ML_*`,
      `arn:aws:sts::${ACCT}:assumed-role/AWSReservedSSO_ML_0a1b/jo`,
      true,
    ],
    // IAM users and the root are matched as they are
    [`arn:aws:iam::${ACCT}:user/ci-*`, `arn:aws:iam::${ACCT}:user/ci-bot`, true],
    [`arn:aws:iam::${ACCT}:user/ci-*`, `arn:aws:iam::${ACCT}:user/ops/ci-bot`, false],
    // regular-expression characters in a pattern are literal
    [`arn:aws:iam::${ACCT}:user/a.b`, `arn:aws:iam::${ACCT}:user/aXb`, false],
  ])('%s against %s: %s', (pattern, userArn, expected) => {
    expect(matchesPrincipal(pattern, userArn)).toBe(expected);
  });

  it('turns a role ARN into the assumed-role sessions of that role', () => {
    expect(effectivePattern('arn:aws-cn:iam::123456789012:role/p/q/Name')).toBe(
      'arn:aws-cn:sts::123456789012:assumed-role/Name/*',
    );
  });
});

describe('grantOf', () => {
  const rules = [
    { principal: `arn:aws:iam::${ACCT}:role/TeamA`, namespaces: ['team-a'] },
    { principal: `arn:aws:sts::${ACCT}:assumed-role/TeamA/lead`, namespaces: ['team-b'] },
    { principal: `arn:aws:iam::${ACCT}:role/Admin`, namespaces: '*' as const },
  ];

  it('is the union over every matching rule, nothing without a match, and every namespace without rules', () => {
    expect(grantOf(rules, `arn:aws:sts::${ACCT}:assumed-role/TeamA/alice`)).toEqual(new Set(['team-a']));
    expect(grantOf(rules, `arn:aws:sts::${ACCT}:assumed-role/TeamA/lead`)).toEqual(
      new Set(['team-a', 'team-b']),
    );
    expect(grantOf(rules, `arn:aws:sts::${ACCT}:assumed-role/Admin/x`)).toBe('*');
    expect(grantOf(rules, `arn:aws:sts::${ACCT}:assumed-role/Other/x`)).toEqual(new Set());
    expect(grantOf(undefined, 'anyone')).toBe('*');
    expect(isGranted(new Set(['team-a']), 'team-b')).toBe(false);
    expect(isGranted('*', 'team-b')).toBe(true);
  });
});

describe('TRAINKEEPER_ACCESS', () => {
  const base = {
    TRAINKEEPER_TABLE: 't',
    AWS_REGION: 'us-west-2',
    TRAINKEEPER_CLUSTER_KIND: 'eks',
    TRAINKEEPER_CLUSTER_NAME: 'e',
  };

  it('loads the rules into the config, and leaves access unset (open) without the variable', () => {
    const access = [{ principal: `arn:aws:iam::${ACCT}:role/TeamA`, namespaces: ['team-a'] }];
    expect(loadConfig({ ...base, TRAINKEEPER_ACCESS: JSON.stringify(access) }).access).toEqual(access);
    expect(loadConfig(base).access).toBeUndefined();
    expect(loadConfig({ ...base, TRAINKEEPER_ACCESS: ' ' }).access).toBeUndefined();
  });

  it.each([
    ['not JSON', '[{', /TRAINKEEPER_ACCESS: not JSON/],
    ['an empty list', '[]', /TRAINKEEPER_ACCESS/],
    ['a principal that is no ARN', '[{"principal":"TeamA","namespaces":["a"]}]', /\[0\]\.principal/],
    [
      'an assumed role without its session',
      `[{"principal":"arn:aws:sts::${ACCT}:assumed-role/R","namespaces":"*"}]`,
      /add \/\*/,
    ],
    [
      'a bad namespace name',
      `[{"principal":"arn:aws:iam::${ACCT}:role/R","namespaces":["Team_A"]}]`,
      /namespaces/,
    ],
    ['an unknown field', `[{"principal":"arn:aws:iam::${ACCT}:role/R","namespaces":"*","tag":"x"}]`, /tag/],
  ])('fails the cold start on %s, naming the variable', (_, text, message) => {
    expect(() => loadConfig({ ...base, TRAINKEEPER_ACCESS: text })).toThrow(ValidationError);
    expect(() => loadConfig({ ...base, TRAINKEEPER_ACCESS: text })).toThrow(message);
  });

  it('reports issue paths per rule', () => {
    const out = parseAccessRules('[{"principal":"x","namespaces":[]}]');
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.issues.map((i) => i.path).sort()).toEqual(['[0].namespaces', '[0].principal']);
  });
});
