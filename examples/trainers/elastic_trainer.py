#!/usr/bin/env python3
"""An elastic PyTorch DDP trainer (gloo, CPU) that resumes across world sizes, for elastic training.

The training side is HyperPod's, unchanged: every step it polls
`hyperpod_elastic_agent.elastic_event_handler.elastic_event_detected()`; when the control plane raises an
elastic event (a scale-up), all ranks agree on it, rank 0 checkpoints the step just finished and every rank
exits 0; the control plane restarts all ranks at the new world size and they resume from that checkpoint.
Under trainkeeper-agent the module is the agent's shim when the real package is not installed.

Checkpoints: HyperPod recommends PyTorch Distributed Checkpoint (DCP), which reshards a sharded state
across world sizes. Debian's torch (1.13) has no `torch.distributed.checkpoint` module, so this trainer
uses a rank-0 full-state checkpoint (model + optimizer + step + the ledger below) instead. It reshards by
design: under DDP every rank holds the full state, so any world size can load it.

Resharding the data: each step has one global batch of GLOBAL_BATCH samples generated from (seed, step,
sample index), split evenly over the ranks (GLOBAL_BATCH is divisible by 1, 2, 3, 4 and 6). DDP averages
the equal-sized shards' gradients, which is the gradient of the whole global batch: the training math does
not depend on the world size (up to the float summation order of the all-reduce).

"Without losing or repeating a step": rank 0 checkpoints after every step, atomically, and the checkpoint
carries a ledger of every committed step with the world size it ran at. A run resumes after the last
committed step; a fault loses at most the step in flight (never committed, so never repeated), an elastic
event loses nothing. The last line is `final step=<N> ledger=<steps>@<world sizes>`.
"""

import argparse
import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

try:
    from hyperpod_elastic_agent.elastic_event_handler import elastic_event_detected
except ImportError:  # run outside an agent: no elastic events
    def elastic_event_detected():
        return False

RANK = int(os.environ.get("RANK", "0"))
WORLD = int(os.environ.get("WORLD_SIZE", "1"))
RESTART = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
GLOBAL_BATCH = 24


def log(msg):
    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (now.microsecond // 1000)
    print("[%s] [INFO] [rank %d] %s" % (stamp, RANK, msg), flush=True)


def shard(step, seed=1234):
    """This rank's share of the global batch of `step` (the same samples whatever the world size)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 101)
    x = torch.randn(GLOBAL_BATCH, 16, generator=g)
    y = x[:, :4].sum(dim=1, keepdim=True) * 0.5 + 0.1 * torch.randn(GLOBAL_BATCH, 1, generator=g)
    per = GLOBAL_BATCH // WORLD
    return x[RANK * per:(RANK + 1) * per], y[RANK * per:(RANK + 1) * per]


def save(path, model, opt, step, ledger):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "ledger": ledger}, tmp)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--step-time", type=float, default=0.0)
    args = p.parse_args()
    if GLOBAL_BATCH % WORLD != 0:
        sys.exit("world size %d does not divide the global batch %d" % (WORLD, GLOBAL_BATCH))

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    path = os.path.join(args.checkpoint_dir, "latest.pt")
    start, ledger = 0, []
    if os.path.exists(path):
        state = torch.load(path, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, ledger = state["step"], state["ledger"]
        log("Resuming from checkpoint step %d at world size %d" % (start, WORLD))
    ddp = DDP(model)
    log("starting: world_size=%d restart=%d start_step=%d" % (WORLD, RESTART, start))
    for step in range(start + 1, args.steps + 1):
        x, y = shard(step)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        ledger.append([step, WORLD])
        if RANK == 0:
            save(path, model, opt, step, ledger)
        if args.step_time:
            time.sleep(args.step_time)
        log("step %d/%d | Loss: %.4f | world %d" % (step, args.steps, loss.item(), WORLD))
        # Every rank must stop at the same step: the event reaches the nodes at slightly different times.
        flag = torch.tensor([1 if elastic_event_detected() else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and step < args.steps:
            dist.barrier()  # rank 0's checkpoint of this step is written before anyone leaves
            log("elastic event: checkpointed step %d at world size %d; exiting for the restart" % (step, WORLD))
            dist.destroy_process_group()
            return
    dist.barrier()
    sizes = []
    for _, w in ledger:
        if not sizes or sizes[-1] != w:
            sizes.append(w)
    steps = [s for s, _ in ledger]
    print(
        "final step=%d ledger=%s@%s"
        % (args.steps, json.dumps(steps, separators=(",", ":")), "->".join(str(w) for w in sizes)),
        flush=True,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
