#!/usr/bin/env python3
"""ddp_trainer.py's model and data, written for in-process restart (trainkeeper_inprocess, issue 19).

* The training loop is a re-entrant function `train(state, info)` run by `trainkeeper_inprocess.run`: after a
  peer dies, the surviving processes stay alive, rebuild the process group at the agent's new rendezvous and
  call it again; a replaced process receives the model, optimizer and step from a survivor.
* Deterministic: fixed init seed, the batch of every step generated from (seed, step, rank), one DDP warm-up
  pass per entry; a run recovered in place (or from a checkpoint) ends bit-identical to an uninterrupted one.
* Rank 0 still checkpoints every K steps, for the process-level fallback (all processes restarted).
* Same log format and chaos files as ddp_trainer.py; step lines carry `restart=<generation>`.
* Ends with `final step=<N> params_sha256=<hex>`.
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
import trainkeeper_inprocess as tk
from torch.nn.parallel import DistributedDataParallel as DDP

RANK = int(os.environ.get("RANK", "0"))


def log(msg, level="INFO", stream=None):
    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (now.microsecond // 1000)
    print("[%s] [%s] [rank %d] %s" % (stamp, level, RANK, msg), file=stream or sys.stdout, flush=True)


def consume_chaos():
    d = os.environ.get("TRAINKEEPER_CHAOS_DIR")
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
    y = x[:, :4].sum(dim=1, keepdim=True) * 0.5 + 0.1 * torch.randn(32, 1, generator=g)
    return x, y


class State:
    """What survives a fault in memory, and what a replaced process receives: model, optimizer, step."""

    def __init__(self, model, opt, step):
        self.model, self.opt, self.step = model, opt, step

    def state_dict(self):
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step}

    def load_state_dict(self, d):
        self.model.load_state_dict(d["model"])
        self.opt.load_state_dict(d["opt"])
        self.step = d["step"]


def make_train(args):
    def train(state, info):
        global RANK
        RANK = info.rank
        ddp = DDP(state.model)
        # DDP rebuilds its buckets after the first backward (it changes the all-reduce's summation order):
        # one warm-up pass without an optimizer step on every entry keeps every real step's layout the same.
        x, y = batch(0)
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        state.opt.zero_grad(set_to_none=True)
        log(
            "starting: world_size=%d restart=%d start_step=%d reentries=%d pid=%d"
            % (info.world_size, info.restart_count, state.step, info.reentries, os.getpid())
        )
        for step in range(state.step + 1, args.steps + 1):
            fault = consume_chaos()
            if fault:
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
            x, y = batch(step)
            state.opt.zero_grad()
            loss = torch.nn.functional.mse_loss(ddp(x), y)
            loss.backward()
            with tk.protected():
                state.opt.step()
                state.step = step
            if args.step_time:
                time.sleep(args.step_time)
            log("step %d/%d | Loss: %.4f | restart=%d" % (step, args.steps, loss.item(), info.restart_count))
            if info.rank == 0 and step % args.checkpoint_every == 0:
                path = os.path.join(args.checkpoint_dir, "step-%06d.pt" % step)
                tmp = "%s.tmp-%d" % (path, os.getpid())
                torch.save(state.state_dict(), tmp)
                os.replace(tmp, path)
                log("Saved checkpoint step %d to %s ... checkpoint is finalized" % (step, path))
        digest = hashlib.sha256()
        for t in state.model.state_dict().values():
            digest.update(t.detach().contiguous().numpy().tobytes())
        dist.barrier()
        print("final step=%d params_sha256=%s" % (args.steps, digest.hexdigest()), flush=True)

    return train


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--step-time", type=float, default=0.0)
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    state = State(model, opt, 0)
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    found = sorted(glob.glob(os.path.join(args.checkpoint_dir, "step-*.pt")))
    if found:
        state.load_state_dict(torch.load(found[-1], map_location="cpu"))
        log("Resuming from checkpoint step %d (%s)" % (state.step, found[-1]))
    tk.run(make_train(args), state)


if __name__ == "__main__":
    main()
