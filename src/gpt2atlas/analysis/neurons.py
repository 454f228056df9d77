"""MLP neurons: how many fire, which fire on each token, and what one neuron writes (the key-value memory view).

A neuron n of layer l reads the residual stream through column W_in[:, n] (its key) and, scaled by its GELU
activation, adds row W_out[n] (its value) back. Projected through the unembedding, W_out[n] @ W_U says which
next tokens the neuron pushes up (promotes) and down (suppresses) when it fires (no final LayerNorm applied).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from gpt2atlas.analysis.base import AnalysisResult, check_index, vocab_strings
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2, Block
from gpt2atlas.model.names import act_name

PROJECTION = "W_out[layer][neuron] @ W_U (direct effect on the logits per unit activation, no final LayerNorm)"


# ----- findings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveNeuron:
    """A neuron and its activation at one position."""

    layer: int
    neuron: int
    activation: float


@dataclass(frozen=True)
class TokenNeurons:
    """The most active neurons (over all layers) at one position of the prompt."""

    position: int
    token: str
    neurons: list[ActiveNeuron]


@dataclass(frozen=True)
class StrongNeuron:
    """A neuron and its largest activation on the prompt (positions >= 1 when there are any)."""

    layer: int
    neuron: int
    max_activation: float


@dataclass(frozen=True)
class TopToken:
    """Where the chosen neuron fires: prompt (0: the main one, then the extra prompts), position, token."""

    prompt: int
    position: int
    token: str
    activation: float


@dataclass(frozen=True)
class TokenLogit:
    """A vocabulary token and the logit change per unit of the neuron's activation."""

    token: str
    token_id: int
    logit: float


@dataclass(frozen=True)
class ChosenNeuron:
    """The neuron looked at closely (the user's, or the strongest): where it fires and what it writes."""

    layer: int
    neuron: int
    chosen_by: str
    top_tokens: list[TopToken]
    promotes: list[TokenLogit]
    suppresses: list[TokenLogit]
    projection: str
    input_weight_norm: float
    output_weight_norm: float


@dataclass(frozen=True)
class NeuronsFindings:
    tokens: list[str]
    token_ids: list[int]
    fraction_active_by_layer: list[float]
    fraction_active_definition: str
    top_neurons_by_token: list[TokenNeurons]
    strongest_neurons: list[StrongNeuron]  # strongest first
    neuron: ChosenNeuron
    prompts: list[str]  # the prompt, then the extra prompts


def _post_name(layer: int) -> str:
    return act_name("post", layer)


def neuron_activations(model: GPT2, tokens: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
    """GELU outputs (layer, pos, d_mlp) of the first sequence; the pass stops after the last layer asked for."""
    layers = list(range(model.cfg.n_layer)) if layers is None else list(layers)
    _, cache = model.run_with_cache(tokens, names=[_post_name(l) for l in layers], stop_at_layer=max(layers) + 1)
    return torch.stack([cache[_post_name(l)][0] for l in layers]).float()


def value_projection(model: GPT2, layer: int, neuron: int) -> torch.Tensor:
    """W_out[neuron] @ W_U: the logit change per unit of activation, for every vocabulary token (d_vocab,)."""
    block = cast(Block, model.blocks[layer])
    return (block.mlp.W_out[neuron] @ model.W_U).float()


def _token_rows(model: GPT2, logits: torch.Tensor, k: int, largest: bool) -> list[TokenLogit]:
    values, ids = logits.topk(k, largest=largest)
    vocab = vocab_strings(model)
    return [TokenLogit(vocab[int(i)], int(i), float(v)) for v, i in zip(values, ids)]


def _choose_neuron(acts: torch.Tensor, layer: int | None, neuron: int | None) -> tuple[int, int, str]:
    """(layer, neuron, chosen_by): the user's neuron, or the one with the largest activation (ignoring position 0,
    which GPT-2 treats apart)."""
    if layer is not None and neuron is not None:
        return layer, neuron, "user"
    if neuron is not None:
        raise InputError(
            f"neuron={neuron} needs layer= too: say which layer the neuron is in", arguments=("neuron", "layer")
        )
    body = acts[:, 1:] if acts.shape[1] > 1 else acts
    peak = body.amax(1)  # (layer, d_mlp)
    if layer is not None:
        return layer, int(peak[layer].argmax()), "largest activation in the layer"
    best = int(peak.argmax())
    return best // peak.shape[1], best % peak.shape[1], "largest activation on the prompt (positions >= 1)"


def _top_neurons_by_token(acts: torch.Tensor, tokens: list[str], k: int) -> list[TokenNeurons]:
    """For each position, the k most active neurons over all layers."""
    n_layer, n_pos, d_mlp = acts.shape
    flat = acts.permute(1, 0, 2).reshape(n_pos, n_layer * d_mlp)
    values, index = flat.topk(min(k, flat.shape[1]), dim=1)
    return [
        TokenNeurons(
            position=p,
            token=tokens[p],
            neurons=[ActiveNeuron(int(i) // d_mlp, int(i) % d_mlp, float(v)) for v, i in zip(values[p], index[p])],
        )
        for p in range(n_pos)
    ]


def _strongest_neurons(acts: torch.Tensor, count: int) -> list[StrongNeuron]:
    """The `count` neurons with the largest activation anywhere in the prompt (positions >= 1 when there are any)."""
    body = acts[:, 1:] if acts.shape[1] > 1 else acts
    peak = body.amax(1).flatten()
    values, index = peak.topk(min(count, peak.numel()))
    d_mlp = acts.shape[2]
    return [StrongNeuron(int(i) // d_mlp, int(i) % d_mlp, float(v)) for v, i in zip(values, index)]


class NeuronsResult(AnalysisResult[NeuronsFindings]):
    """Findings, plus the prompt's activations (layer, pos, d_mlp) for the heat maps."""

    area = "neurons"

    def __init__(self, findings: NeuronsFindings, activations: torch.Tensor) -> None:
        super().__init__(findings)
        self.activations = activations


def analyze(
    model: GPT2,
    prompt: str,
    *,
    layer: int | None = None,
    neuron: int | None = None,
    extra_prompts: Sequence[str] = (),
    top_k: int = 10,
    per_token: int = 5,
    heat_map_neurons: int = 24,
) -> NeuronsResult:
    """Neuron statistics on `prompt`; the chosen neuron's top activating tokens over `prompt` and `extra_prompts`."""
    cfg = model.cfg
    check_index(layer, cfg.n_layer, "layer")
    check_index(neuron, cfg.d_mlp, "neuron", "each layer")
    tokens = model.to_tokens(prompt)
    token_ids = tokens[0].tolist()
    str_tokens = model.tokenizer.to_str_tokens(token_ids)
    acts = neuron_activations(model, tokens).cpu()  # (layer, pos, d_mlp), read element by element below
    l, n, chosen_by = _choose_neuron(acts, layer, neuron)

    occurrences = [(0, p, str_tokens[p], float(a)) for p, a in enumerate(acts[l, :, n])]
    for index, text in enumerate(extra_prompts, start=1):
        ids = model.to_tokens(text)
        extra = neuron_activations(model, ids, [l])[0, :, n].cpu()
        names = model.tokenizer.to_str_tokens(ids[0].tolist())
        occurrences += [(index, p, names[p], float(a)) for p, a in enumerate(extra)]
    occurrences.sort(key=lambda o: -o[3])
    projection = value_projection(model, l, n)

    block = cast(Block, model.blocks[l])
    findings = NeuronsFindings(
        tokens=str_tokens,
        token_ids=token_ids,
        fraction_active_by_layer=(acts > 0).float().mean((1, 2)).tolist(),
        fraction_active_definition="share of GELU outputs > 0 over all positions and neurons of the layer",
        top_neurons_by_token=_top_neurons_by_token(acts, str_tokens, per_token),
        strongest_neurons=_strongest_neurons(acts, heat_map_neurons),
        neuron=ChosenNeuron(
            layer=l,
            neuron=n,
            chosen_by=chosen_by,
            top_tokens=[TopToken(i, p, t, a) for i, p, t, a in occurrences[:top_k]],
            promotes=_token_rows(model, projection, top_k, largest=True),
            suppresses=_token_rows(model, projection, top_k, largest=False),
            projection=PROJECTION,
            input_weight_norm=float(block.mlp.W_in[:, n].norm()),
            output_weight_norm=float(block.mlp.W_out[n].norm()),
        ),
        prompts=[prompt, *extra_prompts],
    )
    return NeuronsResult(findings, acts)
