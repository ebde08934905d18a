import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentProc, cleanup, startBody, stopAll, WORKER } from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

const agent = () => AgentProc.start(['--nproc-per-node', '1', '--heartbeat-interval', '0', WORKER, 'hang']);

describe('/stop guarded by below_generation (a stale StopAgents acted on after a later start)', () => {
  it.each([
    { running: 3, below: 3, stays: true, what: 'the run of that very generation keeps running' },
    { running: 4, below: 3, stays: true, what: 'a run of a later generation keeps running' },
    { running: 2, below: 3, stays: false, what: 'a run of an older generation is stopped to READY' },
  ])('running generation $running, below_generation $below: $what', async ({ running, below, stays }) => {
    const a = await agent();
    expect((await a.call('/start', startBody(running))).code).toBe(200);
    const r = await a.call('/stop', { below_generation: below, timeout: 5 });
    expect(r.code).toBe(200);
    expect(r.body.status).toBe(stays ? 'running' : 'ready');
    expect((await a.status()).status).toBe(stays ? 'running' : 'ready');
  });

  it('a /stop without below_generation stops whatever runs, as HyperPod’s does', async () => {
    const a = await agent();
    await a.call('/start', startBody(5));
    expect((await a.call('/stop', { timeout: 5 })).body.status).toBe('ready');
  });
});
