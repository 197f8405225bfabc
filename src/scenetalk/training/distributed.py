"""Data-parallel training over ``torch.distributed``, started by ``torchrun`` (issue #19).

    torchrun --standalone --nproc-per-node 2 -m scenetalk train CONFIG     # or: scenetalk train CONFIG --nproc 2

Every process (rank) holds the whole model and reads the same seeded sequence of *global*
batches (``training.loop``); rank r computes the loss of its slice of each batch, the
gradients are summed over the ranks (one all-reduce of the flattened gradients after each
backward pass, which is what ``DistributedDataParallel`` does, without its overlap of
communication and computation), and every rank then takes the same clipped optimiser step,
so the weights stay identical. Each trainer weights its slice's loss so that the ranks' sum is
the single-process loss of the global batch (``Trainer.distributed_loss``): a run on N
processes follows a one-process run with the same batch size, up to float rounding.
Validation, checkpoints, history and progress are rank 0's; a resumed run reads the global
step, so ``--resume`` works with another number of processes.

The backend is gloo on CPU and NCCL when the run's device is CUDA (``LoopConfig.device``).
``torchrun`` sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``; without them a run is one process
and nothing here is used.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: the most local processes ``launch`` starts (one machine's cores)
MAX_PROCESSES = 256


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""
    rank: int = 0
    size: int = 1
    device: str = "cpu"   # where the collectives' tensors live (NCCL's are on the GPU)

    @property
    def main(self) -> bool:
        """Rank 0: the one process that validates, writes checkpoints and prints."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (slices differ in size by one at most)."""
        return idx.tensor_split(self.size)[self.rank] if self.size > 1 else idx

    def sum(self, value: torch.Tensor | float | int) -> torch.Tensor:
        """``value`` summed over the ranks (a detached float64 copy: for weights and logs)."""
        t = torch.as_tensor(value, dtype=torch.float64).detach().clone().to(self.device)
        if self.size > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's ``x`` (the same shape but for dim 0, which may differ by one),
        concatenated in rank order, with the gradient flowing back to each rank's own part
        (``torch.distributed.nn.all_gather``, whose backward sums the ranks' gradients: what
        open_clip's ``gather_with_grad`` does for its contrastive loss)."""
        if self.size == 1:
            return x
        from torch.distributed.nn.functional import all_gather

        sizes = [int(n) for n in _all_sizes(len(x), self.size, x.device)]
        padded = torch.nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (0, max(sizes) - len(x)))
        with warnings.catch_warnings():  # deprecated for a private successor; still the public one
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    def sum_gradients(self, parameters) -> None:
        """Sum every trainable parameter's gradient over the ranks, in one all-reduce. A
        parameter no rank's slice reached keeps ``grad = None`` (as in one process, where
        optimisers such as Adam then leave it alone)."""
        if self.size == 1:
            return
        params = [p for p in parameters if p.requires_grad]
        reached = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                         + [reached])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p, any_rank in zip(params, flat[-len(params):].tolist()):
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone() if any_rank else None
            offset += n

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def close(self) -> None:
        """The end of a run: wait for every rank (rank 0 validates and writes last), then
        leave the process group, so that no process exits with its communication threads
        still running (which aborts it)."""
        if self.size > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def _all_sizes(n: int, size: int, device: torch.device) -> torch.Tensor:
    sizes = torch.zeros(size, dtype=torch.int64, device=device)
    sizes[dist.get_rank()] = n
    dist.all_reduce(sizes, op=dist.ReduceOp.SUM)
    return sizes.cpu()


def current_world(device: str = "cpu") -> World:
    """The world ``torchrun`` started this process in (the process group initialised once, gloo
    on CPU, NCCL on CUDA), or ``World()`` when it did not."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), device)


def main_process() -> bool:
    """Whether this process is rank 0 (or not distributed): the one that prints."""
    return os.environ.get("RANK", "0") == "0"


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``scenetalk ARGV`` on ``nproc`` local processes, as ``torchrun --standalone`` does
    (PyTorch's elastic launcher, a rendezvous on a free loopback port). Returns 0, or 2 when a
    process failed (the launcher then stops the others): that process has printed its own
    error, and this adds one line saying which, instead of the launcher's traceback."""
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from scenetalk.errors import ScenetalkError

    if isinstance(nproc, bool) or not isinstance(nproc, int) or not 1 <= nproc <= MAX_PROCESSES:
        raise ScenetalkError(f"--nproc must be a number of processes from 1 to {MAX_PROCESSES}, not {nproc!r}")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        elastic_launch(config, sys.executable)("-m", "scenetalk", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise ScenetalkError(f"training process {rank} of {nproc} failed (exit code {failure.exitcode}); "
                             "the others were stopped; --resume continues from the last checkpoint") from None
    return 0
