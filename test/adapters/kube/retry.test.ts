import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { mapBounded, valuesOrThrow } from '../../../adapters/kube/concurrency.ts';
import {
  classifyError,
  failureCode,
  isRetryableFailure,
  KubeApiStats,
  translateFailure,
  withRetries,
} from '../../../adapters/kube/retry.ts';
import {
  AlreadyExistsError,
  ForbiddenError,
  NotFoundError,
  PermanentError,
  TransientError,
} from '../../../core/errors.ts';

const apiError = (code: number, headers: Record<string, string> = {}) =>
  new ApiException(
    code,
    `HTTP-Code: ${code}`,
    JSON.stringify({ kind: 'Status', message: `m${code}` }),
    headers,
  );
const netError = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
const fast = { retries: 3, minDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 50 };

describe('classifyError', () => {
  it.each([
    ['a 429 with Retry-After', apiError(429, { 'Retry-After': '1' }), 'http', true, '429'],
    ['a 500', apiError(500), 'http', true, '500'],
    ['a 503', apiError(503), 'http', true, '503'],
    ['a 404', apiError(404), 'http', false, '404'],
    ['a 409', apiError(409), 'http', false, '409'],
    ['a 422', apiError(422), 'http', false, '422'],
    ['a connection reset', netError('ECONNRESET'), 'network', true, 'ECONNRESET'],
    ['a refused connection', netError('ECONNREFUSED'), 'network', true, 'ECONNREFUSED'],
    ['an unknown host', netError('ENOTFOUND'), 'network', false, 'ENOTFOUND'],
    ['a timeout', Object.assign(new Error('t'), { name: 'TimeoutError' }), 'timeout', true, 'timeout'],
    ['a plain error', new Error('x'), 'other', false, 'error'],
  ])('classifies %s', (_, err, kind, retryable, code) => {
    const f = classifyError(err);
    expect(f.kind).toBe(kind);
    expect(isRetryableFailure(f)).toBe(retryable);
    expect(failureCode(f)).toBe(code);
  });

  it('reads the Retry-After seconds and the Status message of an API error', () => {
    expect(classifyError(apiError(429, { 'retry-after': '3' }))).toEqual({
      kind: 'http',
      status: 429,
      retryAfterSeconds: 3,
      message: 'm429',
    });
  });
});

describe('translateFailure', () => {
  it.each([
    [404, NotFoundError],
    [409, AlreadyExistsError],
    [403, ForbiddenError],
    [401, ForbiddenError],
    [422, PermanentError],
    [400, PermanentError],
    [429, TransientError],
    [500, TransientError],
    [504, TransientError],
  ])('turns a final %i into %o', (code, type) => {
    const err = translateFailure('createPod', classifyError(apiError(code)), apiError(code));
    expect(err).toBeInstanceOf(type);
    expect(err.message).toContain(`createPod: ${code}`);
  });
});

describe('withRetries', () => {
  it('retries throttling and server errors, then succeeds, counting every attempt and error', async () => {
    const stats = new KubeApiStats();
    const failures = [apiError(429, { 'Retry-After': '0' }), apiError(500)];
    const result = await withRetries(
      'listPods',
      async () => {
        const f = failures.shift();
        if (f) throw f;
        return 'ok';
      },
      { policy: fast, stats },
    );
    expect(result).toBe('ok');
    expect(stats.calls()).toEqual({ listPods: 3 });
    expect(stats.errors()).toEqual([
      { operation: 'listPods', code: '429', count: 1 },
      { operation: 'listPods', code: '500', count: 1 },
    ]);
  });

  it('gives up after the bounded tries with a TransientError', async () => {
    const stats = new KubeApiStats();
    const run = withRetries(
      'getNode',
      async () => {
        throw apiError(503);
      },
      { policy: fast, stats },
    );
    await expect(run).rejects.toBeInstanceOf(TransientError);
    expect(stats.totalCalls()).toBe(4);
  });

  it('does not retry a client error', async () => {
    const stats = new KubeApiStats();
    const run = withRetries(
      'createPod',
      async () => {
        throw apiError(422);
      },
      { policy: fast, stats },
    );
    await expect(run).rejects.toBeInstanceOf(PermanentError);
    expect(stats.totalCalls()).toBe(1);
  });

  it('honours a caller rule that refuses to retry timeouts', async () => {
    const stats = new KubeApiStats();
    const run = withRetries(
      'agent:stop',
      async () => {
        throw Object.assign(new Error('t'), { name: 'TimeoutError' });
      },
      { policy: fast, stats, retryable: (f) => f.kind !== 'timeout' },
    );
    await expect(run).rejects.toBeInstanceOf(TransientError);
    expect(stats.totalCalls()).toBe(1);
  });
});

describe('mapBounded', () => {
  it('keeps at most the limit in flight, runs every item and keeps input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep(n);
      inFlight--;
      if (n === 0) throw new Error('zero');
      return n * 10;
    });
    expect(peak).toBe(3);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'x'))).toEqual([
      50,
      10,
      40,
      20,
      30,
      'x',
      60,
    ]);
    expect(() => valuesOrThrow(results)).toThrow('zero');
  });
});
