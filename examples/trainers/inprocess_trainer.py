#!/usr/bin/env python3
"""ddp_trainer.py's model and data, written for in-process restart (trainkeeper_inprocess, issue 19).

* The training loop is a re-entrant function `train(state, info)` run by `trainkeeper_inprocess.run`: after a
  peer dies, the surviving processes stay alive, rebuild the process group at the agent's new rendezvous and
  call it again; a replaced process receives the model, optimizer and step from a survivor.
* Deterministic: fixed init seed, the batch of every step generated from (seed, step, rank), one DDP warm-up
  pass per entry; a run recovered in place (or from a checkpoint) ends bit-identical to an uninterrupted one.
* Rank 0 still checkpoints every K steps, for the process-level fallback (all processes restarted).
* Same log format and chaos files as ddp_trainer.py, whose helpers it imports (logging, chaos, batches,
  checkpoints, the final digest); step lines carry `restart=<generation>`.
* Ends with `final step=<N> params_sha256=<hex>`.
"""

import argparse
import os
import time

import ddp_trainer as base
import torch
import trainkeeper_inprocess as tk
from ddp_trainer import act_out, batch, checkpoints, consume_chaos, log, print_final
from torch.nn.parallel import DistributedDataParallel as DDP


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
        # the helpers read the rank from ddp_trainer's module (a replaced process may hold another rank)
        base.RANK = info.rank
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
                act_out(fault, step)
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
        print_final(state.model, args.steps)

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
    found = checkpoints(args.checkpoint_dir)
    if found:
        state.load_state_dict(torch.load(found[-1], map_location="cpu"))
        log("Resuming from checkpoint step %d (%s)" % (state.step, found[-1]))
    tk.run(make_train(args), state)


if __name__ == "__main__":
    main()
