"""Dashboard pickers that steer one analysis: which neuron, which token, which LayerNorm, which target, which
weight. Each renders its widgets and returns the analysis options they chose, as (name, value) pairs (hashable,
so the cached analysis is reused whenever a picker comes back to a value it had).

Streamlit is imported when a picker is drawn: the report and the command line, which import every spec, do not
load it.
"""

from __future__ import annotations

from types import ModuleType

from gpt2atlas.model.gpt2 import GPT2

STRONGEST = "strongest on the prompt"


def streamlit() -> ModuleType:
    import streamlit as st

    return st


def prompt_tokens(model: GPT2, prompt: str) -> list[str]:
    return model.to_str_tokens(model.to_tokens(prompt)[0].tolist())


def neuron(model: GPT2, prompt: str) -> tuple:
    """A layer (or the strongest neuron anywhere) and a neuron number within it."""
    left, right = streamlit().columns(2)
    layer = left.selectbox("Neuron layer", [STRONGEST, *range(model.cfg.n_layer)], key="neuron_layer")
    if layer == STRONGEST:
        return ()
    number = right.number_input(
        "Neuron (-1: the strongest of the layer)", -1, model.cfg.d_mlp - 1, -1, key="neuron_number"
    )
    return (("layer", int(layer)),) + ((("neuron", int(number)),) if number >= 0 else ())


def token(model: GPT2, prompt: str) -> tuple:
    """The position whose journey is traced (default: the last token)."""
    tokens = prompt_tokens(model, prompt)
    position = streamlit().selectbox(
        "Token to trace",
        list(range(len(tokens))),
        index=len(tokens) - 1,
        format_func=lambda p: f"{p}: {tokens[p]!r}",
        key="journey_position",
    )
    return (("position", int(position)),)


def layernorm(model: GPT2, prompt: str) -> tuple:
    """The block whose LayerNorm steps are drawn in 3-D (and whose MLP shows GELU)."""
    layer = streamlit().selectbox("LayerNorm of block", list(range(model.cfg.n_layer)), key="layernorm_layer")
    return (("layer", int(layer)),)


def target(model: GPT2, prompt: str) -> tuple:
    """The next token whose logit is attributed (default: the model's top guess)."""
    text = streamlit().text_input("Target next token (empty: the model's top guess)", key="saliency_target")
    return (("target", text),) if text else ()


def weight(model: GPT2) -> tuple:
    """A parameter and, optionally, a block of its rows and columns."""
    from gpt2atlas.analysis.summary import parameter_rows

    names = [row.name for row in parameter_rows(model)]
    left, middle, right = streamlit().columns([2, 1, 1])
    first = names.index("blocks.0.attn.W_QKV") if "blocks.0.attn.W_QKV" in names else 0
    param = left.selectbox("Weight", names, index=first, key="weights_param")
    rows = middle.text_input("Rows (a:b, empty: all)", key="weights_rows")
    cols = right.text_input("Columns (a:b, empty: all)", key="weights_cols")
    return (("param", param),) + ((("rows", rows),) if rows else ()) + ((("cols", cols),) if cols else ())
