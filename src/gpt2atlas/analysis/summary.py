"""Model summary: configuration, every parameter tensor, and parameter counts per component."""

from __future__ import annotations

from dataclasses import dataclass

from gpt2atlas.model.gpt2 import GPT2


@dataclass(frozen=True)
class ParameterRow:
    name: str
    shape: tuple[int, ...]
    count: int
    component: str  # token_embedding, position_embedding, attention, mlp, layernorm, final_layernorm
    layer: int | None


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


def summary(model: GPT2) -> dict:
    """Config, source, parameter counts and tensors as plain data."""
    return {
        "source": model.source,
        "config": model.cfg.to_dict(),
        "parameter_counts": parameter_counts(model),
        "parameters": [
            {"name": r.name, "shape": list(r.shape), "count": r.count, "component": r.component, "layer": r.layer}
            for r in parameter_rows(model)
        ],
        "unembedding": "tied to the token embedding (W_U = W_E^T), counted once",
    }
