#!/usr/bin/env python3
"""A real PyTorch DDP trainer (gloo, CPU) of a small MLP, for end-to-end recovery tests.

* Follows the torchrun env contract (`init_process_group("gloo")` reads MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE).
* Deterministic: fixed init seed, and the batch of every step is generated from (seed, step, rank), so a run
  resumed from a checkpoint replays exactly the same steps as an uninterrupted run.
* Rank 0 writes a checkpoint (model + optimizer + step) every K steps atomically (temp file + rename);
  every rank resumes from the latest one.
* Same log format and chaos files as sim_trainer.py (examples/trainers/README.md).
* Ends with `final step=<N> params_sha256=<hex>` so tests can compare runs bit for bit.
"""

import argparse
import datetime
import glob
import hashlib
import json
import os
import sys
import time
import traceback

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

RANK = int(os.environ.get("RANK", "0"))
WORLD = int(os.environ.get("WORLD_SIZE", "1"))
RESTART = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def log(msg, level="INFO", stream=None):
    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (now.microsecond // 1000)
    print("[%s] [%s] [rank %d] %s" % (stamp, level, RANK, msg), file=stream or sys.stdout, flush=True)


def consume_chaos():
    d = os.environ.get("TRAINKEEPER_CHAOS_DIR")
    # Under a TrainKeeper pod the files are per job: <dir>/<namespace>/<job>/rank-<RANK>.json.
    if d and os.environ.get("TRAINKEEPER_JOB_NAME"):
        d = os.path.join(d, os.environ.get("TRAINKEEPER_NAMESPACE", "default"), os.environ["TRAINKEEPER_JOB_NAME"])
    if not d:
        return None
    path = os.path.join(d, "rank-%d.json" % RANK)
    claimed = "%s.consumed-%d" % (path, os.getpid())
    try:
        os.rename(path, claimed)
    except OSError:
        return None
    try:
        with open(claimed) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
    finally:
        try:
            os.unlink(claimed)
        except OSError:
            pass


def write_error_file(message, tb):
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"message": {"message": message, "extraInfo": {"py_callstack": tb, "timestamp": str(int(time.time()))}}}, f)


def batch(step, seed=1234):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 101 + RANK)
    x = torch.randn(32, 16, generator=g)
    y = (x[:, :4].sum(dim=1, keepdim=True) * 0.5 + 0.1 * torch.randn(32, 1, generator=g))
    return x, y


def checkpoints(directory):
    return sorted(glob.glob(os.path.join(directory, "step-*.pt")))


def act_out(fault, step):
    """Plays a chaos `crash` (traceback, error file, exit) or `hang` (forever); returns for any other fault."""
    kind = fault.get("fault")
    log("chaos: injecting %s at step %d" % (kind, step), "WARNING", sys.stderr)
    if kind == "crash":
        try:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        except RuntimeError as e:
            tb = traceback.format_exc()
            sys.stderr.write(tb)
            sys.stderr.flush()
            write_error_file("RuntimeError: %s" % e, tb)
        os._exit(int(fault.get("exitCode", 1)))
    elif kind == "hang":
        while True:
            time.sleep(3600)


def print_final(model, steps):
    """Waits for every rank, then prints `final step=<N> params_sha256=<hex>` of the model's parameters."""
    digest = hashlib.sha256()
    for t in model.state_dict().values():
        digest.update(t.detach().contiguous().numpy().tobytes())
    dist.barrier()
    print("final step=%d params_sha256=%s" % (steps, digest.hexdigest()), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--step-time", type=float, default=0.0)
    args = p.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 0
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    found = checkpoints(args.checkpoint_dir)
    if found:
        state = torch.load(found[-1], map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log("Resuming from checkpoint step %d (%s)" % (start, found[-1]))
    ddp = DDP(model)
    # Warm-up pass without an optimizer step: DDP rebuilds its gradient buckets after the first backward,
    # which changes the all-reduce's float summation order. Doing it here, in fresh and resumed runs alike,
    # makes every real step use the same bucket layout, so a resumed run is bit-identical to an uninterrupted one.
    x, y = batch(0)
    torch.nn.functional.mse_loss(ddp(x), y).backward()
    opt.zero_grad(set_to_none=True)
    log("starting: world_size=%d restart=%d start_step=%d" % (WORLD, RESTART, start))
    spike = slow = 0
    for step in range(start + 1, args.steps + 1):
        fault = consume_chaos()
        if fault:
            act_out(fault, step)
            if fault.get("fault") == "spike":
                spike = int(fault.get("steps", 5))
            elif fault.get("fault") == "slow":
                slow = int(fault.get("steps", 5))
        t0 = time.time()
        x, y = batch(step)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        if args.step_time:
            time.sleep(args.step_time)
        shown = loss.item() * (10 if spike > 0 else 1)
        factor = 0.05 if slow > 0 else 1.0
        spike, slow = max(spike - 1, 0), max(slow - 1, 0)
        elapsed = max(time.time() - t0, 1e-6)
        # 3 × (forward multiply-adds) per sample: forward + backward, counted as real FLOPs of this tiny model.
        flops = 32 * 3 * 2 * (16 * 32 + 32 * 1)
        log(
            "step %d/%d | Loss: %.4f | %.1f samples/s | %.6f TFLOPs"
            % (step, args.steps, shown, 32 / elapsed * factor, flops / elapsed / 1e12 * factor)
        )
        if RANK == 0 and step % args.checkpoint_every == 0:
            path = os.path.join(args.checkpoint_dir, "step-%06d.pt" % step)
            tmp = "%s.tmp-%d" % (path, os.getpid())
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
            os.replace(tmp, path)
            log("Saved checkpoint step %d to %s ... checkpoint is finalized" % (step, path))
    print_final(model, args.steps)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
