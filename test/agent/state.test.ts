import { describe, expect, it } from 'vitest';
import {
  ALLOWED_TRANSITIONS,
  canTransition,
  exitCodeForSignal,
  initialGroup,
  nextStep,
  type Observation,
  type Step,
  type WorkerGroup,
  type WorkerSpec,
} from '../../agent/state.ts';
import { AGENT_STATES, type AgentState, type ParsedStartBody } from '../../core/agent-protocol.ts';

const spec: WorkerSpec = {
  nprocPerNode: 2,
  shutdownSignal: 'SIGKILL',
  shutdownTimeout: 15,
  hasPreTrain: false,
  hasPostTrain: false,
  standalone: false,
  maxRestarts: 0,
};
const T = 1_764_000_000_000;
const start = (faultCount: number, extra: Partial<ParsedStartBody> = {}): Observation => ({
  type: 'StartRequested',
  body: { rank: 1, nnodes: 2, faultCount, master_addr: '10.0.0.1', master_port: 29500, ...extra },
  at: T,
});
const exit = (
  generation: number,
  localRank: number,
  exitCode: number | null,
  signal: string | null = null,
): Observation => ({
  type: 'WorkerExited',
  generation,
  localRank,
  exitCode,
  signal,
  at: T,
});
const gone = (generation: number): Observation => ({ type: 'AllWorkersGone', generation, at: T });
const stop: Observation = { type: 'StopRequested', graceful: false, at: T };
const shutdown: Observation = { type: 'ShutdownRequested', at: T };
const sigterm: Observation = { type: 'SignalReceived', signal: 'SIGTERM', signalNumber: 15, at: T };

/** Runs observations from a fresh group; returns the final group and every step's output. */
function run(obs: Observation[], s: Partial<WorkerSpec> = {}) {
  let g: WorkerGroup = initialGroup({ ...spec, ...s }, T);
  const steps = obs.map((o) => {
    const step = nextStep(g, o);
    g = step.group;
    return step;
  });
  return { g, steps, last: steps[steps.length - 1]! };
}

describe('the agent transition table', () => {
  it('matches HyperPod process-level-restart transitions, plus STOPPING → SHUTDOWN for signals and the in-process tier', () => {
    expect(ALLOWED_TRANSITIONS).toEqual({
      INIT: ['READY', 'SHUTDOWN'],
      READY: ['RUNNING', 'SHUTDOWN'],
      RUNNING: ['COMPLETED', 'FAULTED', 'STOPPING', 'SHUTDOWN', 'RUNNING'],
      FAULTED: ['STOPPING', 'SHUTDOWN', 'RUNNING', 'FAULTED'],
      STOPPING: ['READY', 'SHUTDOWN'],
      COMPLETED: ['SHUTDOWN', 'STOPPING'],
      SHUTDOWN: [],
    });
    for (const s of AGENT_STATES) expect(canTransition('SHUTDOWN', s as AgentState)).toBe(false);
  });
});

describe('nextStep', () => {
  it.each<[string, Observation[], AgentState, string | undefined]>([
    ['a fresh agent waits in READY', [], 'READY', undefined],
    ['/start moves READY to RUNNING', [start(0)], 'RUNNING', 'Running'],
    ['a spare /start stays READY', [start(0, { spare: true })], 'READY', undefined],
    ['a crash of one worker faults the group', [start(0), exit(0, 1, 3)], 'FAULTED', 'WorkerCrash'],
    [
      'a worker killed by a signal faults the group',
      [start(0), exit(0, 0, null, 'SIGSEGV')],
      'FAULTED',
      'WorkerCrash',
    ],
    [
      'all workers exiting 0 complete the group',
      [start(0), exit(0, 0, 0), exit(0, 1, 0)],
      'COMPLETED',
      'Completed',
    ],
    ['one worker exiting 0 keeps the group running', [start(0), exit(0, 0, 0)], 'RUNNING', 'Running'],
    ['/stop moves RUNNING to STOPPING', [start(0), stop], 'STOPPING', 'Stopping'],
    ['/stop then all workers gone is READY', [start(0), stop, gone(0)], 'READY', 'Stopped'],
    [
      '/stop on a faulted group is READY once the workers are gone',
      [start(0), exit(0, 1, 3), stop, gone(0)],
      'READY',
      'Stopped',
    ],
    [
      'a late exit of an old generation changes nothing',
      [start(0), stop, gone(0), start(1), exit(0, 0, 9)],
      'RUNNING',
      'Running',
    ],
    ['/shutdown from RUNNING is SHUTDOWN', [start(0), shutdown], 'SHUTDOWN', 'Shutdown'],
    ['a signal in READY is SHUTDOWN', [sigterm], 'SHUTDOWN', 'Signal'],
    [
      'worker exits while stopping are not faults',
      [start(0), stop, exit(0, 0, null, 'SIGKILL')],
      'STOPPING',
      'Stopping',
    ],
    [
      '/stop in COMPLETED goes back to READY',
      [start(0), exit(0, 0, 0), exit(0, 1, 0), stop, gone(0)],
      'READY',
      'Stopped',
    ],
  ])('%s', (_name, obs, state, reason) => {
    const { g, steps } = run(obs);
    expect(g.state).toBe(state);
    expect(g.reason).toBe(reason);
    for (const step of steps)
      for (const t of step.transitions) expect(canTransition(t.from, t.to)).toBe(true);
  });

  it('names the local rank, global rank, exit code and error file message of a crash', () => {
    const { g } = run([
      start(0),
      {
        ...exit(0, 1, 1),
        error: { message: { message: 'RuntimeError: CUDA out of memory' } },
      } as Observation,
    ]);
    expect(g.message).toBe(
      'local rank 1 (global rank 3) exited with code 1: RuntimeError: CUDA out of memory',
    );
  });

  it('stops the rest of the group with the configured signal and grace after a crash', () => {
    const { last } = run([start(0), exit(0, 1, 3)], { shutdownSignal: 'SIGTERM', shutdownTimeout: 7 });
    expect(last.actions).toEqual([
      { type: 'StopWorkers', generation: 0, signal: 'SIGTERM', graceSeconds: 7 },
    ]);
  });

  it.each<[string, Observation, string, number]>([
    ['a plain /stop uses the configured signal', stop, 'SIGKILL', 15],
    ['a graceful /stop uses SIGTERM', { type: 'StopRequested', graceful: true, at: T }, 'SIGTERM', 15],
    [
      'a /stop timeout replaces the grace period',
      { type: 'StopRequested', graceful: true, timeout: 2, at: T },
      'SIGTERM',
      2,
    ],
  ])('%s', (_n, obs, signal, grace) => {
    const { last } = run([start(0), obs]);
    expect(last.actions).toEqual([{ type: 'StopWorkers', generation: 0, signal, graceSeconds: grace }]);
  });

  it('spawns the workers with the rendezvous of the /start', () => {
    const { last, g } = run([
      start(4, {
        rankIps: [
          { rank: 0, ip: '10.0.0.1' },
          { rank: 1, ip: '10.0.0.2' },
        ],
      }),
    ]);
    expect(last.actions).toEqual([
      {
        type: 'WriteRankIps',
        rankIps: [
          { rank: 0, ip: '10.0.0.1' },
          { rank: 1, ip: '10.0.0.2' },
        ],
      },
      {
        type: 'SpawnWorkers',
        generation: 4,
        rendezvous: {
          rank: 1,
          nnodes: 2,
          masterAddr: '10.0.0.1',
          masterPort: 29500,
          rankIps: [
            { rank: 0, ip: '10.0.0.1' },
            { rank: 1, ip: '10.0.0.2' },
          ],
        },
      },
    ]);
    expect(g.generation).toBe(4);
    expect(g.workers.map((w) => w.state)).toEqual(['HEALTHY', 'HEALTHY']);
  });

  it.each<[string, Observation[], boolean, string | undefined]>([
    ['a repeated /start of the running generation is a no-op', [start(2), start(2)], true, undefined],
    ['a /start of another generation while running is refused', [start(2), start(3)], false, 'POST /stop'],
    ['a stale /start after a stop is refused', [start(2), stop, gone(2), start(1)], false, 'stale'],
    ['a /start while stopping is refused', [start(2), stop, start(3)], false, 'stopping'],
    ['a /start for the faulted generation is a no-op', [start(2), exit(2, 0, 1), start(2)], true, undefined],
  ])('%s', (_n, obs, ok, detail) => {
    const { last } = run(obs);
    expect(last.answer?.ok).toBe(ok);
    if (detail) expect(last.answer).toMatchObject({ detail: expect.stringContaining(detail) });
    if (ok) expect(last.actions).toEqual([]);
  });

  it('runs the pre-train script before the workers and faults when it fails', () => {
    const s = { hasPreTrain: true };
    const first = run([start(0)], s).last;
    expect(first.actions).toEqual([{ type: 'RunScript', script: 'pre-train', generation: 0 }]);
    const ok = run(
      [
        start(0),
        { type: 'ScriptExited', script: 'pre-train', generation: 0, exitCode: 0, signal: null, at: T },
      ],
      s,
    );
    expect(ok.last.actions[0]).toMatchObject({ type: 'SpawnWorkers' });
    const bad = run(
      [
        start(0),
        { type: 'ScriptExited', script: 'pre-train', generation: 0, exitCode: 2, signal: null, at: T },
      ],
      s,
    );
    expect(bad.g).toMatchObject({
      state: 'FAULTED',
      reason: 'PreTrainScriptFailed',
      message: 'pre-train script exited with code 2',
    });
  });

  it('runs the post-train script after all workers succeed and completes when it succeeds', () => {
    const s = { hasPostTrain: true };
    const r = run([start(0), exit(0, 0, 0), exit(0, 1, 0)], s);
    expect(r.g.state).toBe('RUNNING');
    expect(r.last.actions).toEqual([{ type: 'RunScript', script: 'post-train', generation: 0 }]);
    const done = run(
      [
        start(0),
        exit(0, 0, 0),
        exit(0, 1, 0),
        { type: 'ScriptExited', script: 'post-train', generation: 0, exitCode: 0, signal: null, at: T },
      ],
      s,
    );
    expect(done.g.state).toBe('COMPLETED');
  });

  it('restarts locally in standalone mode while --max-restarts allows, then exits 1', () => {
    const s = { standalone: true, maxRestarts: 1 };
    const once = run([start(0), exit(0, 0, 1), gone(0)], s);
    expect(once.g).toMatchObject({ state: 'RUNNING', generation: 1, restartsUsed: 1 });
    expect(once.last.transitions.map((t) => t.to)).toEqual(['STOPPING', 'READY', 'RUNNING']);
    const twice = run([start(0), exit(0, 0, 1), gone(0), exit(1, 1, 1), gone(1)], s);
    expect(twice.g.state).toBe('FAULTED');
    expect(twice.last.actions).toEqual([{ type: 'Exit', code: 1 }]);
  });

  it('exits 0 when a standalone run completes', () => {
    const { last } = run([start(0), exit(0, 0, 0), exit(0, 1, 0)], { standalone: true });
    expect(last.actions).toEqual([{ type: 'Exit', code: 0 }]);
  });

  it.each<[string, Observation[], number]>([
    ['SIGTERM while running exits 143 after the workers are gone', [start(0), sigterm, gone(0)], 143],
    ['SIGTERM after completion exits 0', [start(0), exit(0, 0, 0), exit(0, 1, 0), sigterm, gone(0)], 0],
    ['/shutdown exits 0 after the workers are gone', [start(0), shutdown, gone(0)], 0],
  ])('%s', (_n, obs, code) => {
    expect(run(obs).last.actions).toEqual([{ type: 'Exit', code }]);
  });

  it('forwards the received signal to the workers', () => {
    const { last } = run([start(0), sigterm]);
    expect(last.actions).toEqual([
      { type: 'StopWorkers', generation: 0, signal: 'SIGTERM', graceSeconds: 15 },
    ]);
  });

  it.each([
    ['COMPLETED', 3, 0],
    ['RUNNING', 15, 143],
    ['READY', 2, 130],
  ] as const)('a signal %s with number %i exits %i', (state, n, code) => {
    expect(exitCodeForSignal(state, n)).toBe(code);
  });

  it('records the ISO time of each state entered', () => {
    const { g } = run([start(0), { ...stop, at: T + 1000 }]);
    expect(g.transitions).toEqual({
      READY: new Date(T).toISOString(),
      RUNNING: new Date(T).toISOString(),
      STOPPING: new Date(T + 1000).toISOString(),
    });
  });

  it('keeps progress from /start and /update', () => {
    const { g } = run([
      start(0, { progress: { ckpt: { progressCount: 10 } } }),
      {
        type: 'UpdateRequested',
        body: { rank: 1, nnodes: 2, faultCount: 0, master_addr: 'x', master_port: 1 },
        progress: { ckpt: { progressCount: 20 } },
        at: T,
      },
    ]);
    expect(g.progress).toEqual({ ckpt: { progressCount: 20 } });
  });
});

const ipr = (faultCount: number, extra: Partial<ParsedStartBody> = {}): Observation => ({
  type: 'InProcessRestartRequested',
  body: { rank: 1, nnodes: 2, faultCount, master_addr: '10.0.0.1', master_port: 29600, ...extra },
  at: T,
});
const reentered = (generation: number, at = T): Observation => ({ type: 'WorkersReentered', generation, at });
const timedOut = (generation: number): Observation => ({
  type: 'InProcessTimedOut',
  generation,
  at: T + 5000,
});
const IPR: Partial<WorkerSpec> = { inProcessRestart: true, inProcessTimeout: 5 };

describe('nextStep, in-process restart', () => {
  it('a worker crash faults the group without stopping the survivors', () => {
    const { g, last } = run([start(0), exit(0, 1, 9)], IPR);
    expect(g).toMatchObject({ state: 'FAULTED', reason: 'WorkerCrash', phase: 'workers' });
    expect(last.actions).toEqual([]);
    expect(g.workers.map((w) => w.state)).toEqual(['HEALTHY', 'FAILED']);
  });

  it('publishes the rendezvous, respawns only the dead local rank and watches the acks until the deadline', () => {
    const { g, last } = run([start(0), exit(0, 1, 9), ipr(1)], IPR);
    const rendezvous = { rank: 1, nnodes: 2, masterAddr: '10.0.0.1', masterPort: 29600 };
    expect(last.actions).toEqual([
      { type: 'PublishRendezvous', generation: 1, rendezvous },
      { type: 'SpawnWorkers', generation: 1, rendezvous, localRanks: [1] },
      { type: 'AwaitReentry', generation: 1, deadline: T + 5000 },
    ]);
    expect(last.answer).toEqual({ ok: true });
    expect(g).toMatchObject({ state: 'FAULTED', generation: 0, restartMode: 'in_process_restart' });
  });

  it.each<[string, Observation[], Partial<WorkerGroup>]>([
    [
      'the faulted agent goes RUNNING at the new generation once its workers re-entered',
      [start(0), exit(0, 1, 9), ipr(1), reentered(1)],
      { state: 'RUNNING', reason: 'InProcessRestart', generation: 1, inprocessRestarts: 1 },
    ],
    [
      'the peer agent whose workers all survived goes RUNNING → RUNNING at the new generation',
      [start(0), ipr(1), reentered(1)],
      { state: 'RUNNING', reason: 'InProcessRestart', generation: 1, inprocessRestarts: 1 },
    ],
    [
      'workers that do not re-enter in time fault the agent at the new generation',
      [start(0), exit(0, 1, 9), ipr(1), timedOut(1)],
      { state: 'FAULTED', reason: 'InProcessRestartTimeout', generation: 1, phase: 'stopping' },
    ],
    [
      'a worker exit during the restart gives it up at once',
      [start(0), ipr(1), exit(0, 0, null, 'SIGKILL')],
      { state: 'FAULTED', reason: 'InProcessRestartTimeout', generation: 1, phase: 'stopping' },
    ],
    [
      'a late timeout after the workers re-entered changes nothing',
      [start(0), exit(0, 1, 9), ipr(1), reentered(1), timedOut(1)],
      { state: 'RUNNING', reason: 'InProcessRestart', generation: 1 },
    ],
    [
      'a survivor (started at generation 0) that crashes at generation 1 still faults the group',
      [start(0), exit(0, 1, 9), ipr(1), reentered(1), exit(0, 0, 3)],
      { state: 'FAULTED', reason: 'WorkerCrash', generation: 1 },
    ],
    [
      'the old process of a replaced slot exiting late changes nothing',
      [start(0), exit(0, 1, 9), ipr(1), reentered(1), exit(0, 1, 9)],
      { state: 'RUNNING', generation: 1 },
    ],
    [
      'a /stop during the restart ends it: the next run completes normally',
      [start(0), ipr(1), stop, gone(0), start(2), exit(2, 0, 0), exit(2, 1, 0)],
      { state: 'COMPLETED', generation: 2 },
    ],
    [
      'without --inprocess-restart a faulted agent restarts at process level',
      [start(0), exit(0, 1, 9), ipr(1)],
      {
        state: 'STOPPING',
        afterStop: { start: (ipr(1) as { body: ParsedStartBody }).body },
        restartMode: 'process_level_restart',
      },
    ],
  ])('%s', (_name, obs, expected) => {
    const spec = _name.startsWith('without') ? {} : IPR;
    const { g, steps } = run(obs, spec);
    expect(g).toMatchObject(expected);
    for (const step of steps)
      for (const t of step.transitions) expect(canTransition(t.from, t.to)).toBe(true);
  });

  it('without --inprocess-restart, the stop in flight is followed by a start at the new generation', () => {
    const { g, last } = run([start(0), exit(0, 1, 9), ipr(1), gone(0)]);
    expect(g).toMatchObject({ state: 'RUNNING', generation: 1, restartMode: 'process_level_restart' });
    expect(last.actions).toEqual([
      {
        type: 'SpawnWorkers',
        generation: 1,
        rendezvous: { rank: 1, nnodes: 2, masterAddr: '10.0.0.1', masterPort: 29600 },
      },
    ]);
  });

  it.each<[string, Observation[], Step['answer']]>([
    ['a replay while the restart is in flight', [start(0), ipr(1), ipr(1)], { ok: true }],
    ['a replay after it completed', [start(0), ipr(1), reentered(1), ipr(1)], { ok: true }],
    [
      'a newer restart while one is in flight',
      [start(0), ipr(1), ipr(2)],
      {
        ok: false,
        code: 409,
        detail: 'an in-process restart to generation 1 is in progress; generation 2 must wait for it',
      },
    ],
    [
      'a stale restart in READY',
      [start(3), stop, gone(3), ipr(2)],
      { ok: false, code: 409, detail: 'stale /inprocess-restart: faultCount 2 is older than generation 3' },
    ],
  ])('answers %s', (_name, obs, answer) => {
    const { last } = run(obs, IPR);
    expect(last.answer).toEqual(answer);
    if (answer?.ok) expect(last.actions).toEqual([]);
  });

  it('an /inprocess-restart to an agent without a run starts its workers like /start', () => {
    const { g } = run([ipr(0)], IPR);
    expect(g).toMatchObject({ state: 'RUNNING', generation: 0, phase: 'workers' });
  });
});
