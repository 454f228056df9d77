"""The token and position embedding tables: offsets, norms, PCA, periodicity, smoothness and nearest neighbours.

`analyze(model, prompt)` computes every number over the full vocabulary / context (one normalised matmul per
neighbour search, one covariance eigendecomposition per PCA) and, for the projection figures, embeds a seeded
sample of tokens with PCA, t-SNE and UMAP.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2atlas.analysis import chance
from gpt2atlas.analysis.base import AnalysisResult, vocab_strings
from gpt2atlas.analysis.embedding_findings import (
    ActiveDim,
    EmbeddedModel,
    EmbeddingFindings,
    LocalPCA,
    Neighbour,
    NormOutlier,
    OffsetDim,
    Period,
    PeriodicDim,
    PositionEmbedding,
    PositionNorm,
    PositionValue,
    ProjectionSample,
    TokenEmbedding,
    TokenNeighbours,
    TokenNorm,
    TokenValue,
)
from gpt2atlas.errors import InputError, check_seed
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.numerics.neighbours import nearest_by_cosine
from gpt2atlas.numerics.pca import PCA, components_for, fit_pca
from gpt2atlas.numerics.threads import single_thread_lapack

TOP_DIMS = 10
DEFAULT_WORDS = (
    " the",
    " king",
    " queen",
    " man",
    " woman",
    " Paris",
    " London",
    " dog",
    " cat",
    " two",
    " 1",
    " Monday",
    " red",
    " running",
    " computer",
    " happy",
    "ing",
    ".",
)
GPT2_SMALL_DIM_PAIRS = ((87, 138), (68, 85), (361, 724))  # pairs that show gpt2's structure (d_model 768)
PROJECTIONS = ("pca", "tsne", "umap")
MAX_QUERY_TOKENS = 64


# ----- plain statistics ----------------------------------------------------------------------------------------
def offset_dims(table: torch.Tensor, k: int = TOP_DIMS) -> list[OffsetDim]:
    """The k dims whose mean over all rows stands out most: z = (mean - mean of means) / std of means."""
    means = table.double().mean(dim=0)
    spread = means.std(unbiased=False)
    z = (means - means.mean()) / spread if spread > 0 else torch.zeros_like(means)
    order = z.abs().argsort(descending=True)[:k]
    return [OffsetDim(int(d), float(means[d]), float(z[d])) for d in order]


def active_dims(table: torch.Tensor, k: int = TOP_DIMS) -> list[ActiveDim]:
    """The k dims (columns) with the largest std across rows (positions)."""
    std = table.double().std(dim=0, unbiased=False)
    order = std.argsort(descending=True)[:k]
    return [ActiveDim(int(d), float(std[d])) for d in order]


def _ends(values: torch.Tensor, n: int) -> tuple[list[int], list[int]]:
    """The rows of the n smallest and the n largest values, the most extreme first."""
    return values.argsort()[:n].tolist(), values.argsort(descending=True)[:n].tolist()


def token_extremes(values: torch.Tensor, names: Sequence[str], n: int = 5) -> TokenNorm:
    """Mean, std, min and max of one value per token, with the tokens at both ends (`names` labels them)."""
    values = values.double()
    low, high = _ends(values, n)

    def row(i: int) -> TokenValue:
        return TokenValue(id=i, token=names[i], value=float(values[i]))

    return TokenNorm(
        mean=float(values.mean()),
        std=float(values.std(unbiased=False)),
        min=float(values[low[0]]),
        max=float(values[high[0]]),
        min_token=names[low[0]],
        max_token=names[high[0]],
        min_token_id=low[0],
        max_token_id=high[0],
        smallest=[row(i) for i in low],
        largest=[row(i) for i in high],
    )


def position_extremes(values: torch.Tensor, n: int = 5) -> PositionNorm:
    """Mean, std, min and max of one value per position, with the positions at both ends."""
    values = values.double()
    low, high = _ends(values, n)

    def row(i: int) -> PositionValue:
        return PositionValue(position=i, value=float(values[i]))

    return PositionNorm(
        mean=float(values.mean()),
        std=float(values.std(unbiased=False)),
        min=float(values[low[0]]),
        max=float(values[high[0]]),
        min_position=low[0],
        max_position=high[0],
        smallest=[row(i) for i in low],
        largest=[row(i) for i in high],
    )


def sinusoid_share(x: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """For each frequency (cycles per position): the share of x's power explained by the best-fitting
    sinusoid a·cos + b·sin at that frequency (least squares; x has its mean removed)."""
    t = np.arange(len(x))
    phase = 2 * np.pi * np.outer(frequencies, t)
    c, s = np.cos(phase), np.sin(phase)
    cc, ss, cs = (c * c).sum(1), (s * s).sum(1), (c * s).sum(1)
    cx, sx = c @ x, s @ x
    det = cc * ss - cs**2
    ok = det > 1e-9 * np.maximum(cc * ss, 1e-300)
    a = np.divide(ss * cx - cs * sx, det, out=np.zeros_like(det), where=ok)
    b = np.divide(cc * sx - cs * cx, det, out=np.zeros_like(det), where=ok)
    explained = np.where(ok, a * cx + b * sx, cx**2 / np.maximum(cc, 1e-300))  # at Nyquist only cos is left
    return explained / float(x @ x)


def dominant_period(column: np.ndarray, oversample: int = 16) -> Period:
    """Dominant period of a column over positions, and the share of its power that sinusoid holds.

    The mean is removed; the peak of a zero-padded FFT gives the frequency roughly (periods that do not
    divide the length are found too), then the least-squares sinusoid fit is maximised near that peak, which
    removes the bias a short window puts on the FFT peak. `power_share` is the fraction of the column's
    variance (= its spectral power, by Parseval) explained by that sinusoid. Periods longer than the column
    (less than one cycle seen) are only rough.
    """
    x = np.asarray(column, dtype=np.float64)
    x = x - x.mean()
    if len(x) < 3 or float(x @ x) <= 0:
        return Period(None, 0.0)
    n_fft = oversample * len(x)
    power = np.abs(np.fft.rfft(x, n_fft)) ** 2
    peak = 1 + int(np.argmax(power[1:]))
    grid = (peak + np.linspace(-4, 4, 161)) / n_fft
    grid = grid[(grid > 0) & (grid <= 0.5)]
    shares = sinusoid_share(x, grid)
    best = int(np.argmax(shares))
    return Period(float(1.0 / grid[best]), float(np.clip(shares[best], 0.0, 1.0)))


@lru_cache(maxsize=16)
def period_share_chance(length: int, columns: int, trials: int = 20, seed: int = 0, q: float = chance.Q) -> float:
    """The q-quantile, over white-noise tables, of the best `dominant_period` share among `columns` columns.

    The same measure as the model's position columns get, on `trials` tables of `columns` Gaussian columns of
    `length` positions (the reading compares the best of the most varying columns with it). ~1 s for GPT-2.
    """
    rng = np.random.default_rng(seed)
    best = [
        max(dominant_period(rng.standard_normal(length)).power_share for _ in range(columns)) for _ in range(trials)
    ]
    return float(np.quantile(best, q))


def smoothness_ratios(table: torch.Tensor, dims: Sequence[int]) -> np.ndarray:
    """Per dim: mean |p[i+1] - p[i]| / mean |p[i] - mean(p)|. Small = smooth curve, about 1.4 = white noise."""
    cols = table[:, list(dims)].double().numpy()
    step = np.abs(np.diff(cols, axis=0)).mean(axis=0)
    spread = np.abs(cols - cols.mean(axis=0)).mean(axis=0)
    return np.divide(step, spread, out=np.zeros_like(step), where=spread > 0)


def pca(table: torch.Tensor) -> PCA:
    """Exact PCA of a table's rows from the covariance matrix (d x d): fast for 50,257 rows (numerics.pca)."""
    return fit_pca(table)


# ----- neighbours -------------------------------------------------------------------------------------------------
def local_pca(table: torch.Tensor, anchors: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of each anchor's k-nearest-neighbour neighbourhood (cosine, anchor included).

    Returns the components needed for 90% of the variance per anchor, and the mean explained-variance ratio.
    """
    neighbour_ids, _ = nearest_by_cosine(table, anchors, k - 1)
    ids = torch.cat([torch.as_tensor(list(anchors))[:, None], neighbour_ids], dim=1)
    groups = table.float()[ids]  # (anchors, k, d)
    centred = groups - groups.mean(dim=1, keepdim=True)
    gram = centred @ centred.transpose(1, 2)  # (anchors, k, k): same non-zero spectrum as the covariance
    with single_thread_lapack():
        values = np.clip(np.linalg.eigvalsh(gram.double().numpy())[:, ::-1], 0, None)
    ratios = values / np.maximum(values.sum(axis=-1, keepdims=True), 1e-30)
    return np.array([components_for(r) for r in ratios]), ratios.mean(axis=0)


# ----- token labels -----------------------------------------------------------------------------------------------
def token_kind(token: str) -> str:
    """A coarse class of a token string, for colouring projections."""
    core = token.strip()
    if not core:
        return "whitespace"
    if "\ufffd" in token:
        return "partial byte"
    if core.isdigit():
        return "number"
    if all(unicodedata.category(c)[0] in "PS" for c in core):
        return "punctuation"
    if token[0] == " " and core.isalpha():
        return "word (leading space)"
    if core.isalpha():
        return "word piece"
    return "other"


def query_tokens(model: GPT2, prompt: str | None) -> tuple[list[int], str]:
    """Distinct token ids to look up: the prompt's (in order, at most 64) or a default list of words."""
    if prompt is not None:
        if not prompt.strip():
            raise InputError("the prompt is empty: give at least one character of text")
        ids = [i for i in dict.fromkeys(model.tokenizer.encode(prompt)) if i < model.cfg.d_vocab]
        if not ids:
            raise InputError(
                f"prompt={prompt!r}: no token of it is in this model's vocabulary (ids 0..{model.cfg.d_vocab - 1})",
                arguments=("prompt",),
            )
        return ids[:MAX_QUERY_TOKENS], "prompt"
    encoded = [model.tokenizer.encode(word) for word in DEFAULT_WORDS]
    return list(dict.fromkeys(i[0] for i in encoded if len(i) == 1 and i[0] < model.cfg.d_vocab)), "default"


def choose_dim_pairs(
    d_model: int,
    offsets: Sequence[OffsetDim],
    actives: Sequence[ActiveDim],
    pairs: Iterable[tuple[int, int]] | None = None,
) -> list[tuple[int, int]]:
    """Pairs of dims for the token/position scatter: the user's, gpt2-small's known ones, or the top found dims."""
    if pairs is not None:
        pairs = [(int(a), int(b)) for a, b in pairs]
        bad = [(pair, d) for pair in pairs for d in pair if not 0 <= d < d_model]
        if bad:
            pair, outside = bad[0]
            raise InputError(
                f"dim_pairs={pair[0]}:{pair[1]}: dimension {outside} is outside 0..{d_model - 1} (the model's d_model is {d_model})",
                arguments=("dim_pairs",),
            )
        return pairs
    if d_model == 768:
        return list(GPT2_SMALL_DIM_PAIRS)
    o = [e.dim for e in offsets] + [0, 1]
    a = [e.dim for e in actives] + [0, 1]
    candidates = [(a[0], a[1]), (o[0], a[0]), (o[0], o[1] if o[1] != o[0] else a[1])]
    return list(dict.fromkeys((x, y) for x, y in candidates if x != y)) or [(0, min(1, d_model - 1))]


# ----- projections ------------------------------------------------------------------------------------------------
def _manifold_input(vectors: torch.Tensor, n_dims: int = 50) -> np.ndarray:
    """Rows normalised to unit length (cosine geometry), centred and reduced to n_dims by PCA."""
    unit = torch.nn.functional.normalize(vectors.double(), dim=1).numpy()
    return fit_pca(unit).project(unit, n_dims).astype(np.float32)


def tsne(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Exact t-SNE (the package's torch implementation; much faster than Barnes-Hut in 3D at this size)."""
    from gpt2atlas.geometry.tsne import tsne as exact_tsne

    return exact_tsne(x, dims, perplexity=30.0, n_iter=500, seed=seed)


def umap(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """UMAP (umap-learn), seeded; its first call in a process spends most of its time compiling (numba)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/numba chatter about threads when seeded
        import umap as umap_lib

        reducer = umap_lib.UMAP(
            n_components=dims, n_neighbors=min(15, len(x) - 1), init="pca", n_epochs=200, random_state=seed
        )
        return reducer.fit_transform(x)


# ----- the report -------------------------------------------------------------------------------------------------
@dataclass
class EmbeddingData:
    """Arrays the figures are drawn from (kept out of findings.json)."""

    token_dim_mean: np.ndarray
    token_dim_std: np.ndarray
    token_row_mean: np.ndarray
    token_row_std: np.ndarray
    vocab: list[str]
    pos_dim_mean: np.ndarray
    pos_dim_std: np.ndarray
    pos_row_mean: np.ndarray
    pos_row_std: np.ndarray
    W_pos: np.ndarray
    sample_ids: np.ndarray  # the labelled tokens first, then a seeded random sample
    sample_vectors: np.ndarray  # (n, d_model)
    sample_kinds: list[str]
    highlighted: np.ndarray  # bool (n,): the labelled tokens
    dim_pairs: list[tuple[int, int]]
    joint_tokens: np.ndarray  # (n, 3): the sample on the PCs of sample + positions
    joint_positions: np.ndarray  # (n_ctx, 3)
    title: str
    token_ratio: np.ndarray  # explained-variance ratios, global PCA of W_E
    local_ratio: np.ndarray  # mean over the kNN neighbourhoods
    local_components: np.ndarray  # components for 90%, per neighbourhood
    pos_ratio: np.ndarray
    pos_pca: np.ndarray  # (n_ctx, 3)
    projections: dict[str, np.ndarray] = field(default_factory=dict)  # "pca_3d", "tsne_2d", ...


class EmbeddingReport(AnalysisResult[EmbeddingFindings]):
    """Numbers about W_E and W_pos (`findings`) and the figures drawn from `data`."""

    area = "embeddings"

    def __init__(self, findings: EmbeddingFindings, data: EmbeddingData) -> None:
        super().__init__(findings)
        self.data = data


def _token_findings(
    W_E: torch.Tensor, vocab: list[str], token_pca: PCA, local: tuple[np.ndarray, np.ndarray], local_k: int
) -> TokenEmbedding:
    local_components, _ = local
    some = len(local_components) > 0
    return TokenEmbedding(
        offset_dims=offset_dims(W_E),
        offset_z_chance=chance.max_abs_normal(W_E.shape[1]),
        norm=token_extremes(W_E.norm(dim=1), vocab),
        pca_explained_variance_ratio=token_pca.ratio[:TOP_DIMS].tolist(),
        pca_first_share_chance=chance.top_component_share(*W_E.shape),
        pca_components_for_90pct=token_pca.components_for(),
        local_pca=LocalPCA(
            neighbourhood_size=local_k,
            anchors=len(local_components),
            components_for_90pct_mean=float(local_components.mean()) if some else None,
            components_for_90pct_median=float(np.median(local_components)) if some else None,
            components_for_90pct_min=int(local_components.min()) if some else None,
            components_for_90pct_max=int(local_components.max()) if some else None,
        ),
    )


def _position_findings(W_pos: torch.Tensor, pos_pca: PCA) -> PositionEmbedding:
    actives = active_dims(W_pos)
    dims = [a.dim for a in actives]
    ratios = smoothness_ratios(W_pos, dims)
    periodicity = []
    for dim, ratio in zip(dims, ratios):
        period = dominant_period(W_pos[:, dim].numpy())
        periodicity.append(PeriodicDim(dim, period.period, period.power_share, float(ratio)))
    norms = W_pos.double().norm(dim=1)
    z = (norms - norms.mean()) / norms.std(unbiased=False).clamp_min(1e-30)
    outliers = z.abs().argsort(descending=True)[:5].tolist()
    return PositionEmbedding(
        active_dims=actives,
        periodicity=periodicity,
        period_share_chance=period_share_chance(W_pos.shape[0], len(dims)) if dims else None,
        smoothness=float(ratios.mean()) if len(ratios) else 0.0,
        pca_explained_variance_ratio=pos_pca.ratio[:TOP_DIMS].tolist(),
        pca_components_for_90pct=pos_pca.components_for(),
        norm=position_extremes(norms),
        position0_norm_z=float(z[0]),
        norm_outliers=[NormOutlier(p, float(norms[p]), float(z[p])) for p in outliers],
    )


def _neighbour_findings(W_E: torch.Tensor, vocab: list[str], ids: list[int], k: int) -> list[TokenNeighbours]:
    neighbour_ids, cosines = nearest_by_cosine(W_E, ids, k)
    return [
        TokenNeighbours(
            id=i,
            token=vocab[i],
            neighbours=[Neighbour(int(j), vocab[j], float(c)) for j, c in zip(row_ids, row_cos)],
        )
        for i, row_ids, row_cos in zip(ids, neighbour_ids.tolist(), cosines.tolist())
    ]


def _sample(d_vocab: int, highlight: list[int], size: int, seed: int) -> np.ndarray:
    """The highlighted ids first, then a seeded random sample of the rest."""
    rng = np.random.default_rng(seed)
    rest = np.setdiff1d(np.arange(d_vocab), highlight)
    n_random = max(0, min(size - len(highlight), len(rest)))
    return np.concatenate([np.array(highlight, dtype=np.int64), np.sort(rng.choice(rest, n_random, replace=False))])


@dataclass
class VocabularyStats:
    """Everything `analyze` computes from W_E and W_pos alone, whatever the prompt: compute it once with
    `vocabulary_stats(model)` and pass it to `analyze(..., vocabulary=...)` for each new prompt (the dashboard does)."""

    W_E: torch.Tensor
    W_pos: torch.Tensor
    vocab: list[str]
    token_pca: PCA
    pos_pca: PCA
    local: tuple[np.ndarray, np.ndarray]  # components for 90% per neighbourhood, mean explained-variance ratio
    local_k: int
    token: TokenEmbedding  # findings.token_embedding
    position: PositionEmbedding  # findings.position_embedding
    dim_stats: dict[str, np.ndarray]  # per-dim and per-row means and stds of both tables
    settings: tuple[int, int, int]  # (local_anchors, local_k, seed) it was computed with


def vocabulary_stats(model: GPT2, *, local_anchors: int = 200, local_k: int = 100, seed: int = 0) -> VocabularyStats:
    """Global and local PCA, offsets, norms and the position-table findings: the prompt-independent work."""
    W_E = model.W_E.detach().float().cpu()
    W_pos = model.W_pos.detach().float().cpu()
    vocab = vocab_strings(model)
    rng = np.random.default_rng(seed)
    token_pca = pca(W_E)
    anchors = rng.choice(len(W_E), min(local_anchors, len(W_E)), replace=False).tolist()
    k = max(3, min(local_k, len(W_E)))
    local = local_pca(W_E, anchors, k)
    pos_pca = pca(W_pos)
    dim_stats = {
        "token_dim_mean": W_E.mean(0).numpy(),
        "token_dim_std": W_E.std(0).numpy(),
        "token_row_mean": W_E.mean(1).numpy(),
        "token_row_std": W_E.std(1).numpy(),
        "pos_dim_mean": W_pos.mean(0).numpy(),
        "pos_dim_std": W_pos.std(0).numpy(),
        "pos_row_mean": W_pos.mean(1).numpy(),
        "pos_row_std": W_pos.std(1).numpy(),
    }
    return VocabularyStats(
        W_E,
        W_pos,
        vocab,
        token_pca,
        pos_pca,
        local,
        k,
        _token_findings(W_E, vocab, token_pca, local, k),
        _position_findings(W_pos, pos_pca),
        dim_stats,
        (local_anchors, local_k, seed),
    )


def _figure_data(
    model: GPT2, stats: VocabularyStats, sample_ids: np.ndarray, n_labelled: int, pairs: list[tuple[int, int]]
) -> EmbeddingData:
    """The token sample and the joint token+position PCA, with the vocabulary's statistics."""
    W_E, W_pos, vocab = stats.W_E, stats.W_pos, stats.vocab
    local_components, local_ratio = stats.local
    sample = W_E[sample_ids]
    joint = pca(torch.cat([sample, W_pos]))
    return EmbeddingData(
        token_dim_mean=stats.dim_stats["token_dim_mean"],
        token_dim_std=stats.dim_stats["token_dim_std"],
        token_row_mean=stats.dim_stats["token_row_mean"],
        token_row_std=stats.dim_stats["token_row_std"],
        pos_dim_mean=stats.dim_stats["pos_dim_mean"],
        pos_dim_std=stats.dim_stats["pos_dim_std"],
        pos_row_mean=stats.dim_stats["pos_row_mean"],
        pos_row_std=stats.dim_stats["pos_row_std"],
        vocab=vocab,
        W_pos=W_pos.numpy(),
        sample_ids=sample_ids,
        sample_vectors=sample.numpy(),
        sample_kinds=[token_kind(vocab[i]) for i in sample_ids],
        highlighted=np.arange(len(sample_ids)) < n_labelled,
        dim_pairs=pairs,
        joint_tokens=joint.project(sample, 3),
        joint_positions=joint.project(W_pos, 3),
        title=model.source,
        token_ratio=stats.token_pca.ratio,
        local_ratio=local_ratio,
        local_components=local_components,
        pos_ratio=stats.pos_pca.ratio,
        pos_pca=stats.pos_pca.project(W_pos, 3),
    )


def analyze(
    model: GPT2,
    prompt: str | None = None,
    *,
    sample_size: int = 2000,
    manifold_size: int = 1000,
    projections: Sequence[str] = PROJECTIONS,
    dim_pairs: Iterable[tuple[int, int]] | None = None,
    n_neighbours: int = 10,
    local_anchors: int = 200,
    local_k: int = 100,
    seed: int = 0,
    progress: bool = True,
    vocabulary: VocabularyStats | None = None,
) -> EmbeddingReport:
    """Analyse the token (W_E) and position (W_pos) embeddings of `model`.

    `prompt` picks the tokens whose neighbours are listed and labelled in projections (a default list of
    words otherwise). A seeded sample of `sample_size` tokens (those tokens first) is drawn in the PCA and
    dimension-pair figures; t-SNE and UMAP embed its first `manifold_size` tokens. `projections` chooses
    which of "pca", "tsne", "umap" to compute. `vocabulary`, from `vocabulary_stats(model)` with the same
    local_anchors, local_k and seed, saves recomputing the prompt-independent numbers.
    """
    check_seed(seed)
    unknown = [p for p in projections if p not in PROJECTIONS]
    if unknown:
        raise InputError(
            f"projections={','.join(projections)!r}: unknown projection '{unknown[0]}': use {', '.join(PROJECTIONS)}",
            arguments=("projections",),
        )
    if sample_size < 10:
        raise InputError(f"sample_size={sample_size} must be at least 10 (tokens drawn)", arguments=("sample_size",))
    manifolds = [p for p in projections if p != "pca"]
    ids, source = query_tokens(model, prompt)  # a bad prompt fails before any work
    if dim_pairs is not None:  # so does a dimension outside the model (it used to fail with the bar half drawn)
        choose_dim_pairs(model.cfg.d_model, [], [], dim_pairs)
    if "tsne" in manifolds:  # quadratic in the points: refuse before the minutes of work, not after
        from gpt2atlas.geometry.tsne import check_tsne_memory

        n_points = max(10, min(manifold_size, max(sample_size, len(ids)), model.cfg.d_vocab))
        check_tsne_memory(n_points, f"manifold_size={manifold_size}", arguments=("manifold_size",))
    # the bar is closed, its line cleared, also when a step fails (before the error line is printed)
    with tqdm(total=3 + len(manifolds), desc="embeddings", disable=not progress, leave=False) as bar:
        bar.set_postfix_str("tokens: PCA, local PCA; positions")
        if vocabulary is None or vocabulary.settings != (local_anchors, local_k, seed):
            vocabulary = vocabulary_stats(model, local_anchors=local_anchors, local_k=local_k, seed=seed)
        W_E, vocab = vocabulary.W_E, vocabulary.vocab
        token, position = vocabulary.token, vocabulary.position
        bar.update()

        bar.set_postfix_str("neighbours")
        neighbours = _neighbour_findings(W_E, vocab, ids, n_neighbours)
        pairs = choose_dim_pairs(W_E.shape[1], token.offset_dims, position.active_dims, dim_pairs)
        bar.update()

        bar.set_postfix_str("token sample")
        sample_ids = _sample(len(W_E), ids, sample_size, seed)
        data = _figure_data(model, vocabulary, sample_ids, len(ids), pairs)
        if "pca" in projections:
            data.projections["pca_3d"] = vocabulary.token_pca.project(W_E[sample_ids], 3)
        manifold_size = max(10, min(manifold_size, len(sample_ids)))
        manifold_input = _manifold_input(W_E[sample_ids[:manifold_size]]) if manifolds else None
        bar.update()

        for method in manifolds:
            bar.set_postfix_str(method)
            embed = tsne if method == "tsne" else umap
            for dims in (2, 3):
                assert manifold_input is not None  # computed whenever there are manifolds
                data.projections[f"{method}_{dims}d"] = embed(manifold_input, dims, seed)
            bar.update()

    findings = EmbeddingFindings(
        model=EmbeddedModel(
            source=model.source,
            d_model=model.cfg.d_model,
            d_vocab=model.cfg.d_vocab,
            n_ctx=model.cfg.n_ctx,
        ),
        token_embedding=token,
        position_embedding=position,
        neighbours_of=source,
        neighbours=neighbours,
        neighbour_cosine_chance=chance.nearest_cosine(model.cfg.d_model, model.cfg.d_vocab - 1),
        dim_pairs=[list(p) for p in pairs],
        projection_sample=ProjectionSample(
            size=len(sample_ids),
            tsne_umap_size=manifold_size if manifolds else 0,
            seed=seed,
            methods=list(projections),
            labelled_tokens=len(ids),
        ),
    )
    return EmbeddingReport(findings, data)
