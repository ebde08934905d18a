import { describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../../core/errors.ts';
import { isNamespaceAllowed, loadConfig } from '../../../functions/shell/config.ts';
import { lambdaHandler } from '../../../functions/shell/deps.ts';

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
});
