/**
 * The torchrun environment contract for worker processes (anchors.md, torchrun entry; hyperpod-spec §6),
 * as a pure function of the container's env, the agent's spec and the rendezvous.
 *
 * Invariants: RANK = GROUP_RANK × LOCAL_WORLD_SIZE + LOCAL_RANK; WORLD_SIZE = nproc × nnodes;
 * JOB_RESTART_COUNT = TORCHELASTIC_RESTART_COUNT = the generation (faultCount); variables the container
 * already sets for OMP_NUM_THREADS, TORCH_NCCL_ASYNC_ERROR_HANDLING and PYTHONUNBUFFERED are kept.
 */
import type { Rendezvous } from './state.ts';

/** Everything one worker's env depends on. */
export interface WorkerEnvInput {
  base: NodeJS.ProcessEnv;
  localRank: number;
  nproc: number;
  rendezvous: Rendezvous;
  generation: number;
  maxRestarts: number;
  runId: string;
  errorFile: string;
  /** GPU index for this local rank when `--bind-gpus` is on and the node has GPUs. */
  gpu?: number;
}

/** Builds one worker's environment. */
export function workerEnv(i: WorkerEnvInput): NodeJS.ProcessEnv {
  const { rendezvous: r, nproc } = i;
  const env: NodeJS.ProcessEnv = {
    ...i.base,
    LOCAL_RANK: String(i.localRank),
    RANK: String(r.rank * nproc + i.localRank),
    GROUP_RANK: String(r.rank),
    ROLE_RANK: String(r.rank * nproc + i.localRank),
    ROLE_NAME: 'default',
    LOCAL_WORLD_SIZE: String(nproc),
    WORLD_SIZE: String(nproc * r.nnodes),
    GROUP_WORLD_SIZE: String(r.nnodes),
    ROLE_WORLD_SIZE: String(nproc * r.nnodes),
    MASTER_ADDR: r.masterAddr,
    MASTER_PORT: String(r.masterPort),
    JOB_RESTART_COUNT: String(i.generation),
    TORCHELASTIC_RESTART_COUNT: String(i.generation),
    TORCHELASTIC_MAX_RESTARTS: String(i.maxRestarts),
    TORCHELASTIC_RUN_ID: i.runId,
    TORCHELASTIC_USE_AGENT_STORE: 'False',
    TORCHELASTIC_ERROR_FILE: i.errorFile,
  };
  env.TORCH_NCCL_ASYNC_ERROR_HANDLING ??= '1';
  // Python block-buffers a pipe: without this, log rules would see lines late.
  env.PYTHONUNBUFFERED ??= '1';
  if (nproc > 1) env.OMP_NUM_THREADS ??= '1';
  if (i.gpu !== undefined) env.CUDA_VISIBLE_DEVICES = String(i.gpu);
  return env;
}
