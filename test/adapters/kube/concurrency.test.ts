import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Limiter, mapBounded } from '../../../adapters/kube/concurrency.ts';

describe('Limiter', () => {
  it('keeps one limit across callers that share it, and serves waiters in arrival order', async () => {
    const limiter = new Limiter(3);
    let inFlight = 0;
    let peak = 0;
    const order: string[] = [];
    const job = (name: string, ms: number) =>
      limiter.run(async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        order.push(name);
        await sleep(ms);
        inFlight--;
        return name;
      });
    // Two fan-outs at once, each bounded by 3 on its own: together still at most 3 in flight.
    const [a, b] = await Promise.all([
      mapBounded(['a1', 'a2', 'a3', 'a4'], 3, (n) => job(n, 5)),
      mapBounded(['b1', 'b2', 'b3', 'b4'], 3, (n) => job(n, 5)),
    ]);
    expect(peak).toBe(3);
    expect(a.map((r) => r.status === 'fulfilled' && r.value)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(b.map((r) => r.status === 'fulfilled' && r.value)).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(order.slice(0, 3)).toEqual(['a1', 'a2', 'a3']);
    expect(limiter.inFlight).toBe(0);
  });

  it('frees the slot of a call that throws', async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limiter.run(async () => 'next')).toBe('next');
    expect(limiter.inFlight).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a limit of %s with a clear error', (limit) => {
    expect(() => new Limiter(limit)).toThrow(`Limiter: limit must be a positive integer, got ${limit}`);
  });
});
