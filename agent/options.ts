/**
 * The agent's command line: torchrun/hyperpodrun compatible for what matters (hyperpod-spec §6).
 *
 * Accepted spellings: `--nproc-per-node 4`, `--nproc_per_node=4`. Everything after the first positional
 * argument (the training script) belongs to the script. Unknown torchrun flags are accepted and ignored
 * with a warning (returned in `warnings`, printed by the caller on stderr). Pure: no env, no I/O.
 */
import { DEFAULT_INPROCESS_TIMEOUT } from './state.ts';

/** Parsed flags; `nprocPerNode` is still symbolic (`auto`/`gpu`/`cpu` are resolved on the node). */
export interface AgentOptions {
  nprocPerNode: number | 'auto' | 'gpu' | 'cpu';
  nnodes?: number;
  tee: number;
  redirects: number;
  logDir?: string;
  shutdownSignal: 'SIGTERM' | 'SIGKILL';
  shutdownTimeout: number;
  serverHost: string;
  serverPort: number;
  preTrainScript?: string;
  preTrainArgs?: string;
  postTrainScript?: string;
  postTrainArgs?: string;
  standalone: boolean;
  maxRestarts: number;
  python?: string;
  heartbeatInterval: number;
  rankIpFile: string;
  /** `--bind-gpus`: give each local rank its own CUDA_VISIBLE_DEVICES (off by default, see README). */
  bindGpus: boolean;
  /**
   * `--elastic-event-signal SIGUSR1|SIGUSR2|SIGTERM|SIGINT`: also signal the workers' process groups on an
   * elastic event (off by default: Python's default SIGUSR1 action kills the process).
   */
  elasticEventSignal?: 'SIGUSR1' | 'SIGUSR2' | 'SIGTERM' | 'SIGINT';
  /**
   * `--inprocess-restart` (HyperPod's flag, off by default): a worker crash keeps the surviving workers
   * alive and `POST /inprocess-restart` restarts in place (agent/README.md, "In-process restart").
   */
  inProcessRestart: boolean;
  /** `--inprocess-timeout S`: seconds the workers have to re-enter before the agent gives up (default 60). */
  inProcessTimeout: number;
  /**
   * `--inprocess-standby` (TrainKeeper extension, off by default; needs `--inprocess-restart`): keep one warm
   * standby worker per node (script run up to `trainkeeper_inprocess.run`, torch imported) that takes over
   * a dead local rank on an in-process restart, so the replacement skips its start-up.
   */
  inProcessStandby: boolean;
  runId?: string;
  script: string;
  scriptArgs: string[];
  warnings: string[];
}

/** HyperPod's rank → IP table location (hyperpod-spec §5). */
export const DEFAULT_RANK_IP_FILE = '/opt/ml/input/config/pod_resourceconfig.json';

/**
 * Defaults: HyperPod's (`--shutdown-signal SIGKILL`, `--shutdown-timeout 15` as in the package source,
 * server `0.0.0.0:8080`), torchrun's `--max-restarts 0`, a 10 s heartbeat.
 */
export const DEFAULTS = {
  nprocPerNode: 1,
  tee: 0,
  redirects: 0,
  shutdownSignal: 'SIGKILL',
  shutdownTimeout: 15,
  serverHost: '0.0.0.0',
  serverPort: 8080,
  maxRestarts: 0,
  heartbeatInterval: 10,
} as const;

/** Thrown for unusable command lines; the message names the flag. */
export class UsageError extends Error {}

type Kind = 'value' | 'bool';
const OURS: Record<string, Kind> = {
  'nproc-per-node': 'value',
  nnodes: 'value',
  tee: 'value',
  redirects: 'value',
  'log-dir': 'value',
  'shutdown-signal': 'value',
  'shutdown-timeout': 'value',
  'server-host': 'value',
  'server-port': 'value',
  'pre-train-script': 'value',
  'pre-train-args': 'value',
  'post-train-script': 'value',
  'post-train-args': 'value',
  standalone: 'bool',
  'max-restarts': 'value',
  python: 'value',
  'heartbeat-interval': 'value',
  'rank-ip-file': 'value',
  'bind-gpus': 'bool',
  'rdzv-id': 'value',
  'run-id': 'value',
  'elastic-event-signal': 'value',
  'inprocess-restart': 'bool',
  'inprocess-timeout': 'value',
  'inprocess-standby': 'bool',
};
/** torchrun / hyperpodrun flags that do not change what this agent does. */
const IGNORED: Record<string, Kind> = {
  'rdzv-backend': 'value',
  'rdzv-endpoint': 'value',
  'rdzv-conf': 'value',
  'monitor-interval': 'value',
  'start-method': 'value',
  role: 'value',
  'node-rank': 'value',
  'master-addr': 'value',
  'master-port': 'value',
  'local-addr': 'value',
  'logs-specs': 'value',
  'local-ranks-filter': 'value',
  'server-log-level': 'value',
  'server-shutdown-timeout': 'value',
  'signals-to-handle': 'value',
  'max-nodes': 'value',
  redirect: 'value',
  'no-python': 'bool',
  'run-path': 'bool',
  module: 'bool',
  'enable-file-timer': 'bool',
};

const int = (flag: string, v: string, min = 0): number => {
  if (!/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`--${flag}: expected an integer ≥ ${min}, got "${v}"`);
  return Number(v);
};
const num = (flag: string, v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`--${flag}: expected a number ≥ 0, got "${v}"`);
  return n;
};

/** Parses the agent's argv (without `node` and the script path). */
export function parseAgentArgs(argv: string[]): AgentOptions {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  const warnings: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const eq = arg.indexOf('=');
    const raw = (eq === -1 ? arg : arg.slice(0, eq)).replace(/^--?/, '');
    const name = raw.replaceAll('_', '-');
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const kind = OURS[name] ?? IGNORED[name] ?? (name === 'm' ? 'bool' : undefined);
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined) throw new UsageError(`--${name}: missing value`);
      i++;
      return v;
    };
    if (kind === undefined) {
      // Unknown flag: `--x=v` or a bare switch.
      warnings.push(`ignoring unknown flag ${arg}`);
      continue;
    }
    if (kind === 'bool') {
      if (name in OURS) bools.add(name);
      else warnings.push(`ignoring torchrun flag --${name} (no effect in trainkeeper-agent)`);
      if (inline !== undefined && name in OURS && /^(0|false|no)$/i.test(inline)) bools.delete(name);
      continue;
    }
    const v = takeValue();
    if (name in OURS) values.set(name, v);
    else warnings.push(`ignoring torchrun flag --${name} ${v} (no effect in trainkeeper-agent)`);
  }
  needsInProcess(bools, warnings);
  const script = argv[i];
  if (script === undefined) throw new UsageError('missing TRAINING_SCRIPT (the program each worker runs)');
  const get = (k: string): string | undefined => values.get(k);

  const nprocRaw = get('nproc-per-node');
  let nprocPerNode: AgentOptions['nprocPerNode'] = DEFAULTS.nprocPerNode;
  if (nprocRaw !== undefined) {
    nprocPerNode =
      nprocRaw === 'auto' || nprocRaw === 'gpu' || nprocRaw === 'cpu'
        ? nprocRaw
        : int('nproc-per-node', nprocRaw, 1);
  }
  const sig = get('shutdown-signal') ?? DEFAULTS.shutdownSignal;
  if (sig !== 'SIGTERM' && sig !== 'SIGKILL')
    throw new UsageError(`--shutdown-signal: expected SIGTERM or SIGKILL, got "${sig}"`);
  const nnodesRaw = get('nnodes');
  let nnodes: number | undefined;
  if (nnodesRaw !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(nnodesRaw);
    if (!m || (m[2] !== undefined && m[2] !== m[1]))
      throw new UsageError(
        `--nnodes: expected N (elastic MIN:MAX ranges are not supported), got "${nnodesRaw}"`,
      );
    nnodes = int('nnodes', m[1]!, 1);
  }
  const opts: AgentOptions = {
    nprocPerNode,
    tee: int('tee', get('tee') ?? '0'),
    redirects: int('redirects', get('redirects') ?? '0'),
    shutdownSignal: sig,
    shutdownTimeout: num('shutdown-timeout', get('shutdown-timeout') ?? String(DEFAULTS.shutdownTimeout)),
    serverHost: get('server-host') ?? DEFAULTS.serverHost,
    serverPort: int('server-port', get('server-port') ?? String(DEFAULTS.serverPort)),
    standalone: bools.has('standalone'),
    maxRestarts: int('max-restarts', get('max-restarts') ?? '0'),
    heartbeatInterval: num(
      'heartbeat-interval',
      get('heartbeat-interval') ?? String(DEFAULTS.heartbeatInterval),
    ),
    rankIpFile: get('rank-ip-file') ?? DEFAULT_RANK_IP_FILE,
    bindGpus: bools.has('bind-gpus'),
    inProcessRestart: bools.has('inprocess-restart'),
    inProcessTimeout: inProcessTimeout(get('inprocess-timeout'), bools.has('inprocess-restart'), warnings),
    inProcessStandby: bools.has('inprocess-standby') && bools.has('inprocess-restart'),
    script,
    scriptArgs: argv.slice(i + 1),
    warnings,
  };
  const optional = {
    nnodes,
    logDir: get('log-dir'),
    preTrainScript: get('pre-train-script'),
    preTrainArgs: get('pre-train-args'),
    postTrainScript: get('post-train-script'),
    postTrainArgs: get('post-train-args'),
    python: get('python'),
    runId: get('run-id') ?? get('rdzv-id'),
    elasticEventSignal: elasticSignal(get('elastic-event-signal')),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(opts, { [k]: v });
  return opts;
}

/** `--inprocess-timeout`: seconds > 0 (default 60); without `--inprocess-restart` it has no effect (a warning). */
function inProcessTimeout(v: string | undefined, on: boolean, warnings: string[]): number {
  if (v === undefined) return DEFAULT_INPROCESS_TIMEOUT;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`--inprocess-timeout: expected a number of seconds > 0, got "${v}"`);
  if (!on) warnings.push('--inprocess-timeout has no effect without --inprocess-restart');
  return n;
}

/** Flags that only mean something with `--inprocess-restart`. */
const needsInProcess = (bools: Set<string>, warnings: string[]): void => {
  if (bools.has('inprocess-standby') && !bools.has('inprocess-restart'))
    warnings.push('--inprocess-standby has no effect without --inprocess-restart');
};

const ELASTIC_SIGNALS = ['SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT'] as const;

/** `--elastic-event-signal`: one of ELASTIC_SIGNALS (with or without the SIG prefix), else a usage error. */
function elasticSignal(v: string | undefined): AgentOptions['elasticEventSignal'] {
  if (v === undefined) return undefined;
  const name = (v.toUpperCase().startsWith('SIG') ? v.toUpperCase() : `SIG${v.toUpperCase()}`) as never;
  if (!ELASTIC_SIGNALS.includes(name))
    throw new UsageError(`--elastic-event-signal: expected one of ${ELASTIC_SIGNALS.join(', ')}, got "${v}"`);
  return name;
}

/** torchrun's `auto`/`gpu`/`cpu` resolution, given what the node has. */
export function resolveNproc(n: AgentOptions['nprocPerNode'], gpus: number, cpus: number): number {
  if (typeof n === 'number') return n;
  if (n === 'cpu') return cpus;
  if (n === 'gpu') {
    if (gpus === 0) throw new UsageError('--nproc-per-node gpu: no GPU found on this node');
    return gpus;
  }
  return gpus > 0 ? gpus : cpus;
}
