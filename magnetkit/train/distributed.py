"""Data parallelism with torch.distributed: one code path for 1 CPU process, N GPUs or several nodes.

Under ``torchrun`` the process group comes from its environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``...); a plain ``magnetkit train`` is a group of one, so the loop never branches
on "distributed or not". Backends: gloo on CPU, NCCL on GPU (gloo alongside for CPU tensors).
Weights are replicated with DDP, or sharded with FSDP (``fully_shard``) for large models;
state dicts go through ``torch.distributed.checkpoint.state_dict``, which handles both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, distribute_tensor

from magnetkit.errors import UsageError

_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)  # whole tensors, on rank 0's CPU
_FULL = StateDictOptions(full_state_dict=True)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process logs, writes checkpoints and generates samples."""
        return self.rank == 0


def pick_device(preference: str | None, local_rank: int) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is wanted (or available and nothing is asked), else the CPU."""
    if preference is None:
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cpu":
        return torch.device("cpu")
    if not preference.startswith("cuda"):
        raise UsageError(f"train.device must be cpu or cuda, got {preference!r}")
    if not torch.cuda.is_available():
        raise UsageError("train.device is cuda but no CUDA device is available (use train.device=cpu)")
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def session(preference: str | None) -> Iterator[World]:
    """Join (or create) the process group for the length of a run."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
            dist.init_process_group(backend)
        else:  # a group of one needs no rendezvous
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield World(dist.get_rank(), dist.get_world_size(), local_rank, device)
    finally:
        if owned:
            dist.destroy_process_group()


# ---------------------------------------------------------------------------- collectives
def barrier() -> None:
    """Wait for every process."""
    dist.barrier()


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over processes of a tensor (a new tensor)."""
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_max(value: int, device: torch.device) -> int:
    """The largest ``value`` over processes."""
    tensor = torch.tensor(value, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is set on any process (e.g. a stop request)."""
    return bool(all_sum(torch.tensor(int(flag), device=device)).item())


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


# -------------------------------------------------------------------------------- wrapping
def wrap(module: nn.Module, kind: str, world: World, param_dtype: torch.dtype | None) -> nn.Module:
    """``module`` made data-parallel: DDP, or FSDP (weights, gradients and optimizer state sharded).

    FSDP shards the conditioner on its own (so it can be gathered cheaply to measure captions)
    and the transformer as one unit: the transformer computes every layer's cross-attention keys
    before running the layers (a cache it reuses when decoding), so a layer's weights are needed
    outside its own forward. Weights are gathered for each forward and backward; at rest every
    process holds 1/N of them, of their gradients and of AdamW's state.
    A group of one is left unwrapped for DDP: there is nothing to synchronise.
    """
    if kind == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
        fully_shard(module.conditioner, mp_policy=policy)
        module = fully_shard(module, mp_policy=policy)
        # FSDP takes the first module to run forward as its root: make that the whole module,
        # before anything calls the conditioner on its own.
        with torch.no_grad():
            module(*module.example_inputs(world.device))
        module.reshard()  # no backward follows to free the root's gathered weights
        return module
    if world.size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # Each step trains one stage, so the other stages' output heads receive no gradient.
    return DistributedDataParallel(module, device_ids=[world.device.index] if world.device.type == "cuda" else None,
                                   find_unused_parameters=True)


def gradient_sync(module: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """A context in which backward all-reduces gradients only if ``sync`` (accumulation)."""
    if hasattr(module, "set_requires_gradient_sync"):  # FSDP
        module.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if hasattr(module, "no_sync") and not sync:  # DDP
        return module.no_sync()
    return contextlib.nullcontext()


@contextlib.contextmanager
def unsharded(module: nn.Module) -> Iterator[None]:
    """Whole parameters of an FSDP module, to call it outside the root's forward (else nothing); collective."""
    if not hasattr(module, "unshard"):
        yield
        return
    module.unshard()
    try:
        yield
    finally:
        module.reshard()


def unwrap(module: nn.Module) -> nn.Module:
    """The module DDP wraps (FSDP modules are their own)."""
    return getattr(module, "module", module)


# ---------------------------------------------------------------------------- state dicts
def full_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Whole CPU tensors of ``module`` on rank 0 (empty elsewhere); every process must call it."""
    return get_model_state_dict(module, options=_GATHER)


def full_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer state with whole tensors keyed by parameter name, on rank 0; collective."""
    return get_optimizer_state_dict(module, optimizer, options=_GATHER)


def load_full_state(module: nn.Module, optimizer: torch.optim.Optimizer | None, model_state: dict[str, Any],
                    optimizer_state: dict[str, Any] | None) -> None:
    """Load whole state dicts (as `full_model_state` gives them) on every process."""
    set_model_state_dict(module, model_state, options=_FULL)
    if optimizer is not None and optimizer_state is not None:
        # Not strict: a parameter that never had a gradient yet (e.g. the output head of a codebook
        # stage no step drew) has no AdamW state, in the checkpoint as in the uninterrupted run.
        set_optimizer_state_dict(module, optimizer, optimizer_state, options=dataclasses.replace(_FULL, strict=False))


def full_tensor(value: torch.Tensor) -> torch.Tensor:
    """A whole tensor from a (possibly sharded) one; collective for sharded tensors."""
    return value.full_tensor() if isinstance(value, DTensor) else value


def shard_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A whole tensor laid out (sharded, placed) like ``like``; collective for sharded tensors."""
    value = value.to(device=like.device, dtype=like.dtype)
    if isinstance(like, DTensor):
        return distribute_tensor(value, like.device_mesh, like.placements)
    return value
