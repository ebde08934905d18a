import { describe, expect, it } from 'vitest';
import { measureRestart } from '../../bench/restart-scale.ts';

describe('measureRestart', () => {
  it('restarts every simulated agent through the adapter and pods/proxy: one /stop and one /start per pod', async () => {
    const m = await measureRestart(8, { latencyMs: 1, concurrency: 3 });
    expect(m.calls).toBe(16);
    expect(m.seconds).toBeGreaterThan(0);
    expect(m.stopSeconds).toBeLessThanOrEqual(m.seconds);
    // Eight /start bodies, each with the 8-entry rank → IP table; without it they are much smaller.
    const bare = await measureRestart(8, { latencyMs: 1, rankIps: false });
    expect(bare.startBytes).toBeGreaterThan(0);
    expect(m.startBytes).toBeGreaterThan(bare.startBytes + 8 * 8 * 20);
  }, 60_000);

  it.each([
    [0, {}, 'measureRestart: pods must be a positive integer, got 0'],
    [2.5, {}, 'measureRestart: pods must be a positive integer, got 2.5'],
    [4, { latencyMs: -1 }, 'measureRestart: latencyMs must be a number >= 0, got -1'],
    [4, { concurrency: 0 }, 'measureRestart: concurrency must be a positive integer, got 0'],
  ])('refuses pods=%s %j with a clear error', async (pods, opts, message) => {
    await expect(measureRestart(pods, opts)).rejects.toThrow(message);
  });
});
