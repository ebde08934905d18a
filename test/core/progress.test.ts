import { describe, expect, it } from 'vitest';
import { progressStep } from '../../core/agent-protocol.ts';

describe('progressStep', () => {
  it.each([
    [{ step: 42 }, 42],
    [{ ckpt: { progressData: 's3://b/ckpt-9', progressCount: 9 }, other: { progressCount: '11' } }, 11],
    [{ ckpt: { progressData: 's3://b/ckpt' } }, undefined],
    [undefined, undefined],
  ])('reads the training step of heartbeat progress %j as %s', (progress, step) => {
    expect(progressStep(progress as Record<string, unknown> | undefined)).toBe(step);
  });
});
