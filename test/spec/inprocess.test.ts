import { describe, expect, it } from 'vitest';
import { parseJobManifest } from '../../core/spec/parse.ts';

/** A valid manifest whose container runs `command`, with `spec.trainkeeper` as given. */
const manifest = (trainkeeper: unknown, command = ['hyperpodrun', 'train.py']) => ({
  apiVersion: 'sagemaker.amazonaws.com/v1',
  kind: 'HyperPodPyTorchJob',
  metadata: { name: 'job' },
  spec: {
    replicaSpecs: [
      { name: 'pods', replicas: 2, template: { spec: { containers: [{ name: 'pytorch', command }] } } },
    ],
    ...(trainkeeper === undefined ? {} : { trainkeeper }),
  },
});

describe('spec.trainkeeper.inProcessRestart', () => {
  it('is off unless given: absent from the normalized spec', () => {
    const result = parseJobManifest(manifest(undefined));
    expect(result.ok && result.spec.trainkeeper.inProcessRestart).toBe(undefined);
  });

  it.each([true, false])('keeps %s', (value) => {
    const result = parseJobManifest(
      manifest({ inProcessRestart: value }, ['hyperpodrun', '--inprocess-restart']),
    );
    expect(result).toMatchObject({ ok: true, warnings: [] });
    expect(result.ok && result.spec.trainkeeper.inProcessRestart).toBe(value);
  });

  it.each([
    ['yes', 'must be a boolean (true or false), not the string "yes"'],
    [1, 'must be a boolean (true or false), not number 1'],
  ])('refuses %j with a clear error', (value, message) => {
    const result = parseJobManifest(manifest({ inProcessRestart: value }));
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.errors).toEqual([{ path: 'spec.trainkeeper.inProcessRestart', message }]);
  });

  it('warns when no container passes --inprocess-restart to the agent', () => {
    const result = parseJobManifest(manifest({ inProcessRestart: true }));
    expect(result.ok && result.warnings).toEqual([
      {
        path: 'spec.trainkeeper.inProcessRestart',
        message: expect.stringContaining('no container command or args passes --inprocess-restart'),
      },
    ]);
  });

  it.each([
    [['trainkeeper-agent', '--inprocess-restart', '--inprocess-timeout', '30', 'train.py']],
    [['bash', '-c', 'exec hyperpodrun --nproc-per-node 2 --inprocess-restart train.py']],
  ])('does not warn when the command passes the flag: %j', (command) => {
    const result = parseJobManifest(manifest({ inProcessRestart: true }, command));
    expect(result).toMatchObject({ ok: true, warnings: [] });
  });
});
