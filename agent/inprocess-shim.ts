/**
 * The training side of the in-process restart tier (issue 19): the pure-Python module
 * `trainkeeper_inprocess` (standard library + torch only) that the agent writes onto every worker's
 * `PYTHONPATH`, like the elastic shim.
 *
 * Contract with the agent (agent/agent.ts), per worker process:
 * - env `TRAINKEEPER_INPROCESS_FILE` (set only when the agent runs with `--inprocess-restart`) names a JSON
 *   file `{generation, master_addr, master_port, nnodes, group_rank, nproc}` the agent writes atomically
 *   on `POST /inprocess-restart`, then sends SIGUSR1 to the live workers;
 * - a worker that re-initialised its process group at generation g writes `ack-<g>-<LOCAL_RANK>` next to
 *   that file; the agent goes RUNNING at g once every local rank acknowledged;
 * - without the env var, `run()` re-raises every failure (process-level restart semantics);
 * - a warm standby (`--inprocess-standby`) has `TRAINKEEPER_INPROCESS_STANDBY` too: `run()` waits for that
 *   assignment file (the rendezvous plus `local_rank`) before it initialises, then runs as a replacement.
 *
 * ```
 *  survivor:  train_fn ──✗ allreduce fails (peer died) ── destroy PG ── wait file(g+1) ── init PG ── ack ── sync ── train_fn
 *  agent:                     WorkerCrash ……… POST /inprocess-restart ── write file + SIGUSR1 ── respawn dead ── acks ── RUNNING g+1
 *  replacement:                                                              spawn(g+1) ── import torch ── init PG ── ack ── sync ── train_fn
 * ```
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Env var naming the rendezvous file of the in-process restart tier (set on workers in that mode). */
export const INPROCESS_FILE_ENV = 'TRAINKEEPER_INPROCESS_FILE';

/**
 * Env var of a warm standby worker (`--inprocess-standby`): the file whose appearance assigns it a local
 * rank (JSON: `InProcessRendezvous` plus `local_rank`). Until then it waits inside `run()`.
 */
export const INPROCESS_STANDBY_ENV = 'TRAINKEEPER_INPROCESS_STANDBY';

/** The signal that tells live workers a new rendezvous was published. */
export const INPROCESS_SIGNAL = 'SIGUSR1' as const;

/** The acknowledgement file a worker writes once it re-initialised its process group at `generation`. */
export const ackFileName = (generation: number, localRank: number): string =>
  `ack-${generation}-${localRank}`;

/** What the agent publishes to its live workers (the JSON content of the rendezvous file). */
export interface InProcessRendezvous {
  generation: number;
  master_addr: string;
  master_port: number;
  nnodes: number;
  /** This node's (agent's) rank; a worker's global rank is group_rank × nproc + LOCAL_RANK. */
  group_rank: number;
  nproc: number;
}

/** The module's source. Pure Python 3 + torch. Kept free of backticks and `${` (it is a raw template). */
// biome-ignore lint/complexity/noUselessStringRaw: Python source; a backslash added to it must stay one
export const INPROCESS_MODULE = String.raw`"""In-process restart for PyTorch training under trainkeeper-agent (TrainKeeper issue 19).

Wrap the training function:

    import trainkeeper_inprocess as tk
    tk.run(train, state)          # train(state, info) -> result

state must have an int attribute "step" (the last step whose optimizer update was applied) and
state_dict() / load_state_dict(d) covering everything a replaced process must receive (model, optimizer).
train must be re-entrant: it builds DDP (and anything else bound to the process group) on every call and
resumes from state.step + 1. Wrap the optimizer update and the step counter in "with tk.protected():".

On a collective failure (gloo raises RuntimeError when a peer dies) or when the agent publishes a new
rendezvous (TRAINKEEPER_INPROCESS_FILE + SIGUSR1), the module destroys the process group, waits for the
agent's new rendezvous, re-initialises, acknowledges, makes every rank's state equal to the surviving rank
with the lowest completed step, and calls train again. Without TRAINKEEPER_INPROCESS_FILE every failure
is re-raised (the agent restarts the process). A warm standby process (TRAINKEEPER_INPROCESS_STANDBY set)
waits in run() until the agent assigns it a local rank, then joins as a replaced process would.
"""
import contextlib
import datetime
import gc
import json
import os
import re
import signal
import sys
import time

import torch
import torch.distributed as dist

FILE_ENV = "TRAINKEEPER_INPROCESS_FILE"
# Seconds a worker waits for the agent's new rendezvous after a fault before it gives up (exit 1).
WAIT_ENV = "TRAINKEEPER_INPROCESS_WAIT_SECONDS"
# Set on a warm standby process: the file that assigns it a local rank (it waits in run() until then).
STANDBY_ENV = "TRAINKEEPER_INPROCESS_STANDBY"
# Process-group timeout (seconds): bounds a collective blocked on a peer that hangs instead of dying.
COLLECTIVE_TIMEOUT_ENV = "TRAINKEEPER_INPROCESS_COLLECTIVE_TIMEOUT"

_FAILURE = re.compile(
    r"gloo|nccl|connection (closed|reset|refused)|broken pipe|timed out|timeout|socket|store|process ?group",
    re.IGNORECASE,
)


class RestartRequested(Exception):
    """Raised in the training function when the agent published a new rendezvous (in-process restart)."""


class Info:
    """What train(state, info) learns about this entry."""

    def __init__(self, rank, world_size, local_rank, restart_count, reentries, fresh):
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        # The generation (TORCHELASTIC_RESTART_COUNT) this entry runs at.
        self.restart_count = restart_count
        # How many times this process re-entered in place.
        self.reentries = reentries
        # True when this process has no in-memory state from an earlier entry (it was started for it).
        self.fresh = fresh

    def __repr__(self):
        return "Info(%r)" % self.__dict__


_generation = -1
_in_train = False
_protect_depth = 0
_pending = False


def _log(msg):
    print("trainkeeper_inprocess: %s" % msg, file=sys.stderr, flush=True)


def read_rendezvous(path=None):
    """The agent's latest published rendezvous (a dict), or None when there is none (yet)."""
    path = path or os.environ.get(FILE_ENV)
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_collective_failure(exc):
    """True for RestartRequested and for the RuntimeErrors torch.distributed raises when a peer fails."""
    if isinstance(exc, RestartRequested):
        return True
    return isinstance(exc, RuntimeError) and bool(_FAILURE.search(str(exc)))


def _newer_published():
    r = read_rendezvous()
    return r is not None and int(r.get("generation", -1)) > _generation


def _on_signal(signum, frame):
    global _pending
    if not _newer_published():
        return
    if _in_train and _protect_depth == 0:
        raise RestartRequested("the agent published a new rendezvous")
    _pending = True


@contextlib.contextmanager
def protected():
    """A block the agent's signal never interrupts (e.g. optimizer.step() plus the step counter update).

    A restart requested meanwhile is raised when the block ends."""
    global _protect_depth, _pending
    _protect_depth += 1
    try:
        yield
    finally:
        _protect_depth -= 1
    if _protect_depth == 0 and _pending and _in_train:
        _pending = False
        raise RestartRequested("the agent published a new rendezvous")


def _env_rendezvous():
    return {
        "generation": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
        "master_addr": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "master_port": int(os.environ.get("MASTER_PORT", "29500")),
        "rank": int(os.environ.get("RANK", "0")),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }


def _from_published(r, local_rank):
    nproc = int(r["nproc"])
    return {
        "generation": int(r["generation"]),
        "master_addr": str(r["master_addr"]),
        "master_port": int(r["master_port"]),
        "rank": int(r["group_rank"]) * nproc + local_rank,
        "world_size": int(r["nnodes"]) * nproc,
    }


def _init(rdzv, backend, timeout):
    # Keep the torchrun env contract true for user code that reads it after a re-entry.
    os.environ.update(
        MASTER_ADDR=rdzv["master_addr"],
        MASTER_PORT=str(rdzv["master_port"]),
        RANK=str(rdzv["rank"]),
        WORLD_SIZE=str(rdzv["world_size"]),
        TORCHELASTIC_RESTART_COUNT=str(rdzv["generation"]),
        JOB_RESTART_COUNT=str(rdzv["generation"]),
    )
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=rdzv["rank"],
        world_size=rdzv["world_size"],
        timeout=datetime.timedelta(seconds=timeout),
    )


def _destroy():
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception as e:  # a broken group may fail to tear down; it is dropped either way
        _log("destroying the broken process group: %s" % e)
    # DDP's reducer (autograd hooks on the parameters) dies with the last reference to the old DDP object.
    gc.collect()


def _ack(path, generation, local_rank):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ack = os.path.join(os.path.dirname(path), "ack-%d-%d" % (generation, local_rank))
    tmp = "%s.tmp-%d" % (ack, os.getpid())
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, ack)


def _wait_for_newer(path, generation, wait):
    deadline = time.monotonic() + wait
    while True:
        r = read_rendezvous(path)
        if r is not None and int(r.get("generation", -1)) > generation:
            return r
        if time.monotonic() > deadline:
            raise RuntimeError(
                "trainkeeper_inprocess: no new rendezvous after generation %d within %g s" % (generation, wait)
            )
        time.sleep(0.02)


def _wait_for_assignment(path):
    # Tell the agent this standby is warm (torch imported, the script has reached run()).
    with open(path + ".ready.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".ready.tmp", path + ".ready")
    while True:
        r = read_rendezvous(path)
        if r is not None and "local_rank" in r:
            return r
        time.sleep(0.01)


def sync_state(state, live):
    """Makes every rank's state equal to that of the rank with in-memory state (live) and the lowest step.

    A replaced process (not live) has only what it loaded from a checkpoint; survivors may differ by one
    step at most (a peer can die after some ranks finished a collective). Taking the lowest step and
    replaying deterministically keeps the run identical to an uninterrupted one. Returns the source rank."""
    world = dist.get_world_size()
    mine = torch.tensor([1 if live else 0, int(state.step)], dtype=torch.int64)
    rows = [torch.zeros(2, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(rows, mine)
    rows = [(int(t[0]), int(t[1]), r) for r, t in enumerate(rows)]
    pool = [x for x in rows if x[0]] or rows
    src = min(pool, key=lambda x: (x[1], x[2]))[2]
    same_step = all(x[1] == rows[src][1] for x in rows)
    if same_step and (all(x[0] for x in rows) or not any(x[0] for x in rows)):
        return src
    box = [state.state_dict() if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    if dist.get_rank() != src:
        state.load_state_dict(box[0])
    return src


def run(train_fn, state, backend="gloo"):
    """Calls train_fn(state, info) and re-enters it in place after each collective failure (see module doc)."""
    path = os.environ.get(FILE_ENV)
    wait = float(os.environ.get(WAIT_ENV, "600"))
    timeout = float(os.environ.get(COLLECTIVE_TIMEOUT_ENV, "60"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    standby = os.environ.get(STANDBY_ENV)
    if standby:
        # A warm standby: torch is imported and the script has run up to here; wait to be given a rank.
        assignment = _wait_for_assignment(standby)
        local_rank = int(assignment["local_rank"])
        os.environ.update(LOCAL_RANK=str(local_rank), GROUP_RANK=str(assignment["group_rank"]))
        rdzv = _from_published(assignment, local_rank)
        _log("standby takes over local rank %d at generation %d" % (local_rank, rdzv["generation"]))
    else:
        rdzv = _env_rendezvous()
    if not path:
        return _run(train_fn, state, backend, None, wait, timeout, local_rank, rdzv)
    signal.signal(signal.SIGUSR1, _on_signal)
    # Restart blocking system calls after the handler instead of failing them with EINTR where the kernel
    # allows it (not poll(), not socket calls with a timeout).
    signal.siginterrupt(signal.SIGUSR1, False)
    # The signal is held on this thread (and on the threads torch starts meanwhile, which inherit the mask)
    # except while train_fn runs: a survivor that already read the new rendezvous gets the agent's signal
    # while it connects its TCPStore, and the poll() there fails with "Interrupted system call" whatever
    # SA_RESTART says (seen on the local plane: the re-entry failed and the job restarted at process level).
    held = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    try:
        return _run(train_fn, state, backend, path, wait, timeout, local_rank, rdzv)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _run(train_fn, state, backend, path, wait, timeout, local_rank, rdzv):
    global _generation, _in_train, _pending
    live = False
    reentries = 0
    while True:
        _generation = rdzv["generation"]
        _pending = False
        try:
            _init(rdzv, backend, timeout)
            if path:
                _ack(path, _generation, local_rank)
                if reentries:
                    _log("re-entered at generation %d (rank %d of %d)" % (_generation, rdzv["rank"], rdzv["world_size"]))
            src = sync_state(state, live)
            if reentries or not live and _generation > 0:
                _log("state synchronised from rank %d at step %d" % (src, int(state.step)))
            live = True
            info = Info(rdzv["rank"], rdzv["world_size"], local_rank, _generation, reentries, reentries == 0)
            if path and _newer_published():
                raise RestartRequested("a newer rendezvous was published during re-initialisation")
            _in_train = True
            try:
                if path:
                    # A signal that came while it was held is handled here (RestartRequested if it is news).
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
                result = train_fn(state, info)
            finally:
                if path:
                    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
                _in_train = False
            _destroy()
            return result
        except BaseException as e:
            if not path or not is_collective_failure(e):
                raise
            _log("generation %d: %s: %s; waiting for the agent's new rendezvous" % (_generation, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
        _destroy()
        rdzv = _from_published(_wait_for_newer(path, _generation, wait), local_rank)
        reentries += 1
`;

/** Writes the module into `dir` (a PYTHONPATH entry) and returns `dir`. */
export function writeInProcessModule(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trainkeeper_inprocess.py'), INPROCESS_MODULE);
  return dir;
}
