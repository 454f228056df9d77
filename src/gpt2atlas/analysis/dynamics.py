"""How a model learned: the existing measures, taken at every checkpoint of its training history.

For every checkpoint whose whole model is at hand: the head scores (previous-token, induction,
duplicate-token, first-token) on repeated sequences of tokens frequent in the training data, the logit lens's
agreement with the final prediction layer by layer, the TwoNN intrinsic dimension of the residual stream after
each layer, and the token embedding's strongest offset dimension. For every checkpoint's position-embedding
table: its roughness, its periodicity and the share of its variance in three principal components. With the
loss history, each is a curve over tokens seen, compared with the initial checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gpt2atlas.analysis.attention import (
    default_id_range,
    prompt_scores,
    reduce_patterns,
    repeat_scores,
    repeated_sequences,
    uniform_baselines,
)
from gpt2atlas.analysis.base import ProgressCallback
from gpt2atlas.analysis.embeddings import active_dims, dominant_period, offset_dims, pca
from gpt2atlas.analysis.journey import lens_log_probs
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import residual_names
from gpt2atlas.training.history import LossPoint, TrainingHistory

HEAD_SCORES = ("prev_token", "induction", "duplicate", "bos")
REPEAT_HALF = 50  # each probe sequence: [eot, r_1..r_50, r_1..r_50] (shorter where the context is)
REPEAT_BATCH = 24
PERIODIC_DIMS = 8  # position dims (the most active ones) whose periodicity is averaged
# A short English text for the logit lens: the prompts people type are English.
LENS_TEXT = (
    "The history of the city begins with a small settlement on the river. Over the following centuries it grew "
    "into a busy market town, and by the end of the nineteenth century it had become one of the largest "
    "industrial centres in the country. Today the old factories have been turned into museums, offices and "
    "apartments, and the river banks are lined with parks where people walk, run and ride their bicycles."
)


@dataclass(frozen=True)
class PositionShape:
    """The position-embedding table at one checkpoint."""

    step: int
    tokens: int | None
    roughness: float  # mean |p[i+1] - p[i]| / mean |p[i]|: about 1.4 for noise, near 0 for smooth curves
    periodicity: float  # mean share of a dim's variance held by its best sinusoid, over the most active dims
    pca3_share: float  # share of the table's variance in its first three principal components


@dataclass(frozen=True)
class HeadScores:
    """One score of every head at one checkpoint: values[layer][head]."""

    name: str
    values: list[list[float]]

    def best(self) -> tuple[int, int, float]:
        array = np.asarray(self.values)
        layer, head = np.unravel_index(int(np.nanargmax(array)), array.shape)
        return int(layer), int(head), float(array[layer, head])


@dataclass(frozen=True)
class CheckpointMeasures:
    """Everything measured on one whole checkpoint."""

    step: int
    tokens: int | None
    label: str
    heads: list[HeadScores]
    lens_agreement: list[float]  # per layer (embeddings, then after each block): share of positions whose
    # logit-lens top-1 equals the model's final top-1
    intrinsic_dimension: list[float]  # TwoNN of the residual stream after each block
    token_offset_z: float  # the token embedding's strongest offset dimension, as a z-score over dims

    def head(self, name: str) -> HeadScores:
        return next(h for h in self.heads if h.name == name)


@dataclass(frozen=True)
class Appearance:
    """When one structure appeared: its value at initialisation and at the end, and when it got half-way."""

    what: str
    initial: float
    final: float
    halfway_tokens: int | None  # first checkpoint at which it had made half its change from the initial value
    halfway_step: int
    before_tokens: int | None  # the checkpoint before that one (the change crossed half-way in between)
    before_step: int


@dataclass(frozen=True)
class Dynamics:
    """How one model learned."""

    model: str
    note: str
    losses: list[LossPoint]
    positions: list[PositionShape]
    checkpoints: list[CheckpointMeasures]
    uniform_head: dict[str, float]  # what a head attending evenly scores on the same probes
    appearances: list[Appearance]
    probe: str  # which tokens the head-score probes were drawn from


# ----- position embeddings -----------------------------------------------------------------------------------
def position_roughness(table: torch.Tensor) -> float:
    """Mean distance between neighbouring rows over the mean row norm."""
    table = table.double()
    return float((table[1:] - table[:-1]).norm(dim=1).mean() / table.norm(dim=1).mean())


def position_shape(step: int, tokens: int | None, table: torch.Tensor) -> PositionShape:
    dims = [row.dim for row in active_dims(table, PERIODIC_DIMS)]
    shares = [dominant_period(table[:, d].double().numpy()).power_share for d in dims]
    return PositionShape(
        step, tokens, position_roughness(table), float(np.mean(shares)), float(pca(table).ratio[:3].sum())
    )


# ----- whole checkpoints -------------------------------------------------------------------------------------
def repeat_half(n_ctx: int) -> int:
    return min(REPEAT_HALF, (n_ctx - 1) // 2)


def probe_sequences(model: GPT2, probe_ids: list[int] | None, half: int, seed: int = 0) -> torch.Tensor:
    """The attention analysis's repeated sequences, drawn from the probe tokens (or its default id range)."""
    pool = torch.tensor(probe_ids) if probe_ids else torch.arange(*default_id_range(model))
    return repeated_sequences(model, pool, half, REPEAT_BATCH, seed)


def _head_scores(model: GPT2, sequences: torch.Tensor) -> list[HeadScores]:
    half = (sequences.shape[1] - 1) // 2

    def reduce(pattern: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = {**prompt_scores(pattern), **repeat_scores(pattern, half)}
        return {name: scores[name].mean(0) for name in HEAD_SCORES}  # mean over the batch: (head,)

    layers = reduce_patterns(model, sequences, reduce)
    return [HeadScores(name, [layer[name].tolist() for layer in layers]) for name in HEAD_SCORES]


def _lens_and_dimension(model: GPT2, tokens: torch.Tensor) -> tuple[list[float], list[float]]:
    from gpt2atlas.geometry.estimators import twonn
    from gpt2atlas.numerics.neighbours import unique_rows

    names = residual_names(model.cfg.n_layer)
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens, names=names)
        states = [cache[name][0].float() for name in names]
        top = [lens_log_probs(model, state).argmax(-1) for state in states]
        agreement = [float((t == top[-1]).float().mean()) for t in top]
    dimensions = []
    for state in states[1:]:
        points = unique_rows(state.numpy().astype(np.float64))
        dimensions.append(float(twonn(points).id) if len(points) > 20 else math.nan)
    return agreement, dimensions


def measure_checkpoint(
    model: GPT2, step: int, tokens: int | None, label: str, sequences: torch.Tensor, lens_tokens: torch.Tensor
) -> CheckpointMeasures:
    agreement, dimensions = _lens_and_dimension(model, lens_tokens)
    offsets = offset_dims(model.W_E.detach(), 1)
    return CheckpointMeasures(
        step, tokens, label, _head_scores(model, sequences), agreement, dimensions, abs(offsets[0].z)
    )


# ----- when things appeared ----------------------------------------------------------------------------------
def _halfway(what: str, points: list[tuple[int, int | None, float]]) -> Appearance:
    """The first checkpoint that had made half the change between the first and the last value."""
    (_, _, first), (_, _, last) = points[0], points[-1]
    middle = first + 0.5 * (last - first)
    rising = last >= first
    index = next(i for i, (_, _, v) in enumerate(points) if (v >= middle if rising else v <= middle))
    before = points[max(0, index - 1)]
    return Appearance(what, first, last, points[index][1], points[index][0], before[1], before[0])


def appearances(positions: list[PositionShape], checkpoints: list[CheckpointMeasures]) -> list[Appearance]:
    found = [
        _halfway("position roughness", [(p.step, p.tokens, p.roughness) for p in positions]),
        _halfway("position PCA-3 share", [(p.step, p.tokens, p.pca3_share) for p in positions]),
    ]
    if len(checkpoints) >= 2:
        final = checkpoints[-1]
        for name in ("prev_token", "induction"):
            layer, head, _ = final.head(name).best()
            series = [(c.step, c.tokens, c.head(name).values[layer][head]) for c in checkpoints]
            found.append(_halfway(f"{name} score of head {layer}.{head}", series))
    return found


def analyze(
    history: TrainingHistory, *, progress: bool = True, on_progress: ProgressCallback | None = None
) -> Dynamics:
    """Measure every checkpoint of `history` (see the module docstring); `on_progress("checkpoints", done, total)`
    follows the checkpoints."""
    from tqdm import tqdm

    positions = [position_shape(step, tokens, table) for step, tokens, table in history.positions]
    checkpoints: list[CheckpointMeasures] = []
    probes: tuple[torch.Tensor, torch.Tensor] | None = None  # (repeated sequences, lens text), once
    half = REPEAT_HALF
    with tqdm(history.snapshots, desc="measuring checkpoints", disable=not progress, leave=False) as bar:
        for done, snapshot in enumerate(bar):  # a failure closes the bar before its error is printed
            if on_progress is not None:
                on_progress("checkpoints", done, len(history.snapshots))
            model = snapshot.load()
            if probes is None:
                half = repeat_half(model.cfg.n_ctx)
                probes = (
                    probe_sequences(model, history.probe_ids, half),
                    torch.tensor([model.tokenizer.encode(LENS_TEXT)[: model.cfg.n_ctx]]),
                )
            sequences, lens_tokens = probes
            checkpoints.append(
                measure_checkpoint(model, snapshot.step, snapshot.tokens, snapshot.label, sequences, lens_tokens)
            )
    uniform = uniform_baselines(half * 2 + 1, half)
    probe = (
        "the 2,000 tokens most frequent in the training data"
        if history.probe_ids
        else "token ids 1,000-20,000 (the training data's frequent tokens are unknown)"
    )
    return Dynamics(
        history.name,
        history.note,
        history.losses,
        positions,
        checkpoints,
        {name: uniform[name] for name in ("prev_token", "induction", "duplicate", "bos")},
        appearances(positions, checkpoints),
        probe,
    )
