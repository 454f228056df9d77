"""What a training run is: the model's shape and GPT-2/GPT-3's recipe, in one frozen, JSON-able config.

The recipe: AdamW (beta 0.9/0.95, eps 1e-8), weight decay 0.1 on matrices only (biases and LayerNorm gains
are not decayed), linear warm-up then cosine decay to 10% of the peak learning rate, gradient-norm clipping at
1.0, gradient accumulation up to a total batch counted in tokens, and a fixed seed for the initialisation and
the data order.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from gpt2atlas.errors import InputError, check_seed
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.gpt2 import GPT2

SHAPE_FIELDS = ("n_layer", "n_head", "d_model", "n_ctx")
# What a resumed run may change: how long it runs and how it is executed and watched, never the weights' path.
CHANGEABLE_ON_RESUME = frozenset(
    {"max_steps", "device", "micro_batch", "adamw", "compile", "eval_every", "eval_tokens", "log_every", "save_every"}
)

# Model shapes by name. `mini` is the shape of the model gpt2atlas ships; `small` is GPT-2 small.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"n_layer": 2, "n_head": 2, "d_model": 64, "n_ctx": 64},
    "mini": {"n_layer": 2, "n_head": 4, "d_model": 128, "n_ctx": 256},
    "small": {"n_layer": 12, "n_head": 12, "d_model": 768, "n_ctx": 1024},
    "medium": {"n_layer": 24, "n_head": 16, "d_model": 1024, "n_ctx": 1024},
}

WHOLE_AT_LEAST_1 = (
    "n_layer",
    "n_head",
    "d_model",
    "n_ctx",
    "max_steps",
    "batch_tokens",
    "micro_batch",
    "eval_every",
    "eval_tokens",
    "log_every",
    "save_every",
)
PRECISIONS = ("auto", "float32", "bfloat16")
ADAMW_IMPLEMENTATIONS = ("fused", "foreach")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result (and a few things that only decide how it is watched)."""

    data: str = "python-stdlib"
    # model shape (vocabulary: always GPT-2's 50,257 tokens)
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 128
    n_ctx: int = 256
    init_from: str | None = None  # start from these weights (anything load_model accepts) instead of GPT-2's init
    # recipe
    max_steps: int = 1000
    batch_tokens: int = 16 * 256  # tokens per optimizer step, over all processes
    micro_batch: int = 16  # sequences per forward pass on each process
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 0
    val_fraction: float = 0.05
    # how the run is executed and watched (none of these change the weights)
    precision: str = "auto"
    adamw: str = "fused"
    compile: bool = False
    device: str = "cpu"
    eval_every: int = 100
    eval_tokens: int = 32 * 1024
    log_every: int = 10
    save_every: int = 200

    def __post_init__(self) -> None:
        """One line per argument that does not fit, naming it, its value and what it may be."""
        for name in WHOLE_AT_LEAST_1:
            _check(name, getattr(self, name), _is_whole(getattr(self, name), 1), "must be a whole number >= 1")
        _check("warmup_steps", self.warmup_steps, _is_whole(self.warmup_steps, 0), "must be a whole number >= 0")
        check_seed(self.seed)
        _check("lr", self.lr, _is_real(self.lr) and self.lr > 0, "must be a finite number > 0")
        _check(
            "min_lr_ratio",
            self.min_lr_ratio,
            _is_real(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1,
            "must be a number in [0, 1] (the final learning rate as a share of lr)",
        )
        _check(
            "weight_decay",
            self.weight_decay,
            _is_real(self.weight_decay) and self.weight_decay >= 0,
            "must be a finite number >= 0",
        )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _check(name, value, _is_real(value) and 0 <= value < 1, "must be a number in [0, 1)")
        for name in ("eps", "grad_clip"):
            value = getattr(self, name)
            _check(name, value, _is_real(value) and value > 0, "must be a finite number > 0")
        _check(
            "val_fraction",
            self.val_fraction,
            _is_real(self.val_fraction) and 0 <= self.val_fraction < 1,
            "must be a number in [0, 1) (the share of documents held out)",
        )
        if self.d_model % self.n_head:
            raise InputError(
                f"d_model={self.d_model} is not divisible by n_head={self.n_head}: d_model must be a multiple "
                "of n_head",
                arguments=("d_model", "n_head"),
            )
        if self.batch_tokens % self.n_ctx:
            raise InputError(
                f"batch_tokens={self.batch_tokens} is not a multiple of n_ctx={self.n_ctx}: a batch is whole "
                f"sequences, e.g. batch_tokens={self.n_ctx * max(1, self.batch_tokens // self.n_ctx)}",
                arguments=("batch_tokens", "n_ctx"),
            )
        _check("precision", self.precision, self.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}")
        _check(
            "adamw",
            self.adamw,
            self.adamw in ADAMW_IMPLEMENTATIONS,
            f"must be one of {', '.join(ADAMW_IMPLEMENTATIONS)}",
        )

    @property
    def model_config(self) -> GPT2Config:
        return GPT2Config(n_layer=self.n_layer, n_head=self.n_head, d_model=self.d_model, n_ctx=self.n_ctx)

    @property
    def batch_sequences(self) -> int:
        return self.batch_tokens // self.n_ctx

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on each process; the total batch must split evenly."""
        per_process, rest = divmod(self.batch_sequences, world_size)
        if rest or per_process % self.micro_batch:
            raise InputError(
                f"a batch of {self.batch_sequences} sequences ({self.batch_tokens} tokens) does not split into "
                f"{world_size} process(es) x micro-batches of {self.micro_batch}: make batch_tokens a multiple of "
                f"n_ctx x micro_batch x processes = {self.n_ctx * self.micro_batch * world_size}"
            )
        return per_process // self.micro_batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _is_whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check(name: str, value: Any, fits: bool, rule: str) -> None:
    if not fits:
        raise InputError(f"{name}={value!r} {rule}", arguments=(name,))


def check_run_limits(threads: int | None, time_limit_s: float | None, stop_at_step: int | None) -> None:
    """Refuse, before anything starts, a thread count this machine does not have (torch would try to start
    them all), a time limit that is negative or not a number, and a negative step to stop at."""
    cores = os.cpu_count() or 1
    if threads is not None:
        _check(
            "threads",
            threads,
            _is_whole(threads, 1) and threads <= cores,
            f"must be a whole number in [1, {cores}] (this machine's CPUs)",
        )
    if time_limit_s is not None:
        _check(
            "time_limit_s",
            time_limit_s,
            isinstance(time_limit_s, (int, float)) and time_limit_s >= 0,
            "must be a number of seconds >= 0",
        )
    if stop_at_step is not None:
        _check("stop_at_step", stop_at_step, _is_whole(stop_at_step, 0), "must be a whole number >= 0")


def check_resumable(saved: TrainConfig, given: TrainConfig) -> None:
    """Refuse a config for resuming `saved` that changes its shape or its recipe (one line naming the field)."""
    for field in fields(TrainConfig):
        old, new = getattr(saved, field.name), getattr(given, field.name)
        if old == new or field.name in CHANGEABLE_ON_RESUME:
            continue
        if field.name in SHAPE_FIELDS:
            raise InputError(f"the run has {field.name}={old}, not {new}: a run's shape cannot change")
        raise InputError(
            f"{field.name} cannot change in a resumed run (it was {old!r}, not {new!r}); "
            f"only {', '.join(sorted(CHANGEABLE_ON_RESUME))} can"
        )


def preset_shape(name: str) -> dict[str, int]:
    """The shape fields of a preset, or a one-line error naming the presets."""
    if name not in PRESETS:
        raise InputError(f"preset={name!r} is unknown: use one of {', '.join(PRESETS)}", arguments=("preset",))
    return PRESETS[name]


def config_for(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """A config from a shape preset (mini by default) with the given fields changed (None means unchanged)."""
    fields_given: dict[str, Any] = {
        **preset_shape(preset or "mini"),
        **{k: v for k, v in overrides.items() if v is not None},
    }
    return TrainConfig(**fields_given)


def initial_model(config: TrainConfig) -> GPT2:
    """The weights a fresh run of `config` starts from: GPT-2's initialisation with the recipe's seed."""
    return GPT2(config.model_config).init_weights(seed=config.seed, scale_residual=True)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up from 0 to lr over warmup_steps, then cosine decay to min_lr_ratio x lr at max_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def compute_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """bfloat16 autocast where the hardware has fast bfloat16 matrix units, else float32 (precision='auto')."""
    if config.precision == "float32":
        return torch.float32
    if config.precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def optimizer_for(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (ndim >= 2) only."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    implementation = {"fused": True} if config.adamw == "fused" else {"foreach": True}
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps, **implementation)
