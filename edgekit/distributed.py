"""Training on several processes: PyTorch's DistributedDataParallel, launched by ``torchrun`` (one machine or
many, SLURM, Kubernetes) or by ``edgekit train|build --nproc N`` on one machine.

Each process learns its place from the variables torchrun sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``); without
them a run is one process and nothing here changes it. The processes join one group (NCCL on GPUs, gloo on
CPUs), each on its own GPU. Every process draws the same seeded epoch order as a single process would (the
recipe's split, stratification and balanced epochs unchanged) and cuts each batch into its share
(:func:`rank_batches`): together they see each batch once, and every process takes the same number of steps.

The recipe's ``train.distributed`` section (:class:`Layout`) says what a batch is: ``batch: global`` (the
default) splits ``batch_size`` over the processes, so a distributed run takes the steps a single process takes;
``batch: per_process`` gives each process ``batch_size``, a larger global batch, with the learning rate scaled by
``lr_scale`` (linear, sqrt or none) of how much larger. ``sync_batchnorm: auto`` synchronises batch-norm
statistics across GPUs when a process's share of the batch is under ``SYNC_BELOW`` images (PyTorch's
SyncBatchNorm runs on GPUs only: on CPUs each process keeps its own statistics).

Process 0 alone evaluates, writes checkpoints and the artifact, and runs every stage after training. A process
that dies takes the group down (the others fail in their next collective) and the job exits non-zero; the same
command again resumes every process after the last checkpointed epoch. ``--nproc`` launches torchrun on this
machine with a static rendezvous and no in-place restarts: here (torch 2.13, gloo) the workers torchrun restarted
hung or failed connecting to the old group's addresses in 9 of 12 tries, under either rendezvous, an open
upstream problem (pytorch/pytorch#167288, the same with NCCL).
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import NamedTuple, Sequence

import torch
import torch.distributed as dist

from edgekit.errors import EdgekitError

SYNC_BELOW = 16          # images per process under which batch-norm statistics are synchronised (auto)
LR_SCALES = ("linear", "sqrt", "none")


class World(NamedTuple):
    """This process's place among the training processes."""
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


_left = False        # this process has left its group: it goes on alone


def world() -> World:
    """From the variables torchrun sets; one process without them, or once it has left the group."""
    env = os.environ
    if _left:
        return World()
    return World(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))


def start(device_type: str) -> World:
    """Join the process group (once): NCCL on GPUs, gloo on CPUs; each process on its own GPU."""
    w = world()
    if w.size > 1 and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(w.local_rank)
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        if not w.main:
            os.environ["EDGEKIT_NO_PROGRESS"] = "1"      # one set of progress bars: process 0's
    return w


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def finish() -> None:
    """Leave the group once every process has come this far: what follows runs on each process alone (a build
    goes on on process 0 only)."""
    global _left
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _left = True


def mean(value: float) -> float:
    """``value`` averaged over the processes."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def rank_batches(order: Sequence[int], batch_size: int, drop_last: bool, w: World) -> list[list[int]]:
    """The epoch's batches (``batch_size`` consecutive indices of ``order``), each cut to this process's share
    (every ``w.size``-th index from its rank). A last short batch is left out when ``drop_last``, and when it
    has fewer indices than there are processes."""
    out = []
    for i in range(0, len(order), batch_size):
        batch = list(order[i:i + batch_size])
        if (drop_last and len(batch) < batch_size) or len(batch) < w.size:
            continue
        out.append([int(k) for k in batch[w.rank::w.size]])
    return out


class Layout(NamedTuple):
    """How a recipe's training spreads over ``size`` processes."""
    size: int
    batch: int              # the global batch: what one optimizer step sees
    per_process: int        # each process's share of it (the largest share)
    lr_factor: float        # the recipe's learning rate is multiplied by this
    sync_batchnorm: bool

    @classmethod
    def of(cls, settings: dict, w: World, device_type: str, model: torch.nn.Module) -> "Layout":
        spec = dict(settings.get("distributed") or {})
        mode, rule = spec.pop("batch", "global"), spec.pop("lr_scale", "linear")
        sync = spec.pop("sync_batchnorm", "auto")
        if spec or mode not in ("global", "per_process") or rule not in LR_SCALES or sync not in ("auto", True, False):
            raise EdgekitError(f"train.distributed: batch global|per_process, lr_scale {'|'.join(LR_SCALES)}, "
                               f"sync_batchnorm auto|true|false (got {settings.get('distributed')})")
        bs = int(settings["batch_size"])
        batch = bs if mode == "global" else bs * w.size
        if batch < w.size:
            raise EdgekitError(f"train.batch_size {bs} is smaller than the {w.size} processes it is split over")
        grown = batch / bs
        factor = {"linear": grown, "sqrt": grown ** 0.5, "none": 1.0}[rule]
        share = -(-batch // w.size)
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        wanted = sync is True or (sync == "auto" and share < SYNC_BELOW)
        return cls(w.size, batch, share, factor, bool(w.size > 1 and has_bn and wanted and device_type == "cuda"))

    def describe(self) -> dict:
        return {"processes": self.size, "global_batch": self.batch, "per_process_batch": self.per_process,
                "lr_factor": round(self.lr_factor, 4), "sync_batchnorm": self.sync_batchnorm}


def wrap(model: torch.nn.Module, layout: Layout, device: torch.device) -> torch.nn.Module:
    """``model`` as the processes train it together (itself for one process)."""
    if layout.size == 1:
        return model
    if layout.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                     else None)


NPROC = "--nproc"


def relaunch(argv: Sequence[str], nproc: int) -> int:
    """Run this command again under torchrun with ``nproc`` processes on this machine (``--nproc`` removed); its
    exit code."""
    import socket
    import subprocess

    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == NPROC:
            skip = True
            continue
        if not arg.startswith(NPROC + "="):
            rest.append(arg)
    with socket.socket() as s:                    # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--node-rank=0", "--master-addr=127.0.0.1",
               f"--master-port={port}", f"--nproc-per-node={nproc}", "-m", "edgekit", *rest]
    print("edgekit: " + shlex.join(command[1:]), file=sys.stderr, flush=True)
    return subprocess.call(command)
