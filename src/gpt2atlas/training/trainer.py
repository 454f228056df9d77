"""The training loop: one process, or many under `torchrun` with DistributedDataParallel.

Each optimizer step takes the run's next `batch_tokens / n_ctx` windows (see `WindowSampler`); under torchrun
every process takes its own contiguous share of them and DDP averages the gradients, so the same total batch
gives the same loss curve on 1 or N processes, up to float rounding. Only rank 0 writes.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from gpt2atlas.errors import AtlasError, InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.loading import check_device
from gpt2atlas.numerics.threads import set_torch_threads
from gpt2atlas.training.data import TokenData, WindowSampler, prepare_tokens, validation_windows
from gpt2atlas.training.loss import CUDA_CHUNK_ROWS, DEFAULT_CHUNK_ROWS, linear_cross_entropy
from gpt2atlas.training.recipe import (
    SHAPE_FIELDS,
    TrainConfig,
    check_resumable,
    check_run_limits,
    compute_dtype,
    initial_model,
    learning_rate,
    optimizer_for,
)
from gpt2atlas.training.run_folder import Metrics, RunFolder, is_checkpoint_step


class TrainingError(AtlasError):
    """Training cannot go on (a NaN loss, say); the message names the step and the last good checkpoint."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run after saving it; the message says how to resume."""


@dataclass(frozen=True)
class TrainResult:
    run: Path
    step: int
    tokens: int
    train_loss: float | None
    val_loss: float | None
    stopped_early: bool  # the time limit ended the run before max_steps


class LanguageModelLoss(nn.Module):
    """GPT-2 plus its next-token loss, as one module (what DDP and torch.compile wrap)."""

    def __init__(self, model: GPT2, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of predicting windows[:, 1:] from windows[:, :-1]."""
        model = self.model
        autocast = torch.autocast(windows.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        with autocast:
            hidden = model.ln_final(model.residual_stream(windows[:, :-1]))
            chunk_rows = CUDA_CHUNK_ROWS if windows.device.type == "cuda" else DEFAULT_CHUNK_ROWS
            return linear_cross_entropy(
                hidden, model.W_E, windows[:, 1:], compute_dtype=self.dtype, chunk_rows=chunk_rows
            )


# ----- processes -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world_size
        return value

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true if it is true on any process (so that every process takes the same branch)."""
        if self.world_size == 1:
            return list(flags)
        values = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]


def _start_processes(device_name: str, threads: int | None) -> Processes:
    """This process's rank and device; joins the process group when started by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = check_device(device_name)
    if world_size == 1:
        if threads:
            set_torch_threads(threads)
        return Processes(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:  # torchrun sets OMP_NUM_THREADS=1: share the cores between the processes of this machine instead
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        set_torch_threads(threads or max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), world_size, device)


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C / SIGTERM into a request to stop after the current step; a second one aborts."""
    requested: list[int] = []

    def handler(signum, frame) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _closing(bar) -> Iterator[None]:
    """Close the progress bar before any message that follows it, on success or error."""
    try:
        yield
    finally:
        bar.close()


# ----- the run ---------------------------------------------------------------------------------------------------
def train(
    config: TrainConfig | None = None,
    out: str | Path = "runs/mini",
    *,
    resume: bool = False,
    overwrite: bool = False,
    time_limit_s: float | None = None,
    stop_at_step: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    token_cache: Path | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train our GPT-2 from scratch (or from `config.init_from`), or resume the run in `out`.

    With `resume=True`, the run's own config is used; `config` may only change how long it runs
    (`max_steps`) and how it is watched, never the shape or the recipe. `time_limit_s` and `stop_at_step` end
    the run early with its state saved, to be resumed later (a long run split over several sittings).
    """
    check_run_limits(threads, time_limit_s, stop_at_step)
    folder = RunFolder(out)
    if resume:
        saved = folder.read_config()
        if config is not None:
            check_resumable(saved, config)
        config = config or saved
    else:
        config = config or TrainConfig()
    procs = _start_processes(config.device, threads)
    try:
        if not resume:
            folder.check_new(overwrite)
            folder.check_writable()
        accumulation = config.accumulation_steps(procs.world_size)
        procs.barrier()  # every process has checked before the first one writes

        if procs.is_main:
            tokens = prepare_tokens(
                config.data, val_fraction=config.val_fraction, cache_dir=token_cache, progress=progress
            )
        procs.barrier()
        if not procs.is_main:
            tokens = prepare_tokens(
                config.data, val_fraction=config.val_fraction, cache_dir=token_cache, progress=False
            )
        if tokens.manifest["train_tokens"] == 0:
            raise InputError(f"data={config.data}: no text found to train on (empty files?)", arguments=("data",))
        if procs.is_main:
            log(
                f"data: {tokens.manifest['train_tokens']:,} training tokens from "
                f"{tokens.manifest['train_documents']:,} documents, {tokens.manifest['val_tokens']:,} validation "
                f"tokens from {tokens.manifest['val_documents']:,} ({tokens.folder})"
            )
        sampler = WindowSampler(tokens.train, config.n_ctx, config.seed)  # checks there is a context's worth
        return _run(
            config,
            folder,
            tokens,
            sampler,
            procs,
            accumulation,
            resume,
            overwrite,
            time_limit_s,
            stop_at_step,
            progress,
            log,
        )
    finally:
        if procs.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _initial_model(config: TrainConfig, device: torch.device) -> GPT2:
    if config.init_from:
        from gpt2atlas.model.loading import load_model

        start = load_model(config.init_from)
        if any(getattr(start.cfg, f) != getattr(config, f) for f in SHAPE_FIELDS):
            c = start.cfg
            raise InputError(
                f"init_from {config.init_from} has n_layer={c.n_layer}, n_head={c.n_head}, "
                f"d_model={c.d_model}, n_ctx={c.n_ctx}: pass that shape"
            )
        model = GPT2(start.cfg)
        model.load_state_dict(start.state_dict())
    else:
        model = initial_model(config)
    model.source = "gpt2atlas train"
    return model.to(device).train().requires_grad_(True)


def _run(
    config: TrainConfig,
    folder: RunFolder,
    tokens: TokenData,
    sampler: WindowSampler,
    procs: Processes,
    accumulation: int,
    resume: bool,
    overwrite: bool,
    time_limit_s: float | None,
    stop_at_step: int | None,
    progress: bool,
    log: Callable[[str], None],
) -> TrainResult:
    device = procs.device
    dtype = compute_dtype(config, device)
    model = _initial_model(config, device)
    optimizer = optimizer_for(model, config)
    step = 0
    if resume:
        step = folder.load_state(model, optimizer)
        if procs.is_main:
            folder.update_config(config)
            folder.truncate_metrics(step)
    elif procs.is_main:
        folder.start(config, tokens.manifest, overwrite)
    procs.barrier()

    loss_module: nn.Module = LanguageModelLoss(model, dtype)
    if config.compile:
        loss_module = torch.compile(loss_module)  # type: ignore[assignment]
    if procs.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        loss_module = DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)
    evaluator = LanguageModelLoss(model, dtype)
    val_windows = validation_windows(tokens.val, config.n_ctx, config.eval_tokens)
    per_process = config.batch_sequences // procs.world_size

    def evaluate() -> float | None:
        """Mean loss over the validation windows (every window has the same length, so a mean of means)."""
        if not len(val_windows):
            return None
        model.eval()
        with torch.no_grad():
            losses = [
                float(evaluator(batch.to(device))) * len(batch) for batch in val_windows.split(config.micro_batch)
            ]
        model.train()
        return sum(losses) / len(val_windows)

    started = time.perf_counter()
    earlier = folder.read_metrics() if resume and procs.is_main else []
    elapsed_before = earlier[-1].elapsed_s if earlier else 0.0  # metrics count the time of every sitting
    # which steps' weights are on disk, for error messages (every process keeps count; rank 0 writes)
    checkpoint_steps = [int(p.name.split("-")[1]) for p in folder.checkpoints()] if resume else []
    state_step: int | None = step if resume else None

    def save(step_now: int, train_loss: float | None, val_loss: float | None) -> None:
        if not (is_checkpoint_step(step_now) or step_now == config.max_steps):
            return
        if procs.is_main:
            info = {"tokens": step_now * config.batch_tokens, "train_loss": train_loss, "val_loss": val_loss}
            folder.save_checkpoint(model, step_now, info)
        checkpoint_steps.append(step_now)

    def save_state(step_now: int) -> None:
        nonlocal state_step
        if procs.is_main:
            folder.save_state(model, optimizer, step_now, config)
        state_step = step_now
        procs.barrier()

    def last_good_before(bad_step: int) -> str:
        """The newest saved weights older than `bad_step` (whose own weights gave a non-finite loss)."""
        older = [(s, 1, str(folder.checkpoint_dir(s))) for s in checkpoint_steps if s < bad_step]
        if state_step is not None and state_step < bad_step:  # a checkpoint of the same step is named first
            older.append((state_step, 0, f"{folder.state_dir} (step {state_step})"))
        return max(older)[2] if older else "none"

    if not resume:
        val0 = evaluate() if procs.is_main else None
        if procs.is_main:
            folder.append_metrics(Metrics(0, 0, learning_rate(config, 0), None, val0, None, None, 0.0))
            log(f"step 0: validation loss {val0:.4f}" if val0 is not None else "step 0")
        save(0, None, val0)
        save_state(0)

    from tqdm import tqdm

    bar = tqdm(
        total=config.max_steps, initial=step, unit="step", disable=not (progress and procs.is_main), dynamic_ncols=True
    )
    train_loss: float | None = None
    val_loss: float | None = None
    stopped_early = stop = False
    last_step = min(config.max_steps, stop_at_step) if stop_at_step is not None else config.max_steps
    with _stop_on_signals() as stop_requested, _closing(bar):
        while step < last_step:
            step_start = time.perf_counter()
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            first_window = step * config.batch_sequences + procs.rank * per_process
            loss_sum = torch.zeros((), device=device)
            for micro in range(accumulation):
                windows = sampler.windows(first_window + micro * config.micro_batch, config.micro_batch).to(device)
                sync = micro == accumulation - 1 or procs.world_size == 1
                with nullcontext() if sync else loss_module.no_sync():  # type: ignore[operator]
                    loss = loss_module(windows) / accumulation
                    loss.backward()
                loss_sum += loss.detach()
            loss_value = float(procs.mean(loss_sum))
            if not math.isfinite(loss_value):
                raise TrainingError(
                    f"the training loss became {loss_value} at step {step}; the last good checkpoint is "
                    f"{last_good_before(step)} (try a lower --lr, or --precision float32)"
                )
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_loss = loss_value
            tokens_per_s = config.batch_tokens / (time.perf_counter() - step_start)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)

            evaluate_now = step % config.eval_every == 0 or step == config.max_steps or is_checkpoint_step(step)
            val_loss = evaluate() if procs.is_main and evaluate_now else None
            if procs.is_main and (evaluate_now or step % config.log_every == 0):
                folder.append_metrics(
                    Metrics(
                        step,
                        step * config.batch_tokens,
                        lr,
                        loss_value,
                        val_loss,
                        grad_norm,
                        tokens_per_s,
                        elapsed_before + time.perf_counter() - started,
                    )
                )
            save(step, loss_value, val_loss)
            interrupted, out_of_time = procs.any(
                stop_requested(), time_limit_s is not None and time.perf_counter() - started > time_limit_s
            )
            stop = interrupted or out_of_time
            if stop or step % config.save_every == 0 or step == last_step:
                save_state(step)
            if stop:
                if interrupted:
                    raise TrainingInterrupted(
                        f"stopped: interrupted at step {step}: kept the state in {folder.state_dir} and the "
                        f"checkpoints in {folder.checkpoints_dir}; resume with: gpt2atlas train --resume {folder.path}"
                    )
                stopped_early = True
                log(
                    f"time limit reached at step {step}: saved {folder.state_dir}; resume with: "
                    f"gpt2atlas train --resume {folder.path}"
                )
                break
    stopped_early = stopped_early or step < config.max_steps
    if stopped_early and not stop and procs.is_main:
        log(f"stopped at step {step} of {config.max_steps}; resume with: gpt2atlas train --resume {folder.path}")
    return TrainResult(folder.path, step, step * config.batch_tokens, train_loss, val_loss, stopped_early)
