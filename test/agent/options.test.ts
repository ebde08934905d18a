import { describe, expect, it } from 'vitest';
import { workerEnv } from '../../agent/env.ts';
import { LineSplitter } from '../../agent/lines.ts';
import { DEFAULT_RANK_IP_FILE, parseAgentArgs, resolveNproc, UsageError } from '../../agent/options.ts';

describe('parseAgentArgs', () => {
  it('applies HyperPod defaults when only the script is given', () => {
    expect(parseAgentArgs(['train.py'])).toMatchObject({
      nprocPerNode: 1,
      shutdownSignal: 'SIGKILL',
      shutdownTimeout: 15,
      serverHost: '0.0.0.0',
      serverPort: 8080,
      heartbeatInterval: 10,
      maxRestarts: 0,
      standalone: false,
      inProcessRestart: false,
      inProcessTimeout: 60,
      rankIpFile: DEFAULT_RANK_IP_FILE,
      script: 'train.py',
      scriptArgs: [],
    });
  });

  it.each<[string, string[], Record<string, unknown>]>([
    ['dashes and a separate value', ['--nproc-per-node', '4', 't.py'], { nprocPerNode: 4 }],
    ['underscores', ['--nproc_per_node', '8', 't.py'], { nprocPerNode: 8 }],
    ['--flag=value', ['--nproc_per_node=auto', 't.py'], { nprocPerNode: 'auto' }],
    ['cpu', ['--nproc-per-node=cpu', 't.py'], { nprocPerNode: 'cpu' }],
    [
      'tee, redirects and the log dir',
      ['--tee', '3', '--redirects=3', '--log_dir', '/l', 't.py'],
      { tee: 3, redirects: 3, logDir: '/l' },
    ],
    [
      'the shutdown signal and timeout',
      ['--shutdown-signal', 'SIGTERM', '--shutdown-timeout', '2.5', 't.py'],
      { shutdownSignal: 'SIGTERM', shutdownTimeout: 2.5 },
    ],
    [
      'the server address',
      ['--server-host', '127.0.0.1', '--server-port', '9000', 't.py'],
      { serverHost: '127.0.0.1', serverPort: 9000 },
    ],
    [
      'scripts and their opaque args',
      ['--pre-train-script', 'p.sh', '--pre-train-args', '-a 1', 't.py'],
      { preTrainScript: 'p.sh', preTrainArgs: '-a 1' },
    ],
    [
      'standalone with local restarts',
      ['--standalone', '--max_restarts', '3', 't.py'],
      { standalone: true, maxRestarts: 3 },
    ],
    ['nnodes as N or N:N', ['--nnodes', '2:2', 't.py'], { nnodes: 2 }],
    [
      'in-process restart (HyperPod flags) with its default timeout',
      ['--inprocess-restart', 't.py'],
      { inProcessRestart: true, inProcessTimeout: 60 },
    ],
    [
      'in-process restart with a timeout',
      ['--inprocess_restart', '--inprocess-timeout=2.5', 't.py'],
      { inProcessRestart: true, inProcessTimeout: 2.5, inProcessStandby: false },
    ],
    [
      'a warm standby for in-process restarts',
      ['--inprocess-restart', '--inprocess-standby', 't.py'],
      { inProcessRestart: true, inProcessStandby: true },
    ],
    [
      'script arguments that look like flags',
      ['t.py', '--steps', '5', '--standalone'],
      { script: 't.py', scriptArgs: ['--steps', '5', '--standalone'], standalone: false },
    ],
    ['a -- separator', ['--', '-weird-script', 'x'], { script: '-weird-script', scriptArgs: ['x'] }],
  ])('reads %s', (_n, argv, want) => {
    expect(parseAgentArgs(argv)).toMatchObject(want);
  });

  it.each<[string, string[], string]>([
    [
      'a torchrun flag with a value',
      ['--rdzv_backend', 'c10d', 't.py'],
      'ignoring torchrun flag --rdzv-backend c10d (no effect in trainkeeper-agent)',
    ],
    [
      'a torchrun switch',
      ['--no-python', 't.py'],
      'ignoring torchrun flag --no-python (no effect in trainkeeper-agent)',
    ],
    ['an unknown flag', ['--frobnicate=1', 't.py'], 'ignoring unknown flag --frobnicate=1'],
    [
      'an in-process timeout without in-process restart',
      ['--inprocess-timeout', '5', 't.py'],
      '--inprocess-timeout has no effect without --inprocess-restart',
    ],
    [
      'a warm standby without in-process restart',
      ['--inprocess-standby', 't.py'],
      '--inprocess-standby has no effect without --inprocess-restart',
    ],
  ])('accepts and warns about %s', (_n, argv, warning) => {
    const o = parseAgentArgs(argv);
    expect(o.script).toBe('t.py');
    expect(o.warnings).toEqual([warning]);
  });

  it.each<[string, string[], string]>([
    ['no script', ['--standalone'], 'missing TRAINING_SCRIPT'],
    [
      'a bad nproc',
      ['--nproc-per-node', 'many', 't.py'],
      '--nproc-per-node: expected an integer ≥ 1, got "many"',
    ],
    [
      'a bad signal',
      ['--shutdown-signal', 'SIGHUP', 't.py'],
      '--shutdown-signal: expected SIGTERM or SIGKILL',
    ],
    ['an elastic range', ['--nnodes', '1:4', 't.py'], 'elastic MIN:MAX ranges are not supported'],
    ['a missing value', ['--log-dir'], '--log-dir: missing value'],
    [
      'a zero in-process timeout',
      ['--inprocess-restart', '--inprocess-timeout', '0', 't.py'],
      '--inprocess-timeout: expected a number of seconds > 0, got "0"',
    ],
  ])('rejects %s with a message naming the flag', (_n, argv, msg) => {
    expect(() => parseAgentArgs(argv)).toThrow(UsageError);
    expect(() => parseAgentArgs(argv)).toThrow(msg);
  });
});

describe('resolveNproc', () => {
  it.each<[string | number, number, number, number]>([
    [4, 8, 2, 4],
    ['auto', 8, 2, 8],
    ['auto', 0, 2, 2],
    ['gpu', 4, 2, 4],
    ['cpu', 8, 6, 6],
  ])('%s with %i GPUs and %i CPUs is %i workers', (n, gpus, cpus, want) => {
    expect(resolveNproc(n as 'auto', gpus, cpus)).toBe(want);
  });

  it('refuses gpu on a node without GPUs', () => {
    expect(() => resolveNproc('gpu', 0, 4)).toThrow('no GPU found');
  });
});

describe('workerEnv', () => {
  const base = {
    localRank: 1,
    nproc: 4,
    rendezvous: { rank: 2, nnodes: 3, masterAddr: '10.0.0.9', masterPort: 29501 },
    generation: 5,
    maxRestarts: 0,
    runId: 'job-a',
    errorFile: '/tmp/e.json',
  };

  it('follows the torchrun env contract', () => {
    expect(workerEnv({ ...base, base: { PATH: '/bin' } })).toEqual({
      PATH: '/bin',
      LOCAL_RANK: '1',
      RANK: '9',
      GROUP_RANK: '2',
      ROLE_RANK: '9',
      ROLE_NAME: 'default',
      LOCAL_WORLD_SIZE: '4',
      WORLD_SIZE: '12',
      GROUP_WORLD_SIZE: '3',
      ROLE_WORLD_SIZE: '12',
      MASTER_ADDR: '10.0.0.9',
      MASTER_PORT: '29501',
      JOB_RESTART_COUNT: '5',
      TORCHELASTIC_RESTART_COUNT: '5',
      TORCHELASTIC_MAX_RESTARTS: '0',
      TORCHELASTIC_RUN_ID: 'job-a',
      TORCHELASTIC_USE_AGENT_STORE: 'False',
      TORCHELASTIC_ERROR_FILE: '/tmp/e.json',
      TORCH_NCCL_ASYNC_ERROR_HANDLING: '1',
      PYTHONUNBUFFERED: '1',
      OMP_NUM_THREADS: '1',
    });
  });

  it('keeps the container values of OMP_NUM_THREADS and TORCH_NCCL_ASYNC_ERROR_HANDLING', () => {
    const env = workerEnv({ ...base, base: { OMP_NUM_THREADS: '8', TORCH_NCCL_ASYNC_ERROR_HANDLING: '0' } });
    expect(env).toMatchObject({ OMP_NUM_THREADS: '8', TORCH_NCCL_ASYNC_ERROR_HANDLING: '0' });
  });

  it('leaves OMP_NUM_THREADS unset for a single worker and binds a GPU only when asked', () => {
    const env = workerEnv({ ...base, nproc: 1, localRank: 0, base: {}, gpu: 3 });
    expect(env.OMP_NUM_THREADS).toBeUndefined();
    expect(env.CUDA_VISIBLE_DEVICES).toBe('3');
  });
});

describe('LineSplitter', () => {
  const collect = (max?: number) => {
    const out: string[] = [];
    const s = new LineSplitter('[default0]:', (b) => out.push(b.toString()), max);
    return { s, out };
  };

  it.each<[string, string[], string[]]>([
    ['one whole line', ['a\n'], ['[default0]:a\n']],
    ['several lines in one chunk, emitted together', ['a\nb\n'], ['[default0]:a\n[default0]:b\n']],
    ['a line split over chunks', ['ab', 'c', 'd\n'], ['[default0]:abcd\n']],
    ['an empty line', ['\n'], ['[default0]:\n']],
    ['a trailing partial line waits for more', ['a\nb'], ['[default0]:a\n']],
  ])('handles %s', (_n, chunks, want) => {
    const { s, out } = collect();
    for (const c of chunks) s.push(Buffer.from(c));
    expect(out).toEqual(want);
  });

  it('flushes a final unterminated line', () => {
    const { s, out } = collect();
    s.push(Buffer.from('a\nlast'));
    s.flush();
    s.flush();
    expect(out).toEqual(['[default0]:a\n', '[default0]:last\n']);
  });

  it('splits lines longer than the cap into several prefixed lines', () => {
    const { s, out } = collect(4);
    s.push(Buffer.from('abc'));
    s.push(Buffer.from('defghij\nk\n'));
    expect(out.join('')).toBe('[default0]:abcd\n[default0]:efgh\n[default0]:ij\n[default0]:k\n');
  });
});
