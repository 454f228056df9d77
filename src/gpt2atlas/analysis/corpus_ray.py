"""A Ray engine for the shared corpus runner: the batches of a corpus job collected by worker actors.

`ray_engine(address, workers, device)` starts a local Ray (`address=None`, `workers` CPUs) or connects to a
running cluster, ships the model's config and weights once to `workers` actors that each rebuild the GPT-2 once
(on a GPU of its own with `device="cuda"`), and hands them the batches, a few in flight per actor; the partials
come back in the batches' order, as `gpt2atlas.analysis.corpus.stream` needs. A Ray the engine started itself is
shut down by `close()` (or at the end of a `with` block, or at exit). Ray is the optional extra `gpt2atlas[ray]`;
the worker processes import gpt2atlas, so on a cluster it must be installed on every node.
"""

from __future__ import annotations

import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from types import ModuleType, TracebackType
from typing import Any

import numpy as np
import torch

from gpt2atlas.analysis.corpus import Batch
from gpt2atlas.errors import AtlasError, InputError
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.gpt2 import GPT2

CONNECT_SECONDS = 5.0  # how long an address may take to answer before it is called dead
IN_FLIGHT = 2  # batches queued per actor: one running, one waiting, so no actor idles between batches
DEVICES = ("cpu", "cuda")


def import_ray() -> ModuleType:
    """The `ray` module, or a one-line InputError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise InputError(
            "--engine ray needs Ray, which is not installed: pip install 'gpt2atlas[ray]'", arguments=("engine",)
        ) from None
    return ray


def check_address(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse, within `seconds`, a `host:port` (or `ray://host:port`) where nothing answers; "auto" passes."""
    if address == "auto":
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"address={address!r} is not host:port (e.g. 10.0.0.5:6379) or auto", arguments=("address",))
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds):
            pass
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or type(error).__name__
        raise InputError(
            f"address={address!r} does not answer ({reason} within {seconds:g} s): start the cluster with "
            "`ray start --head` and give its address",
            arguments=("address",),
        ) from None


@dataclass(frozen=True)
class Shipped:
    """What every actor rebuilds its model from: the config, the weights (on the CPU) and where they came from."""

    cfg: GPT2Config
    state: dict[str, torch.Tensor]
    source: str

    @classmethod
    def of(cls, model: GPT2) -> Shipped:
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        return cls(model.cfg, state, model.source)

    def build(self, device: str) -> GPT2:
        with torch.device("meta"):
            model = GPT2(self.cfg)
        model.load_state_dict(self.state, assign=True)  # keeps the shipped dtype
        model.source = self.source
        return model.to(device).eval().requires_grad_(False)


class Worker:
    """A Ray actor's body: the model built once, then one `collect` per batch."""

    def __init__(self, shipped: Shipped, device: str, threads: int) -> None:
        torch.set_num_threads(threads)
        self.model = shipped.build(device)

    def collect(self, collect: Callable[[GPT2, Batch], Any], batch: Batch) -> Any:
        # Ray hands numpy arrays over read-only (zero-copy); the collect step gets writable ones, as locally
        own = {f.name: np.array(getattr(batch, f.name)) for f in fields(batch)}
        return collect(self.model, replace(batch, **own))


class RayEngine:
    """An `Engine` (see gpt2atlas.analysis.corpus) whose batches run on Ray actors; made by `ray_engine`."""

    def __init__(self, ray: ModuleType, address: str | None, workers: int, device: str, threads: int) -> None:
        self.ray, self.address, self.workers, self.device, self.threads = ray, address, workers, device, threads
        self.started = False  # whether this engine started the Ray it uses (and so shuts it down)
        self.model: GPT2 | None = None  # the model the actors hold
        self.actors: list[Any] = []

    def _connect(self) -> None:
        ray = self.ray
        try:
            if ray.is_initialized():
                pass  # a Ray this process already runs (the caller's): used as it is
            elif self.address is None:
                ray.init(
                    num_cpus=self.workers * self.threads,
                    runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
                    include_dashboard=False,
                    logging_level="ERROR",
                    configure_logging=True,
                )
                self.started = True
            else:
                ray.init(address=self.address, logging_level="ERROR")
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise InputError(f"Ray could not start or connect: {str(error).splitlines()[0]}") from None
        free = ray.cluster_resources()
        need = {"CPU": self.workers * self.threads, "GPU": self.workers if self.device == "cuda" else 0}
        short = [f"{need[r]:g} {r}s, the cluster has {free.get(r, 0):g}" for r in need if free.get(r, 0) < need[r]]
        if short:
            self.close()
            raise InputError(f"workers={self.workers} need {'; '.join(short)}", arguments=("workers",))

    def _actors_for(self, model: GPT2) -> list[Any]:
        """The actors holding `model` (started, and the model shipped once, on its first call)."""
        if self.model is not model:
            self._connect()
            for actor in self.actors:
                self.ray.kill(actor)
            shipped = self.ray.put(Shipped.of(model))
            gpus = 1 if self.device == "cuda" else 0
            remote = self.ray.remote(num_cpus=self.threads, num_gpus=gpus)(Worker)
            self.actors = [remote.remote(shipped, self.device, self.threads) for _ in range(self.workers)]
            self.model = model
        return self.actors

    def __call__(self, collect: Callable[[GPT2, Batch], Any], model: GPT2, work: Iterable[Batch]) -> Iterator[Any]:
        return self._run(collect, model, work)

    def _run(self, collect: Callable[[GPT2, Batch], Any], model: GPT2, work: Iterable[Batch]) -> Iterator[Any]:
        ray = self.ray
        actors = self._actors_for(model)
        step = ray.put(collect)
        waiting: deque[Any] = deque()  # results in the batches' order
        queued: list[list[Any]] = [[] for _ in actors]  # each actor's unfinished results
        for batch in work:
            if len(waiting) >= IN_FLIGHT * len(actors):
                yield self._get(waiting.popleft())
            running = [r for q in queued for r in q]
            if running:  # forget the results that are ready, so `pick` sees each actor's real queue
                done = set(ray.wait(running, num_returns=len(running), timeout=0)[0])
                queued = [[r for r in q if r not in done] for q in queued]
            pick = min(range(len(actors)), key=lambda a: len(queued[a]))
            result = actors[pick].collect.remote(step, batch)
            queued[pick].append(result)
            waiting.append(result)
        while waiting:
            yield self._get(waiting.popleft())

    def _get(self, result: Any) -> Any:
        """A partial, or the user's error a worker raised (an AtlasError, one line) as it was raised there."""
        try:
            return self.ray.get(result)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, AtlasError):
                raise error.cause from None
            raise

    def close(self) -> None:
        """Stop the actors, and the Ray this engine started (one it connected to keeps running)."""
        if self.ray.is_initialized():
            for actor in self.actors:
                self.ray.kill(actor)
        self.actors, self.model = [], None
        if self.started:
            self.ray.shutdown()
            self.started = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def ray_engine(address: str | None = None, workers: int = 2, device: str = "cpu", *, threads: int = 1) -> RayEngine:
    """A Ray engine of `workers` actors (`threads` torch threads and CPUs each; one GPU each on cuda).

    `address=None` starts a local Ray on the first call (its workers import from this process's `sys.path`, so a
    `collect` defined in the caller's own module works there too); an address ("host:port", "ray://host:port" with
    `ray[client]`, or "auto") connects to a running cluster. Checked here, in a few seconds: Ray is installed,
    the counts are positive, the device is cpu or cuda, and something answers at the address.
    """
    if workers < 1:
        raise InputError(f"workers={workers} must be at least 1", arguments=("workers",))
    if threads < 1:
        raise InputError(f"threads={threads} must be at least 1", arguments=("threads",))
    if device not in DEVICES:
        raise InputError(f"device={device!r} is not one of {', '.join(DEVICES)} for Ray", arguments=("device",))
    ray = import_ray()
    if address is not None:
        check_address(address)
    return RayEngine(ray, address, workers, device, threads)
