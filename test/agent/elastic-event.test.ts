/**
 * The elastic event end to end through real agent processes: HyperPod's training-side API
 * (`hyperpod_elastic_agent.elastic_event_handler.elastic_event_detected`) served by the agent's shim to
 * a real Python script, the language-neutral file, the optional signal, and `POST /elastic-event`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentProc, cleanup, startBody, stopAll, tempDir, until } from './harness.ts';

afterEach(stopAll);
afterAll(cleanup);

/** A training loop as HyperPod documents it: poll the elastic event each step, checkpoint and exit. */
const HYPERPOD_SCRIPT = `
import sys, time
from hyperpod_elastic_agent.elastic_event_handler import elastic_event_detected
import hyperpod_elastic_agent
print("module", hyperpod_elastic_agent.__file__, flush=True)
step = 0
while True:
    step += 1
    print("step", step, flush=True)
    if elastic_event_detected():
        print("elastic event at step", step, "- checkpoint and exit", flush=True)
        sys.exit(0)
    time.sleep(0.05)
`;

const script = (name: string, body: string, dir = tempDir()): string => {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body, { mode: 0o755 });
  return path;
};

const lineWith = (a: AgentProc, text: string) => a.lines.some((l) => l.includes(text));

describe('POST /elastic-event', () => {
  it('makes elastic_event_detected() true in a HyperPod script without the package installed; the workers exit 0 and the agent reports COMPLETED', async () => {
    const a = await AgentProc.start([
      '--nproc-per-node',
      '2',
      '--heartbeat-interval',
      '0',
      script('train.py', HYPERPOD_SCRIPT),
    ]);
    expect((await a.call('/start', startBody(2))).code).toBe(200);
    await until(() => a.lines.filter((l) => /step 3$/.test(l)).length === 2, 'both workers at step 3');
    expect(lineWith(a, 'elastic event at step')).toBe(false);

    const r = await a.call('/elastic-event', { nnodes: 3, faultCount: 2, reason: 'CapacityAvailable' });
    expect(r.code).toBe(200);
    await until(
      () => a.lines.filter((l) => l.includes('elastic event at step')).length === 2,
      'both workers saw it',
    );
    await until(() => a.records().some((x) => x.state === 'COMPLETED'), 'COMPLETED');
    const exits = a.records().filter((x) => x.kind === 'worker-exit');
    expect(exits.map((x) => (x.kind === 'worker-exit' ? x.exitCode : undefined))).toEqual([0, 0]);
    expect((await a.status()).status).toBe('completed');
    // The module came from the agent's shim, not an installed package.
    expect(a.lines.find((l) => l.includes('module'))).toMatch(/python\/hyperpod_elastic_agent\/__init__\.py/);
  });

  it('is a no-op for another generation than the one the workers run', async () => {
    const a = await AgentProc.start([
      '--nproc-per-node',
      '1',
      '--heartbeat-interval',
      '0',
      script('train.py', HYPERPOD_SCRIPT),
    ]);
    await a.call('/start', startBody(4));
    await until(() => lineWith(a, 'step 2'), 'step 2');
    const r = await a.call('/elastic-event', { nnodes: 2, faultCount: 3 });
    expect(r.code).toBe(200);
    expect(r.body.status).toBe('running');
    const seen = a.lines.filter((l) => /step \d+$/.test(l)).length;
    await until(() => a.lines.filter((l) => /step \d+$/.test(l)).length >= seen + 5, 'five more steps');
    expect(lineWith(a, 'elastic event at step')).toBe(false);
    expect((await a.status()).status).toBe('running');
  });

  it('gives non-Python launchers the event as a file named by TRAINKEEPER_ELASTIC_EVENT_FILE, fresh for each generation', async () => {
    const sh = script(
      'launch.sh',
      `#!/bin/sh
echo "event file $TRAINKEEPER_ELASTIC_EVENT_FILE"
while [ ! -e "$TRAINKEEPER_ELASTIC_EVENT_FILE" ]; do sleep 0.05; done
echo "saw $(cat "$TRAINKEEPER_ELASTIC_EVENT_FILE")"
exit 0
`,
    );
    const a = await AgentProc.start(['--nproc-per-node', '1', '--heartbeat-interval', '0', sh]);
    await a.call('/start', startBody(1));
    await until(() => lineWith(a, 'event file'), 'the launcher up');
    await a.call('/elastic-event', { nnodes: 4, faultCount: 1 });
    await until(() => lineWith(a, 'saw '), 'the launcher saw the file');
    expect(a.lines.find((l) => l.includes('saw '))).toContain('"nnodes":4');
    await until(() => a.records().some((x) => x.state === 'COMPLETED'), 'COMPLETED');

    // The next generation starts without the event.
    await a.call('/stop', { timeout: 5 });
    await a.call('/start', startBody(2));
    await until(() => a.lines.filter((l) => l.includes('event file')).length === 2, 'second run up');
    const files = a.lines.filter((l) => l.includes('event file')).map((l) => l.split('event file ')[1]);
    expect(files[0]).not.toBe(files[1]);
    expect((await a.status()).status).toBe('running');
  });

  it('also signals the workers when --elastic-event-signal is given', async () => {
    const sh = script(
      'trap.sh',
      `#!/bin/sh
trap 'echo got USR2; exit 0' USR2
echo ready
while true; do sleep 0.05; done
`,
    );
    const a = await AgentProc.start([
      '--nproc-per-node',
      '1',
      '--heartbeat-interval',
      '0',
      '--elastic-event-signal',
      'USR2',
      sh,
    ]);
    await a.call('/start', startBody(0));
    await until(() => lineWith(a, 'ready'), 'the worker up');
    await a.call('/elastic-event', { nnodes: 2, faultCount: 0 });
    await until(() => lineWith(a, 'got USR2'), 'the signal');
  });

  it('leaves an installed hyperpod_elastic_agent package alone', async () => {
    const site = tempDir();
    script('hyperpod_elastic_agent/__init__.py', '', site);
    script(
      'hyperpod_elastic_agent/elastic_event_handler.py',
      'def elastic_event_detected():\n    return False\n',
      site,
    );
    const a = await AgentProc.start(
      ['--nproc-per-node', '1', '--heartbeat-interval', '0', script('train.py', HYPERPOD_SCRIPT)],
      { PYTHONPATH: site },
    );
    await a.call('/start', startBody(0));
    await until(() => lineWith(a, 'module'), 'the script up');
    expect(a.lines.find((l) => l.includes('module'))).toContain(join(site, 'hyperpod_elastic_agent'));
  });

  it('answers an invalid body with 422 and FastAPI-style details', async () => {
    const a = await AgentProc.start([
      '--nproc-per-node',
      '1',
      '--heartbeat-interval',
      '0',
      script('train.py', HYPERPOD_SCRIPT),
    ]);
    const r = await a.call('/elastic-event', { faultCount: 1 });
    expect(r.code).toBe(422);
    expect((r.body.detail as { loc: unknown[] }[])[0]?.loc).toEqual(['body', 'nnodes']);
  });
});
