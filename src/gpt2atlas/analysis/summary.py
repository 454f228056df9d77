"""Model summary: configuration, every parameter tensor, and parameter counts per component."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.gpt2 import GPT2


@dataclass(frozen=True)
class ParameterRow:
    """One parameter tensor (its shape is written to the JSON as a list)."""

    name: str
    shape: tuple[int, ...]
    count: int
    component: str  # token_embedding, position_embedding, attention, mlp, layernorm, final_layernorm
    layer: int | None


@dataclass(frozen=True)
class ConfigValues:
    """The model's hyper-parameters as written to the findings: GPT2Config's fields, then d_head."""

    n_layer: int
    n_head: int
    d_model: int
    n_ctx: int
    d_vocab: int
    layer_norm_eps: float
    d_mlp: int
    scale_attn_by_inverse_layer_idx: bool
    reorder_and_upcast_attn: bool
    d_head: int

    @classmethod
    def of(cls, cfg: GPT2Config) -> ConfigValues:
        return cls(**cfg.to_dict())

    def settings(self) -> dict[str, int | float | bool]:
        """Setting -> value, in field order (for tables)."""
        return asdict(self)


@dataclass(frozen=True)
class ModelSummary:
    source: str
    config: ConfigValues
    parameter_counts: dict[str, int]  # component -> parameters, then "total"
    parameters: list[ParameterRow]
    unembedding: str


@dataclass(frozen=True)
class SummaryFindings:
    """What the report keeps of the summary (the parameter tensors are left out)."""

    source: str
    config: ConfigValues
    parameter_counts: dict[str, int]


def _component(name: str) -> tuple[str, int | None]:
    parts = name.split(".")
    if parts[0] == "embed":
        return "token_embedding", None
    if parts[0] == "pos_embed":
        return "position_embedding", None
    if parts[0] == "ln_final":
        return "final_layernorm", None
    layer = int(parts[1])
    kind = {"attn": "attention", "mlp": "mlp", "ln1": "layernorm", "ln2": "layernorm"}[parts[2]]
    return kind, layer


def parameter_rows(model: GPT2) -> list[ParameterRow]:
    """Every parameter tensor in forward order. The unembedding is W_E itself (tied), so it is counted once."""
    rows = []
    for name, p in model.named_parameters():
        component, layer = _component(name)
        rows.append(ParameterRow(name, tuple(p.shape), p.numel(), component, layer))
    return rows


def parameter_counts(model: GPT2) -> dict[str, int]:
    """Parameters per component, and `total` (124,439,808 for gpt2)."""
    counts: dict[str, int] = {}
    for row in parameter_rows(model):
        counts[row.component] = counts.get(row.component, 0) + row.count
    counts["total"] = sum(r.count for r in parameter_rows(model))
    return counts


def summary(model: GPT2) -> ModelSummary:
    """Config, source, parameter counts and tensors."""
    return ModelSummary(
        source=model.source,
        config=ConfigValues.of(model.cfg),
        parameter_counts=parameter_counts(model),
        parameters=parameter_rows(model),
        unembedding="tied to the token embedding (W_U = W_E^T), counted once",
    )
