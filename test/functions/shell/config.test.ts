import { describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../../core/errors.ts';
import { isNamespaceAllowed, loadConfig } from '../../../functions/shell/config.ts';
import { lambdaDeadline, lambdaHandler } from '../../../functions/shell/deps.ts';

describe('loadConfig', () => {
  it('reads a HyperPod deployment with defaults for the optional settings', () => {
    const config = loadConfig({
      TRAINKEEPER_TABLE: 't',
      AWS_REGION: 'us-west-2',
      TRAINKEEPER_CLUSTER_KIND: 'hyperpod',
      TRAINKEEPER_CLUSTER_NAME: 'hp',
      TRAINKEEPER_ALLOWED_NAMESPACES: 'a, b',
    });
    expect(config).toMatchObject({
      mode: 'aws',
      tableName: 't',
      region: 'us-west-2',
      cluster: { kind: 'hyperpod', name: 'hp' },
      allowedNamespaces: ['a', 'b'],
      podSecurityLevel: 'baseline',
    });
  });

  it('defaults a local deployment to the local cluster at the given endpoint', () => {
    const config = loadConfig({
      TRAINKEEPER_MODE: 'local',
      TRAINKEEPER_TABLE: 't',
      TRAINKEEPER_KUBE_ENDPOINT: 'https://127.0.0.1:6443',
    });
    expect(config.cluster).toEqual({ kind: 'local', endpoint: 'https://127.0.0.1:6443' });
  });

  it('fails fast with a validation error naming each invalid variable', () => {
    let error: unknown;
    try {
      loadConfig({ TRAINKEEPER_CLUSTER_KIND: 'eks', TRAINKEEPER_POD_SECURITY: 'lax' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const paths = (error as ValidationError).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['TRAINKEEPER_POD_SECURITY', 'TRAINKEEPER_TABLE']);
  });

  it('reads the agent fan-out limit and the time margin, with defaults', () => {
    const env = {
      TRAINKEEPER_MODE: 'local',
      TRAINKEEPER_TABLE: 't',
      TRAINKEEPER_KUBE_ENDPOINT: 'https://127.0.0.1:1',
    };
    expect(loadConfig(env)).toMatchObject({ agentConcurrency: 64, actMarginMs: 10_000 });
    expect(
      loadConfig({ ...env, TRAINKEEPER_AGENT_CONCURRENCY: '256', TRAINKEEPER_ACT_MARGIN_SECONDS: '2.5' }),
    ).toMatchObject({ agentConcurrency: 256, actMarginMs: 2_500 });
  });

  it.each([
    ['TRAINKEEPER_AGENT_CONCURRENCY', 'lots', 'must be a whole number from 1 to 1024'],
    ['TRAINKEEPER_AGENT_CONCURRENCY', '0', 'must be a whole number from 1 to 1024'],
    ['TRAINKEEPER_AGENT_CONCURRENCY', '1.5', 'must be a whole number from 1 to 1024'],
    ['TRAINKEEPER_AGENT_CONCURRENCY', '5000', 'must be a whole number from 1 to 1024'],
    ['TRAINKEEPER_ACT_MARGIN_SECONDS', '-1', 'must be a number of seconds from 0 to 900'],
    ['TRAINKEEPER_ACT_MARGIN_SECONDS', 'soon', 'must be a number of seconds from 0 to 900'],
  ])('refuses %s=%s: %s', (name, value, message) => {
    expect(() =>
      loadConfig({
        TRAINKEEPER_MODE: 'local',
        TRAINKEEPER_TABLE: 't',
        TRAINKEEPER_KUBE_ENDPOINT: 'https://127.0.0.1:1',
        [name]: value,
      }),
    ).toThrow(`${name}: ${message}`);
  });

  it.each([
    [['default'], 'default', true],
    [['default'], 'other', false],
    [['*'], 'anything', true],
  ])('with allowed namespaces %j, namespace %s is allowed: %s', (allowed, ns, expected) => {
    expect(isNamespaceAllowed({ allowedNamespaces: allowed }, ns)).toBe(expected);
  });
});

describe('lambdaHandler', () => {
  it('fails the first invocation with every bad variable named, and tries again on the next', async () => {
    vi.stubEnv('TRAINKEEPER_TABLE', '');
    vi.stubEnv('TRAINKEEPER_MODE', 'aws');
    vi.stubEnv('TRAINKEEPER_POD_SECURITY', 'lax');
    try {
      let built = 0;
      const handler = lambdaHandler(() => {
        built++;
        return async () => 'ok';
      });
      await expect(handler({})).rejects.toThrow(
        /TRAINKEEPER_TABLE.*TRAINKEEPER_POD_SECURITY|TRAINKEEPER_POD_SECURITY.*TRAINKEEPER_TABLE/,
      );
      await expect(handler({})).rejects.toBeInstanceOf(ValidationError);
      expect(built).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('gives each invocation its own Lambda context as the deadline port, and no limit outside one', async () => {
    vi.stubEnv('TRAINKEEPER_MODE', 'local');
    vi.stubEnv('TRAINKEEPER_TABLE', 't');
    vi.stubEnv('TRAINKEEPER_KUBE_ENDPOINT', 'https://127.0.0.1:1');
    try {
      const handler = lambdaHandler((deps) => async (event: { waitMs: number }) => {
        await new Promise((r) => setTimeout(r, event.waitMs));
        return deps.deadline?.remainingMs();
      });
      const context = (ms: number) => ({ getRemainingTimeInMillis: () => ms });
      // Interleaved: each sees its own context across its awaits.
      const [a, b] = await Promise.all([
        handler({ waitMs: 20 }, context(1_000)),
        handler({ waitMs: 1 }, context(2_000)),
      ]);
      expect([a, b]).toEqual([1_000, 2_000]);
      expect(await handler({ waitMs: 0 })).toBe(Number.POSITIVE_INFINITY);
      expect(lambdaDeadline.remainingMs()).toBe(Number.POSITIVE_INFINITY);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
