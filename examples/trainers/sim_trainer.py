#!/usr/bin/env python3
"""A simulated multi-rank training program (Python standard library only).

It follows the torchrun environment contract (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...), behaves like
a data-parallel job where it matters for fault recovery, and logs like a real trainer:

* rank 0 listens on MASTER_PORT (plain TCP), the other ranks connect; every step does a tiny all-reduce
  through rank 0, so when one rank dies the others fail within milliseconds with a connection error and a
  non-zero exit, as DDP does;
* rank 0 writes a checkpoint every K steps (atomic: temp file, fsync, rename) and every rank resumes from the
  latest complete checkpoint, so a restarted job continues where it left off;
* the loss decays smoothly and deterministically from the step number, so runs are reproducible;
* fault injection for chaos tools: with TRAINKEEPER_CHAOS_DIR set, each rank consumes
  <dir>/rank-<RANK>.json once (see examples/trainers/README.md);
* with --elastic, elastic training as HyperPod's scripts do it: every step the ranks agree (one more
  all-reduce) on `elastic_event_detected()`; on an event rank 0 checkpoints the step just finished and every
  rank exits 0, and the control plane restarts all ranks at the new world size (docs/elastic.md).
"""

import argparse
import datetime
import glob
import json
import math
import os
import socket
import sys
import time
import traceback

RANK = int(os.environ.get("RANK", "0"))
WORLD = int(os.environ.get("WORLD_SIZE", "1"))
LOCAL_RANK = int(os.environ.get("LOCAL_RANK", "0"))
MASTER_ADDR = os.environ.get("MASTER_ADDR", "127.0.0.1")
MASTER_PORT = int(os.environ.get("MASTER_PORT", "29500"))
RESTART = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", os.environ.get("JOB_RESTART_COUNT", "0")))
CONNECT_TIMEOUT = float(os.environ.get("SIM_CONNECT_TIMEOUT", "300"))


def log(msg, level="INFO", stream=None):
    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (now.microsecond // 1000)
    print("[%s] [%s] [rank %d] %s" % (stamp, level, RANK, msg), file=stream or sys.stdout, flush=True)


def loss_at(step):
    """Deterministic, smoothly decaying loss."""
    return 0.35 + 2.2 * math.exp(-step / 120.0) + 0.015 * math.sin(step * 0.9)


class Chaos:
    """Consumes <dir>/rank-<RANK>.json once (rename, then read) and applies the fault."""

    def __init__(self):
        self.dir = os.environ.get("TRAINKEEPER_CHAOS_DIR")
        # Under a TrainKeeper pod the files are per job: <dir>/<namespace>/<job>/rank-<RANK>.json.
        if self.dir and os.environ.get("TRAINKEEPER_JOB_NAME"):
            self.dir = os.path.join(self.dir, os.environ.get("TRAINKEEPER_NAMESPACE", "default"), os.environ["TRAINKEEPER_JOB_NAME"])
        self.spike_left = 0
        self.slow_left = 0

    def poll(self):
        if not self.dir:
            return None
        path = os.path.join(self.dir, "rank-%d.json" % RANK)
        claimed = "%s.consumed-%d-%d" % (path, os.getpid(), int(time.time() * 1000))
        try:
            os.rename(path, claimed)
        except OSError:
            return None
        try:
            with open(claimed) as f:
                spec = json.load(f)
        except (OSError, ValueError) as e:
            log("ignoring unreadable chaos file %s: %s" % (path, e), "WARNING", sys.stderr)
            return None
        finally:
            try:
                os.unlink(claimed)
            except OSError:
                pass
        return spec


def write_error_file(exc_text, tb_text):
    """Writes the torch.distributed.elastic @record error file, as a real trainer's uncaught exception would."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    body = {
        "message": {
            "message": exc_text,
            "extraInfo": {"py_callstack": tb_text, "timestamp": str(int(time.time()))},
        }
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(body, f)
    except OSError:
        pass


def crash(exit_code, step):
    def launch_kernel():
        raise RuntimeError(
            "CUDA error: an illegal memory access was encountered\n"
            "CUDA kernel errors might be asynchronously reported at some other API call"
        )

    def backward():
        launch_kernel()

    try:
        backward()
    except RuntimeError as e:
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        sys.stderr.flush()
        write_error_file("RuntimeError: %s" % str(e).splitlines()[0], tb)
    log("rank %d crashed at step %d" % (RANK, step), "ERROR", sys.stderr)
    os._exit(exit_code)


class Group:
    """The all-reduce group: a star through rank 0 over plain TCP, newline-delimited JSON."""

    def __init__(self):
        self.peers = {}
        self.server = None
        self.conn = None

    def rendezvous(self, start_step):
        """Connects all ranks; rank 0 decides the step to resume from and tells the others."""
        if WORLD == 1:
            return start_step
        if RANK == 0:
            self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.server.bind(("", MASTER_PORT))
            self.server.listen(WORLD)
            self.server.settimeout(CONNECT_TIMEOUT)
            while len(self.peers) < WORLD - 1:
                sock, _ = self.server.accept()
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                f = sock.makefile("rw")
                hello = json.loads(f.readline())
                self.peers[hello["rank"]] = (sock, f)
            for _, f in self.peers.values():
                f.write(json.dumps({"start": start_step}) + "\n")
                f.flush()
            return start_step
        deadline = time.time() + CONNECT_TIMEOUT
        while True:
            try:
                sock = socket.create_connection((MASTER_ADDR, MASTER_PORT), timeout=5)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = sock.makefile("rw")
        f.write(json.dumps({"rank": RANK}) + "\n")
        f.flush()
        line = f.readline()
        if not line:
            raise ConnectionError("rank 0 closed the connection during rendezvous")
        self.conn = (sock, f)
        return json.loads(line)["start"]

    def all_reduce(self, value):
        if WORLD == 1:
            return value
        if RANK == 0:
            total = value
            for rank, (_, f) in sorted(self.peers.items()):
                line = f.readline()
                if not line:
                    raise ConnectionResetError("Connection reset by peer (rank %d)" % rank)
                total += json.loads(line)["v"]
            for rank, (_, f) in self.peers.items():
                try:
                    f.write(json.dumps({"v": total}) + "\n")
                    f.flush()
                except OSError as e:
                    raise ConnectionResetError("Connection reset by peer (rank %d): %s" % (rank, e))
            return total
        _, f = self.conn
        try:
            f.write(json.dumps({"v": value}) + "\n")
            f.flush()
        except OSError as e:
            raise ConnectionResetError("Connection reset by peer (rank 0): %s" % e)
        line = f.readline()
        if not line:
            raise ConnectionResetError("Connection reset by peer (rank 0)")
        return json.loads(line)["v"]


def latest_checkpoint(directory):
    """The highest step whose checkpoint file is complete (parses and names its own step)."""
    best = 0
    for path in glob.glob(os.path.join(directory, "step-*.json")):
        try:
            with open(path) as f:
                data = json.load(f)
            if data.get("complete") and int(data["step"]) > best:
                best = int(data["step"])
        except (OSError, ValueError, KeyError):
            continue
    return best


def save_checkpoint(directory, step, loss):
    path = os.path.join(directory, "step-%06d.json" % step)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump({"step": step, "loss": loss, "world_size": WORLD, "complete": True}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    log("Saved checkpoint step %d to %s ... checkpoint is finalized" % (step, path))


def elastic_event_poll():
    """HyperPod's `elastic_event_detected` (the agent's stand-in when the real package is absent)."""
    try:
        from hyperpod_elastic_agent.elastic_event_handler import elastic_event_detected
    except ImportError:  # run outside an agent: no elastic events
        return lambda: False
    return elastic_event_detected


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--step-time", type=float, default=0.1)
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--checkpoint-every", type=int, default=20)
    p.add_argument("--global-batch", type=int, default=256)
    p.add_argument("--elastic", action="store_true", help="checkpoint and exit 0 on an elastic event")
    args = p.parse_args()
    elastic_event_detected = elastic_event_poll() if args.elastic else None

    if args.checkpoint_dir:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    resume = latest_checkpoint(args.checkpoint_dir) if args.checkpoint_dir and RANK == 0 else 0
    log(
        "starting: world_size=%d local_rank=%d restart=%d master=%s:%d"
        % (WORLD, LOCAL_RANK, RESTART, MASTER_ADDR, MASTER_PORT)
    )
    group = Group()
    chaos = Chaos()
    try:
        start = group.rendezvous(resume)
        if start > 0:
            log("Resuming from checkpoint step %d" % start)
        for step in range(start + 1, args.steps + 1):
            fault = chaos.poll()
            if fault:
                kind = fault.get("fault")
                log("chaos: injecting %s at step %d" % (kind, step), "WARNING", sys.stderr)
                if kind == "crash":
                    crash(int(fault.get("exitCode", 1)), step)
                elif kind == "hang":
                    while True:
                        time.sleep(3600)
                elif kind == "spike":
                    chaos.spike_left = int(fault.get("steps", 5))
                elif kind == "slow":
                    chaos.slow_left = int(fault.get("steps", 5))
            t0 = time.time()
            time.sleep(args.step_time)
            loss = loss_at(step)
            if chaos.spike_left > 0:
                loss *= 10
                chaos.spike_left -= 1
            mean = group.all_reduce(loss) / WORLD
            factor = 1.0
            if chaos.slow_left > 0:
                factor = 0.05
                chaos.slow_left -= 1
            elapsed = max(time.time() - t0, 1e-6)
            samples = args.global_batch / WORLD / max(args.step_time, 1e-3) * factor * (1 + 0.01 * math.sin(step))
            tflops = 153.2 * factor * (1 + 0.005 * math.cos(step))
            log(
                "step %d/%d | Loss: %.4f | %.1f samples/s | %.1f TFLOPs | step_time %.3fs"
                % (step, args.steps, mean, samples, tflops, elapsed)
            )
            if args.checkpoint_dir and RANK == 0 and step % args.checkpoint_every == 0:
                save_checkpoint(args.checkpoint_dir, step, mean)
            # Ranks see the event at slightly different times: agree on it, so all stop after the same step.
            if elastic_event_detected and group.all_reduce(1.0 if elastic_event_detected() else 0.0) > 0:
                if args.checkpoint_dir and RANK == 0 and step % args.checkpoint_every != 0:
                    save_checkpoint(args.checkpoint_dir, step, mean)
                log("elastic event: stopping after step %d (checkpointed) at world size %d; exiting for the restart" % (step, WORLD))
                return
        group.all_reduce(0.0)  # final barrier: nobody closes while a peer still needs it
        log("training complete")
        print("final step=%d loss=%.6f" % (args.steps, loss_at(args.steps)), flush=True)
    except (OSError, ValueError) as e:
        traceback.print_exc()
        log("rank %d failed: %s: %s" % (RANK, type(e).__name__, e), "ERROR", sys.stderr)
        write_error_file("%s: %s" % (type(e).__name__, e), traceback.format_exc())
        sys.exit(1)


if __name__ == "__main__":
    main()
