import { describe, expect, it } from 'vitest';
import {
  isProductionStage,
  StageConfigError,
  type StageInput,
  stageConfig,
  stageRegion,
} from '../../stacks/config.ts';

const EKS_ENV = {
  TRAINKEEPER_DEPLOY_REGION: 'eu-west-1',
  TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
  TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'train-eks',
};
/** A mapping production stages must carry (two teams). */
const ACCESS_ENV = {
  TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: 'team-a,team-b',
  TRAINKEEPER_DEPLOY_ACCESS: JSON.stringify([
    { principal: 'arn:aws:iam::123456789012:role/TeamA-Engineers', namespaces: ['team-a'] },
    { principal: 'arn:aws:sts::123456789012:assumed-role/TeamB-*/*', namespaces: ['team-b'] },
  ]),
};

function issuesOf(f: () => unknown): { path: string; message: string }[] {
  try {
    f();
  } catch (err) {
    if (err instanceof StageConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a StageConfigError');
}

describe('stageConfig', () => {
  it('applies the defaults to the committed ci entry: Container Insights log group of the EKS cluster, no retention, a new AMP workspace', () => {
    expect(stageConfig('ci')).toMatchObject({
      stage: 'ci',
      region: 'us-west-2',
      logGroup: '/aws/containerinsights/ml-eks/application',
      retain: false,
      amp: { create: true },
      podSecurity: 'baseline',
      logFilter: 'namespaces',
      allowedNamespaces: ['team-a', 'team-b'],
      restartStormThreshold: 10,
    });
  });

  it.each([
    ['production', true],
    ['prod', true],
    ['staging', false],
    ['ci', false],
  ])('treats stage %s as production: %s', (stage, production) => {
    expect(isProductionStage(stage)).toBe(production);
    expect(stageConfig(stage, { ...EKS_ENV, ...ACCESS_ENV }, {}).retain).toBe(production);
  });

  it('refuses a production stage without a principal → namespace mapping, and accepts it with one', () => {
    expect(issuesOf(() => stageConfig('production', EKS_ENV, {}))).toEqual([
      { path: 'access', message: expect.stringMatching(/production stage must map IAM principals/) },
    ]);
    expect(stageConfig('staging', EKS_ENV, {}).access).toBeUndefined();
    expect(stageConfig('production', { ...EKS_ENV, ...ACCESS_ENV }, {}).access).toEqual([
      { principal: 'arn:aws:iam::123456789012:role/TeamA-Engineers', namespaces: ['team-a'] },
      { principal: 'arn:aws:sts::123456789012:assumed-role/TeamB-*/*', namespaces: ['team-b'] },
    ]);
  });

  it('names each bad access rule: not JSON, a non-ARN principal, a session-less assumed role, a namespace not allowed', () => {
    expect(issuesOf(() => stageConfig('s', { ...EKS_ENV, TRAINKEEPER_DEPLOY_ACCESS: '[{' }, {}))).toEqual([
      { path: 'access', message: expect.any(String) },
    ]);
    const issues = issuesOf(() =>
      stageConfig(
        's',
        {
          ...EKS_ENV,
          TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: 'team-a',
          TRAINKEEPER_DEPLOY_ACCESS: JSON.stringify([
            { principal: 'TeamA', namespaces: ['team-a'] },
            { principal: 'arn:aws:sts::123456789012:assumed-role/TeamA-*', namespaces: ['team-a'] },
            { principal: 'arn:aws:iam::123456789012:role/TeamB', namespaces: ['team-b'] },
          ]),
        },
        {},
      ),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'access.0.principal',
      'access.1.principal',
      'access.2.namespaces',
    ]);
    expect(issues[1]?.message).toMatch(/add \/\*/);
    expect(issues[2]?.message).toMatch(/team-b is not one of allowedNamespaces/);
  });

  it('carries the committed two-team mapping of the ci stage', () => {
    expect(stageConfig('ci').access).toEqual([
      { principal: 'arn:aws:iam::123456789012:role/TeamA-Engineers', namespaces: ['team-a'] },
      { principal: 'arn:aws:sts::123456789012:assumed-role/TeamB-*/*', namespaces: ['team-b'] },
      { principal: 'arn:aws:iam::123456789012:role/MLPlatform-Admin', namespaces: '*' },
    ]);
  });

  it('builds a whole stage from environment variables alone', () => {
    const c = stageConfig(
      'team',
      {
        ...EKS_ENV,
        TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: ' a, b ,',
        TRAINKEEPER_DEPLOY_AMP_WORKSPACE_ID: 'ws-0123abcd-4567',
        TRAINKEEPER_DEPLOY_POD_SECURITY: 'restricted',
        TRAINKEEPER_DEPLOY_ALARM_EMAIL: 'ml@example.com',
        TRAINKEEPER_DEPLOY_RETAIN: 'true',
        TRAINKEEPER_DEPLOY_LOG_FILTER: 'all',
        TRAINKEEPER_DEPLOY_LOG_GROUP: '/custom/pods',
      },
      {},
    );
    expect(c).toEqual({
      stage: 'team',
      region: 'eu-west-1',
      cluster: { kind: 'eks', name: 'train-eks' },
      logGroup: '/custom/pods',
      allowedNamespaces: ['a', 'b'],
      podSecurity: 'restricted',
      amp: { workspaceId: 'ws-0123abcd-4567' },
      alarmEmail: 'ml@example.com',
      retain: true,
      logFilter: 'all',
      logDelivery: 'direct',
      restartStormThreshold: 10,
      logLevel: 'info',
    });
  });

  it('keeps a committed stage region when the shell sets AWS_REGION', () => {
    expect(stageConfig('ci', { AWS_REGION: 'eu-central-1' }).region).toBe('us-west-2');
    expect(
      stageConfig(
        'ci',
        { AWS_REGION: 'eu-central-1', TRAINKEEPER_DEPLOY_REGION: 'us-east-2' },
        {
          ci: { cluster: { kind: 'eks', name: 'e' } },
        },
      ).region,
    ).toBe('us-east-2');
  });

  it('takes the region from AWS_REGION when neither the entry nor the deploy variable gives one', () => {
    const { TRAINKEEPER_DEPLOY_REGION: _, ...env } = EKS_ENV;
    expect(stageConfig('x', { ...env, AWS_REGION: 'ap-south-1' }, {}).region).toBe('ap-south-1');
  });

  it('overlays an environment cluster field on a stage entry of the same kind', () => {
    const c = stageConfig('ci', { TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'other-hp' });
    expect(c.cluster).toMatchObject({ kind: 'hyperpod', name: 'other-hp', eksClusterName: 'ml-eks' });
  });

  it('replaces the stage entry cluster when the environment names another kind', () => {
    const c = stageConfig('ci', {
      TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
      TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'e',
    });
    expect(c.cluster).toEqual({ kind: 'eks', name: 'e' });
    expect(c.logGroup).toBe('/aws/containerinsights/e/application');
  });

  const hp = (over: Record<string, unknown>): Record<string, StageInput> => ({
    s: {
      region: 'us-west-2',
      cluster: {
        kind: 'hyperpod',
        name: 'hp',
        hyperPodArn: 'arn:aws:sagemaker:us-west-2:123456789012:cluster/abc123',
        eksClusterName: 'e',
        ...over,
      } as StageInput['cluster'],
    },
  });

  it.each<[string, () => unknown, string[]]>([
    ['an unknown stage with no environment', () => stageConfig('nowhere', {}, {}), ['region', 'cluster']],
    [
      'a HyperPod ARN that is not a cluster ARN',
      () => stageConfig('s', {}, hp({ hyperPodArn: 'arn:aws:eks:us-west-2:1:cluster/x' })),
      ['cluster.hyperPodArn'],
    ],
    [
      'a HyperPod cluster in another region than the stage',
      () =>
        stageConfig('s', {}, hp({ hyperPodArn: 'arn:aws:sagemaker:eu-west-1:123456789012:cluster/abc123' })),
      ['cluster.hyperPodArn'],
    ],
    [
      'a HyperPod cluster without its EKS cluster',
      () => stageConfig('s', {}, hp({ eksClusterName: undefined })),
      ['cluster.eksClusterName'],
    ],
    [
      'a bad namespace and a bad e-mail at once',
      () =>
        stageConfig(
          's',
          { TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: 'ok,Not_OK', TRAINKEEPER_DEPLOY_ALARM_EMAIL: 'nope' },
          hp({}),
        ),
      ['allowedNamespaces.1', 'alarmEmail'],
    ],
    [
      'a retain flag that is not true/false',
      () => stageConfig('s', { TRAINKEEPER_DEPLOY_RETAIN: 'yes' }, hp({})),
      ['retain'],
    ],
    [
      'an AMP id that is not a workspace id',
      () => stageConfig('s', { TRAINKEEPER_DEPLOY_AMP_WORKSPACE_ID: 'x' }, hp({})),
      ['amp.workspaceId'],
    ],
    [
      'an unknown cluster kind',
      () => stageConfig('s', { ...EKS_ENV, TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'gke' }, {}),
      ['cluster.kind'],
    ],
  ])('rejects %s with every bad field path', (_, f, paths) => {
    const issues = issuesOf(f);
    expect(issues.map((i) => i.path)).toEqual(paths);
  });

  it('names the stage and each field in the error message', () => {
    expect(() => stageConfig('nowhere', {}, {})).toThrow(/stage "nowhere": region: .*; cluster: /);
  });
});

describe('logDelivery', () => {
  const eks = (logDelivery?: unknown): Record<string, StageInput> => ({
    s: {
      region: 'us-west-2',
      cluster: { kind: 'eks', name: 'e' },
      ...(logDelivery === undefined ? {} : { logDelivery: logDelivery as StageInput['logDelivery'] }),
    },
  });
  const DEFAULTS = { shards: 1, batchingWindowSeconds: 2, batchSize: 1000 };

  it('defaults to direct delivery, for the committed ci stage too', () => {
    expect(stageConfig('s', {}, eks()).logDelivery).toBe('direct');
    expect(stageConfig('ci').logDelivery).toBe('direct');
    expect(stageConfig('s', {}, eks('direct')).logDelivery).toBe('direct');
  });

  it('fills every default of a kinesis entry and keeps the fields it gives', () => {
    expect(stageConfig('s', {}, eks({ kinesis: {} })).logDelivery).toEqual({ kinesis: DEFAULTS });
    expect(stageConfig('s', {}, eks({ kinesis: { shards: 4, batchSize: 500 } })).logDelivery).toEqual({
      kinesis: { shards: 4, batchingWindowSeconds: 2, batchSize: 500 },
    });
    expect(
      stageConfig('s', {}, eks({ kinesis: { shards: 64, batchingWindowSeconds: 0, batchSize: 10_000 } }))
        .logDelivery,
    ).toEqual({ kinesis: { shards: 64, batchingWindowSeconds: 0, batchSize: 10_000 } });
  });

  it.each<[string, unknown]>([
    ['direct', 'direct'],
    ['kinesis', { kinesis: DEFAULTS }],
    ['kinesis:8', { kinesis: { ...DEFAULTS, shards: 8 } }],
    [' kinesis: 3 ', { kinesis: { ...DEFAULTS, shards: 3 } }],
  ])('reads TRAINKEEPER_DEPLOY_LOG_DELIVERY=%j', (value, expected) => {
    expect(stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: value }, eks()).logDelivery).toEqual(expected);
  });

  it("lets the environment override an entry's delivery, keeping the entry's other kinesis fields", () => {
    const entry = eks({ kinesis: { shards: 2, batchSize: 200 } });
    expect(stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: 'kinesis:6' }, entry).logDelivery).toEqual({
      kinesis: { shards: 6, batchingWindowSeconds: 2, batchSize: 200 },
    });
    expect(stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: 'direct' }, entry).logDelivery).toBe('direct');
    expect(
      stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: 'kinesis' }, eks('direct')).logDelivery,
    ).toEqual({
      kinesis: DEFAULTS,
    });
  });

  it.each<[string, unknown, string[]]>([
    ['an unknown mode', 'firehose', ['logDelivery']],
    ['a number', 3, ['logDelivery']],
    ['an object without kinesis', {}, ['logDelivery.kinesis']],
    ['an unknown key beside kinesis', { kinesis: {}, firehose: {} }, ['logDelivery']],
    ['kinesis that is not an object', { kinesis: 2 }, ['logDelivery.kinesis']],
    ['an unknown kinesis field', { kinesis: { shard: 2 } }, ['logDelivery.kinesis']],
    ['no shard', { kinesis: { shards: 0 } }, ['logDelivery.kinesis.shards']],
    ['too many shards', { kinesis: { shards: 65 } }, ['logDelivery.kinesis.shards']],
    ['a fractional shard count', { kinesis: { shards: 1.5 } }, ['logDelivery.kinesis.shards']],
    ['shards as a string', { kinesis: { shards: '2' } }, ['logDelivery.kinesis.shards']],
    [
      'a negative batching window',
      { kinesis: { batchingWindowSeconds: -1 } },
      ['logDelivery.kinesis.batchingWindowSeconds'],
    ],
    [
      'a batching window over 300 s',
      { kinesis: { batchingWindowSeconds: 301 } },
      ['logDelivery.kinesis.batchingWindowSeconds'],
    ],
    [
      'a fractional batching window',
      { kinesis: { batchingWindowSeconds: 0.5 } },
      ['logDelivery.kinesis.batchingWindowSeconds'],
    ],
    ['an empty batch', { kinesis: { batchSize: 0 } }, ['logDelivery.kinesis.batchSize']],
    ['a batch over 10,000 records', { kinesis: { batchSize: 10_001 } }, ['logDelivery.kinesis.batchSize']],
    [
      'every field bad at once',
      { kinesis: { shards: 'x', batchingWindowSeconds: 301, batchSize: 0 } },
      [
        'logDelivery.kinesis.shards',
        'logDelivery.kinesis.batchingWindowSeconds',
        'logDelivery.kinesis.batchSize',
      ],
    ],
  ])('rejects %s with its path', (_, logDelivery, paths) => {
    expect(issuesOf(() => stageConfig('s', {}, eks(logDelivery))).map((i) => i.path)).toEqual(paths);
  });

  it.each<[string, string]>([
    ['kinesis:0', 'logDelivery.kinesis.shards'],
    ['kinesis:65', 'logDelivery.kinesis.shards'],
    ['kinesis:two', 'logDelivery.kinesis.shards'],
    ['kinesis:', 'logDelivery.kinesis.shards'],
    ['lambda', 'logDelivery'],
  ])('rejects TRAINKEEPER_DEPLOY_LOG_DELIVERY=%s at %s', (value, path) => {
    const issues = issuesOf(() => stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: value }, eks()));
    expect(issues.map((i) => i.path)).toEqual([path]);
  });

  it('says what a bad mode should be', () => {
    expect(() => stageConfig('s', { TRAINKEEPER_DEPLOY_LOG_DELIVERY: 'lambda' }, eks())).toThrow(
      /logDelivery: expected "direct" or \{kinesis: /,
    );
  });
});

describe('stageRegion', () => {
  it.each<[string, Record<string, string>, string | undefined]>([
    ['ci', {}, 'us-west-2'],
    ['nowhere', {}, undefined],
    ['nowhere', EKS_ENV, 'eu-west-1'],
  ])('gives stage %s with %j the region %s, never throwing for a bad configuration', (stage, env, region) => {
    expect(stageRegion(stage, env)).toBe(region);
  });
});
