"""The token's journey: how the next-token prediction forms layer by layer, and how the stream moves.

Logit lens: the residual stream after the embedding and after every block, passed through the final LayerNorm
and the unembedding. Every state is read *before* ln_final, so the lens of the last state is exactly the model's
output. (Hugging Face's last `hidden_states` entry is already after ln_final: comparing it with the earlier,
un-normalised entries shows a fake "collapse" at the last layer. This module does not fall into that.)

Alongside: cosine similarities of each position's residual with the previous layer's, with its own and the next
token's embedding and with the last position; the spread of the token cloud; and the 2D trajectory of one token
(PCA of the unit-normalised states, and a UMAP map fitted on a sample of token embeddings).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch

from gpt2atlas.analysis.base import AnalysisResult, optional, vocab_strings
from gpt2atlas.analysis.residual import position_policy, residual_states, stat_positions, state_hooks, state_names
from gpt2atlas.errors import InputError, check_seed
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.numerics.pca import fit_pca

UMAP_SAMPLE = 2000
UMAP_NEIGHBOURS = 15
UMAP_EPOCHS = 200  # umap-learn uses 500 on small data; 200 gives the same picture in less than half the time
UMAP_MIN_DIST = 0.1
KL_DEFINITION = "KL(final || layer) = sum_v p_final(v) (log p_final(v) - log p_layer(v)), in nats"
RANK_DEFINITION = "rank of the model's final top-1 token in the layer's lens distribution (0 = top)"


# ----- findings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LensGuess:
    """One of the logit lens's top-k tokens at a (state, position)."""

    token: str
    id: int
    prob: float


@dataclass(frozen=True)
class CosineTable:
    """A stream cosine: its per-layer mean over the statistics' positions, and every (state, position) value
    (None where undefined)."""

    mean: list[float | None]
    per_position: list[list[float | None]]


@dataclass(frozen=True)
class StreamCosines:
    """Cosine of each position's residual with the previous layer's, its own and the next token's embedding, and
    the last position's residual."""

    previous_layer: CosineTable
    own_embedding: CosineTable
    next_token_embedding: CosineTable
    last_position: CosineTable


@dataclass(frozen=True)
class Trajectory:
    """The traced token through the layers: its PCA path, and (when UMAP ran) its path on the token map."""

    position: int
    token: str
    pca: list[list[float]]  # (state, 2)
    pca_explained_variance_ratio: list[float]
    pca_fit: str
    umap: list[list[float]] | None = optional()  # (state, 2)
    umap_sample_size: int | None = optional()
    umap_seed: int | None = optional()
    nearest_sampled_token: list[str] | None = optional()
    umap_fit: str | None = optional()


@dataclass(frozen=True)
class JourneyFindings:
    tokens: list[str]
    token_ids: list[int]
    position_0_excluded: bool
    position_note: str
    layers: list[str]  # the states: "embed", "block 0", ...
    layer_hooks: list[str]
    read_before_ln_final: bool
    lens_note: str
    top1: list[list[str]]  # [state][position]
    top1_prob: list[list[float]]
    top_k: list[list[list[LensGuess]]]  # [state][position][rank]
    final_token_rank: list[list[int]]
    final_token_rank_definition: str
    kl_to_final: list[list[float]]
    kl_definition: str
    kl_to_final_mean: list[float]
    lens_vs_model_max_abs_diff: float
    cosine: StreamCosines
    centroid_distance_mean: list[float]
    covariance_trace: list[float]
    trajectory: Trajectory


# ----- the logit lens -------------------------------------------------------------------------------------------
LENS_ROWS = 512  # (state, position) rows unembedded at once: a 512 x 50,257 float table is 103 MB


def lens_log_probs(model: GPT2, state: torch.Tensor) -> torch.Tensor:
    """log-softmax(ln_final(state) @ W_U) for a (..., d_model) residual state (computed on the model's device)."""
    with torch.inference_mode():
        return model.unembed(model.ln_final(state.to(model.device, model.dtype))).float().log_softmax(dim=-1)


def logit_lens(model: GPT2, states: torch.Tensor, top_k: int) -> dict[str, torch.Tensor]:
    """Top-k ids/probs, the final top-1's rank and KL to the final distribution, for every (state, position).

    States go through the unembedding several at a time, up to LENS_ROWS rows (one matrix product streams the
    50,257 x d_model matrix once for all of them), so memory stays at a few (rows, vocab) tables however many
    layers. The groups run last first: the final distribution, which the others are compared with, comes first.
    """
    n_pos = states.shape[1]
    groups = list(states.split(max(1, LENS_ROWS // n_pos)))
    final = final_top = p_final = None
    parts: dict[str, list[torch.Tensor]] = {"top_probs": [], "top_ids": [], "rank": [], "kl": []}
    for group in reversed(groups):
        log_p = lens_log_probs(model, group)  # (states in group, pos, vocab)
        if final is None:
            final = log_p[-1].clone()  # log_p is overwritten below
            final_top = final.argmax(dim=-1, keepdim=True)
            p_final = final.exp()
        assert final_top is not None and p_final is not None  # set by the first (last) group
        values, ids = log_p.topk(top_k, dim=-1)
        parts["top_probs"].append(values.exp().cpu())
        parts["top_ids"].append(ids.cpu())
        parts["rank"].append((log_p > log_p.gather(-1, final_top.expand(len(group), -1, -1))).sum(dim=-1).cpu())
        with torch.inference_mode():  # in place, as log_p (an inference tensor) is not needed after this
            kl = torch.sub(final, log_p, out=log_p).mul_(p_final).sum(dim=-1)
        parts["kl"].append(kl.clamp_min(0.0).cpu())
    lens = {name: torch.cat(part[::-1]) for name, part in parts.items()}
    assert final is not None  # there is at least one group
    return {**lens, "final_log_probs": final}


# ----- geometry of the stream ------------------------------------------------------------------------------------
def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def stream_cosines(states: torch.Tensor, token_embeds: torch.Tensor) -> dict[str, torch.Tensor]:
    """(state, pos) cosine tables; NaN where undefined (no previous layer, no next token)."""
    n_state, n_pos, _ = states.shape
    previous = torch.cat([torch.full((1, n_pos), float("nan")), _cosine(states[1:], states[:-1])])
    own = _cosine(states, token_embeds[None])
    following = torch.cat([_cosine(states[:, :-1], token_embeds[None, 1:]), torch.full((n_state, 1), float("nan"))], 1)
    last = _cosine(states, states[:, -1:])
    return {"previous_layer": previous, "own_embedding": own, "next_token_embedding": following, "last_position": last}


def _undefined_as_none(values: list[float]) -> list[float | None]:
    """A cosine with nothing to compare (layer 0's previous layer, the last position's next token) is NaN by
    construction: it is written as null (not defined here), not as the "NaN" mark of a number that went wrong."""
    return [None if math.isnan(x) else x for x in values]


def cosine_summary(tables: dict[str, torch.Tensor], positions: torch.Tensor) -> StreamCosines:
    """Per-layer means over the statistics' positions (the last position is left out of its own column).

    Undefined cells (NaN) become None, as they will in findings.json.
    """
    summary = {}
    for name, table in tables.items():
        used = positions[positions != table.shape[1] - 1] if name == "last_position" else positions
        mean = table[:, used].nanmean(dim=1) if len(used) else torch.full((table.shape[0],), float("nan"))
        summary[name] = CosineTable(
            mean=_undefined_as_none(mean.tolist()), per_position=[_undefined_as_none(row) for row in table.tolist()]
        )
    return StreamCosines(**summary)


def cloud_spread(states: torch.Tensor) -> dict[str, list[float]]:
    """Mean distance to the centroid and covariance trace (sum of per-dim variances) of each state's tokens."""
    centred = states - states.mean(dim=1, keepdim=True)
    n = states.shape[1]
    return {
        "centroid_distance_mean": centred.norm(dim=-1).mean(dim=1).tolist(),
        "covariance_trace": (centred.pow(2).sum(dim=(1, 2)) / max(n - 1, 1)).tolist(),
    }


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def pca_trajectories(states: torch.Tensor, fit_positions: torch.Tensor) -> tuple[np.ndarray, list[float]]:
    """(state, pos, 2) coordinates of every unit-normalised state on the top-2 PCs of the fitted positions."""
    units = _unit(states.double())
    fit = fit_pca(units[:, fit_positions].reshape(-1, units.shape[-1]))
    flat = fit.project(units.reshape(-1, units.shape[-1]), 2)
    ratio = [float(r) for r in fit.ratio[:2]] + [0.0] * max(0, 2 - len(fit.ratio))
    return flat.reshape(*units.shape[:-1], flat.shape[-1]), ratio


# ----- UMAP map of the token embeddings ----------------------------------------------------------------------------
def smooth_memberships(distances: np.ndarray, rho: np.ndarray, n_neighbors: int, n_iter: int = 64) -> np.ndarray:
    """UMAP's smooth kNN memberships exp(-max(d - rho, 0) / sigma), sigma set per row so the row sums to
    log2(n_neighbors) (bisection, all rows at once; sigma floored at 1e-3 x the mean distance, as UMAP does)."""
    gaps = np.maximum(distances - rho[:, None], 0.0)
    target = math.log2(n_neighbors)
    lo, hi = np.zeros(len(gaps)), np.full(len(gaps), np.inf)
    sigma = np.ones(len(gaps))
    for _ in range(n_iter):
        too_big = np.exp(-gaps / sigma[:, None]).sum(axis=1) > target
        hi = np.where(too_big, sigma, hi)
        lo = np.where(too_big, lo, sigma)
        sigma = np.where(np.isinf(hi), sigma * 2, (lo + hi) / 2)
    sigma = np.maximum(sigma, 1e-3 * float(distances.mean()) + 1e-12)
    return np.exp(-gaps / sigma[:, None])


def fuzzy_graph(knn: np.ndarray, distances: np.ndarray) -> sp.coo_matrix:
    """UMAP's fuzzy simplicial set from an exact kNN table whose first column is each point itself:
    memberships to the other neighbours (rho = the nearest one's distance), then the fuzzy union A + A^T - A*A^T.
    Equal to umap-learn's `fuzzy_simplicial_set` on the same table (to float32 rounding; tested)."""
    n, k = knn.shape
    memberships = smooth_memberships(distances[:, 1:], distances[:, 1], k)
    rows = np.repeat(np.arange(n), k - 1)
    graph = sp.csr_matrix((memberships.ravel(), (rows, knn[:, 1:].ravel())), shape=(n, n))
    return (graph + graph.T - graph.multiply(graph.T)).tocoo()


def umap_sample_ids(model: GPT2, must_have: Sequence[int], size: int, seed: int) -> np.ndarray:
    """A fixed-seed sample of token ids, always holding `must_have` (the prompt and the predictions)."""
    gen = torch.Generator().manual_seed(seed)
    drawn = torch.randperm(model.cfg.d_vocab, generator=gen)[:size].tolist()
    return np.array(list(dict.fromkeys(list(must_have) + drawn)))


def umap_map(
    model: GPT2, points: torch.Tensor, sample_ids: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UMAP (cosine) of the sampled token embeddings, `points` placed in that map, and each point's nearest
    sampled token id.

    UMAP's steps: the exact kNN graph (one matmul), its fuzzy simplicial set (`fuzzy_graph`: the same formulas
    as umap-learn, vectorised, which also spares umap-learn's multi-second JIT compilation of them), then
    umap-learn's own layout optimisation. A point is placed at the membership-weighted mean of its nearest
    sampled tokens (rho = 0): where umap-learn's `transform` starts a new point.
    """
    from umap.umap_ import find_ab_params, simplicial_set_embedding

    embeds = _unit(model.W_E.detach()[torch.as_tensor(sample_ids, device=model.device)].float().cpu())
    k = min(UMAP_NEIGHBOURS, len(sample_ids) - 1)
    sims, knn = (embeds @ embeds.T).topk(k + 1, dim=1)
    distances = (1 - sims).clamp_min(0).double().numpy()
    a, b = find_ab_params(1.0, UMAP_MIN_DIST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords, _ = simplicial_set_embedding(
            data=embeds.numpy(),
            graph=fuzzy_graph(knn.numpy(), distances),
            n_components=2,
            initial_alpha=1.0,
            a=a,
            b=b,
            gamma=1.0,
            negative_sample_rate=5,
            n_epochs=UMAP_EPOCHS,
            init="spectral",
            random_state=np.random.RandomState(seed),
            metric="cosine",
            metric_kwds={},
            densmap=False,
            densmap_kwds={},
            output_dens=False,
        )
    point_sims, point_knn = (_unit(points.float()) @ embeds.T).topk(k, dim=1)
    point_distances = (1 - point_sims).clamp_min(0).double().numpy()
    weights = smooth_memberships(point_distances, np.zeros(len(point_distances)), k)
    weights /= weights.sum(axis=1, keepdims=True)
    placed = (weights[:, :, None] * coords[point_knn.numpy()]).sum(axis=1)
    return coords, placed, sample_ids[point_knn[:, 0].numpy()]


# ----- the analysis -------------------------------------------------------------------------------------------------
def _check_position(position: int | None, n_tokens: int) -> int:
    if position is None:
        return n_tokens - 1
    if not -n_tokens <= position < n_tokens:
        raise InputError(
            f"position={position} is out of range: the prompt has {n_tokens} tokens (0..{n_tokens - 1})",
            arguments=("position",),
        )
    return position % n_tokens


def _top_k_rows(model: GPT2, ids: list, probs: list) -> list[list[list[LensGuess]]]:
    """[state][position] lists of guesses, from nested (state, pos, k) lists."""
    vocab = vocab_strings(model)
    return [
        [
            [LensGuess(token=vocab[i], id=i, prob=p) for i, p in zip(ids_pos, probs_pos)]
            for ids_pos, probs_pos in zip(ids_state, probs_state)
        ]
        for ids_state, probs_state in zip(ids, probs)
    ]


@dataclass(frozen=True)
class UmapPoints:
    """The token sample the UMAP map was fitted on: its 2-D coordinates, token ids and token strings."""

    coords: np.ndarray  # (n, 2)
    ids: list[int]
    tokens: list[str]


class JourneyResult(AnalysisResult[JourneyFindings]):
    """Findings, plus the PCA coordinates of every position and the UMAP map's sample for the figures."""

    area = "journey"

    def __init__(self, findings: JourneyFindings, pca: np.ndarray, umap_points: UmapPoints | None) -> None:
        super().__init__(findings)
        self.pca = pca  # (state, pos, 2)
        self.umap_points = umap_points


def analyze(
    model: GPT2,
    prompt: str,
    *,
    top_k: int = 5,
    position: int | None = None,
    include_first: bool = False,
    projections: Sequence[str] = ("pca", "umap"),
    umap_sample: int = UMAP_SAMPLE,
    seed: int = 0,
) -> JourneyResult:
    """Logit lens, stream cosines, cloud spread and one token's trajectory on `prompt`."""
    check_seed(seed)
    unknown = set(projections) - {"pca", "umap"}
    if unknown:
        raise InputError(
            f"projections={','.join(projections)!r}: unknown projection '{min(unknown)}': use pca and/or umap",
            arguments=("projections",),
        )
    if not 1 <= top_k <= model.cfg.d_vocab:
        raise InputError(f"top_k={top_k} must be between 1 and {model.cfg.d_vocab}", arguments=("top_k",))
    if "umap" in projections and umap_sample < UMAP_NEIGHBOURS:
        raise InputError(f"umap_sample={umap_sample} must be at least {UMAP_NEIGHBOURS}", arguments=("umap_sample",))
    n_layer = model.cfg.n_layer
    tokens = model.to_tokens(prompt)
    token_ids = tokens[0].tolist()
    n_tokens = len(token_ids)
    position = _check_position(position, n_tokens)
    states, _, logits = residual_states(model, tokens)
    positions = stat_positions(n_tokens, include_first)

    lens = logit_lens(model, states, top_k)
    model_log_probs = logits[0].float().log_softmax(dim=-1).to(lens["final_log_probs"].device)
    str_tokens = model.tokenizer.to_str_tokens(token_ids)
    top_rows = _top_k_rows(model, lens["top_ids"].tolist(), lens["top_probs"].tolist())
    token_embeds = model.W_E[tokens[0]].detach().float().cpu()
    fit_positions = torch.unique(torch.cat([positions, torch.tensor([position])]))
    pca, pca_ratio = pca_trajectories(states, fit_positions)

    trajectory = Trajectory(
        position=position,
        token=str_tokens[position],
        pca=pca[:, position].tolist(),
        pca_explained_variance_ratio=pca_ratio,
        pca_fit="unit-normalised residuals of the statistics' positions (and this one) at every layer",
    )
    umap_points: UmapPoints | None = None
    if "umap" in projections:
        predicted = lens["top_ids"][-1, :, 0].tolist()
        sample_ids = umap_sample_ids(model, token_ids + predicted, umap_sample, seed)
        coords, placed, nearest = umap_map(model, states[:, position], sample_ids, seed)
        vocab = vocab_strings(model)
        trajectory = replace(
            trajectory,
            umap=placed.tolist(),
            umap_sample_size=len(sample_ids),
            umap_seed=seed,
            nearest_sampled_token=[vocab[i] for i in nearest.tolist()],
            umap_fit=f"cosine UMAP (exact {UMAP_NEIGHBOURS}-NN graph, min_dist {UMAP_MIN_DIST:g}, {UMAP_EPOCHS} "
            "epochs) of a sample of token embeddings holding the prompt's and predicted tokens; each "
            "state placed at the membership-weighted mean of its nearest sampled tokens",
        )
        umap_points = UmapPoints(coords, sample_ids.tolist(), [vocab[i] for i in sample_ids.tolist()])

    policy = position_policy(n_tokens, include_first)
    spread = cloud_spread(states[:, positions])
    findings = JourneyFindings(
        tokens=str_tokens,
        token_ids=token_ids,
        position_0_excluded=policy.position_0_excluded,
        position_note=policy.position_note,
        layers=state_names(n_layer),
        layer_hooks=state_hooks(n_layer),
        read_before_ln_final=True,
        lens_note="each state is read before ln_final, then passed through ln_final and W_U, so the last "
        "layer's lens is the model's output (Hugging Face's last hidden_states entry is already "
        "after ln_final: comparing it with the others shows a fake collapse)",
        top1=[[row[0].token for row in state] for state in top_rows],
        top1_prob=lens["top_probs"][:, :, 0].tolist(),
        top_k=top_rows,
        final_token_rank=lens["rank"].tolist(),
        final_token_rank_definition=RANK_DEFINITION,
        kl_to_final=lens["kl"].tolist(),
        kl_definition=KL_DEFINITION,
        kl_to_final_mean=lens["kl"][:, positions].mean(dim=1).tolist(),
        lens_vs_model_max_abs_diff=float((lens["final_log_probs"] - model_log_probs).abs().max()),
        cosine=cosine_summary(stream_cosines(states, token_embeds), positions),
        centroid_distance_mean=spread["centroid_distance_mean"],
        covariance_trace=spread["covariance_trace"],
        trajectory=trajectory,
    )
    return JourneyResult(findings, pca, umap_points)
