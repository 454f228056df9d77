"""`gpt2atlas geometry`: intrinsic dimension and shape of the hidden representations, layer by layer."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist
from tqdm.auto import tqdm

import gpt2atlas.resources as resources
from gpt2atlas.analysis.base import AnalysisResult, ProgressCallback
from gpt2atlas.analysis.corpus import CorpusJob, run_corpus
from gpt2atlas.errors import InputError, check_seed
from gpt2atlas.geometry.corpus import Corpus, default_corpus, sample_texts
from gpt2atlas.geometry.estimators import (
    gram_log_volume,
    gride,
    mean_cosine,
    mean_norm,
    participation_ratio,
    pca_components,
    pca_spectrum,
    twonn,
    twonn_scaling,
)
from gpt2atlas.geometry.extraction import (
    CLOUDS,
    RESID,
    CloudRows,
    Clouds,
    assemble,
    check_max_tokens,
    cloud_job,
    extract_clouds,
    measurement_sites,
    plan_clouds,
)
from gpt2atlas.geometry.findings import (
    CloudMeasures,
    CloudSummary,
    ControlEstimate,
    CorpusInfo,
    GeometryConfig,
    GeometryFindings,
    GeometrySettings,
    GramProfile,
    LayerRow,
    Memory,
    RandomControl,
    TextDistances,
    Timing,
    TsneMap,
)
from gpt2atlas.geometry.tsne import tsne
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.numerics.neighbours import nearest_neighbours, unique_rows

# Chosen so that GPT-2 small over the default corpus takes a few minutes on 2 CPU cores: the forward pass
# costs ~170 MFLOP per token, so the tokens read (max_texts x max_tokens at most) set the extraction time,
# and the all-tokens budget sets the nearest-neighbour searches (quadratic in the number of points).
TWONN_DISCARD_FRACTION = 0.1
MAX_TEXTS = 2000
MAX_TOKENS = 64
ALL_TOKENS_BUDGET = 8000
GRIDE_MAX_RANK = 64
TEXT_DISTANCES = 40  # texts in the distance matrices
TSNE_POINTS = 1000
SPECTRUM_LENGTH = 100  # leading explained-variance ratios kept per row
METHODS = {  # how each number was obtained, written into the findings
    "twonn": "linear fit through the origin of -log(1-F) vs log(r2/r1), largest 10% of ratios discarded "
    "(Facco et al. 2017; scikit-dimension's convention); error: bootstrap std over 100 resamples",
    "gride": "maximum likelihood of Denti et al. 2022 for n2 = 2 n1, n1 = 1, 2, 4, ...; scale: mean distance "
    "to the n2-th neighbour; error: Fisher information (ratios treated as independent)",
    "twonn_decimation": "TwoNN on random subsets of n, n/2, n/4, ... points; scale: mean r2",
    "pca": "covariance eigenvalues of all points; pca_id_90: components for 90% of the variance",
    "duplicates": "removed before the distance-based estimates (TwoNN, GRIDE)",
    "clouds": "last_token: the last token of each text; all_tokens: a uniform sample of all tokens, "
    "the same tokens at every layer",
}


class GeometryResult(AnalysisResult[GeometryFindings]):
    """Findings of the geometry analysis; the figures are drawn from the findings alone."""

    area = "geometry"

    @classmethod
    def from_json(cls, text: str) -> GeometryResult:
        """The result of a saved findings.json (enough to redraw every figure)."""
        return cls(GeometryFindings.from_jsonable(json.loads(text)))

    def rows(self, cloud: str, substep: str | None = RESID) -> list[LayerRow]:
        """The `layers` rows of one cloud (residual stream only by default; None for every site)."""
        return [r for r in self.findings.layers if r.cloud == cloud and substep in (None, r.substep)]


def measure_cloud(
    X: np.ndarray, *, gride_max_rank: int = 64, discard_fraction: float = 0.1, seed: int = 0
) -> CloudMeasures:
    """Every estimate for one cloud: distance-based ones on its distinct points, PCA and statistics on all."""
    spectrum = pca_spectrum(X)
    total = spectrum.sum()
    unique = unique_rows(X)
    neighbours = nearest_neighbours(unique, gride_max_rank)
    two = twonn(unique, discard_fraction, neighbours=neighbours, seed=seed)
    return CloudMeasures(
        n_points=len(unique),
        n_duplicates=len(X) - len(unique),
        twonn_id=two.id,
        twonn_err=two.err,
        gride=gride(unique, gride_max_rank, neighbours=neighbours),
        twonn_decimation=twonn_scaling(unique, discard_fraction=discard_fraction, seed=seed, neighbours=neighbours),
        pca_id_90=pca_components(spectrum, (0.9,))["90"],
        pca_components=pca_components(spectrum),
        pca_spectrum=(spectrum[:SPECTRUM_LENGTH] / total).tolist() if total > 0 else [],
        participation_ratio=participation_ratio(spectrum=spectrum),
        mean_norm=mean_norm(X),
        mean_cosine=mean_cosine(X),
    )


def analyze(
    model: GPT2,
    prompt: str | None = None,
    *,
    texts: Sequence[str] | None = None,
    corpus: Corpus | None = None,
    max_texts: int = MAX_TEXTS,
    max_tokens: int = MAX_TOKENS,
    all_tokens_budget: int = ALL_TOKENS_BUDGET,
    substeps: bool = False,
    layer: int | None = None,
    include_first: bool = False,
    gride_max_rank: int = GRIDE_MAX_RANK,
    seed: int = 0,
    progress: bool = True,
    control: bool | None = None,
    on_progress: ProgressCallback | None = None,
) -> GeometryResult:
    """Measure the geometry of `model`'s hidden representations of a corpus, layer by layer.

    `texts` (or a `Corpus`) default to the docstring paragraphs of Python's standard library. `prompt` is the
    text whose token vectors give the Gram-volume profile (default: the first text). `layer` picks the
    residual layer shown as distance matrices and t-SNE (default: the hidden layer where the last-token TwoNN
    ID peaks). `control` also measures a random-initialised GPT-2 of the same shape on the same texts and
    points, the baseline every ID is read against (default: for models up to CONTROL_MAX_PARAMETERS).
    `on_progress(stage, done, total)` follows the three stages: extracting, estimating, control.

    The same as `run_corpus(model, start(model, prompt, ...))`: `start` plans the pass over the corpus that the
    shared corpus runner makes.
    """
    job = start(
        model,
        prompt,
        texts=texts,
        corpus=corpus,
        max_texts=max_texts,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        substeps=substeps,
        layer=layer,
        include_first=include_first,
        gride_max_rank=gride_max_rank,
        seed=seed,
        progress=progress,
        control=control,
        on_progress=on_progress,
    )
    return run_corpus(model, job)


def start(
    model: GPT2,
    prompt: str | None = None,
    *,
    texts: Sequence[str] | None = None,
    corpus: Corpus | None = None,
    max_texts: int = MAX_TEXTS,
    max_tokens: int = MAX_TOKENS,
    all_tokens_budget: int = ALL_TOKENS_BUDGET,
    substeps: bool = False,
    layer: int | None = None,
    include_first: bool = False,
    gride_max_rank: int = GRIDE_MAX_RANK,
    seed: int = 0,
    progress: bool = True,
    control: bool | None = None,
    on_progress: ProgressCallback | None = None,
) -> CorpusJob[CloudRows, GeometryResult]:
    """The pass over the corpus (see `analyze` for the arguments): settings checked, texts chosen, the points of
    both clouds planned; its collect step copies them out batch by batch, its finish measures them."""
    check_settings(
        model,
        layer=layer,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        prompt=prompt,
        include_first=include_first,
        seed=seed,
    )
    clock = {"start": time.perf_counter()}
    if corpus is None and texts is not None:
        chosen, n_distinct = sample_texts(texts, max_texts, seed)
        corpus = Corpus(chosen, CorpusInfo(name="user texts", n_available=n_distinct, n_texts=len(chosen)))
    chosen_corpus = corpus or default_corpus(max_texts, seed)
    clock["corpus"] = time.perf_counter()
    sites = measurement_sites(model.cfg.n_layer, substeps)
    run_control = (
        control if control is not None else sum(p.numel() for p in model.parameters()) <= CONTROL_MAX_PARAMETERS
    )
    check_memory(
        model,
        len(sites),
        len(chosen_corpus.texts),
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        include_first=include_first,
        gride_max_rank=gride_max_rank,
        control=run_control,
    )
    plan = plan_clouds(
        model,
        chosen_corpus.texts,
        sites,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        include_first=include_first,
        seed=seed,
    )
    settings = GeometrySettings(
        max_texts=max_texts,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        substeps=substeps,
        include_first_position=include_first,
        gride_max_rank=gride_max_rank,
        twonn_discard_fraction=TWONN_DISCARD_FRACTION,
        seed=seed,
        twonn=METHODS["twonn"],
        gride=METHODS["gride"],
        twonn_decimation=METHODS["twonn_decimation"],
        pca=METHODS["pca"],
        duplicates=METHODS["duplicates"],
        clouds=METHODS["clouds"],
    )

    def finish(rows: CloudRows) -> GeometryResult:
        clouds = assemble(plan, rows, model.cfg.d_model)
        return _measure(
            model, prompt, chosen_corpus, clouds, settings, layer, run_control, progress, on_progress, clock
        )

    return cloud_job(model, plan, finish, progress=progress, on_progress=on_progress)


def _measure(
    model: GPT2,
    prompt: str | None,
    corpus: Corpus,
    clouds: Clouds,
    settings: GeometrySettings,
    layer: int | None,
    run_control: bool,
    progress: bool,
    on_progress: ProgressCallback | None,
    clock: dict[str, float],
) -> GeometryResult:
    """The finish step: every cloud measured, the control, the focus layer's pictures, the Gram profile."""
    clock["extraction"] = time.perf_counter()
    seed, sites = settings.seed, clouds.sites
    max_tokens, include_first = settings.max_tokens, settings.include_first_position
    rows = _measure_all(
        clouds, gride_max_rank=settings.gride_max_rank, seed=seed, progress=progress, on_progress=on_progress
    )
    clock["estimation"] = time.perf_counter()
    if run_control and on_progress is not None:
        on_progress("control", 0, 1)
    control_findings = (
        random_control(
            model,
            corpus.texts,
            max_tokens=max_tokens,
            all_tokens_budget=settings.all_tokens_budget,
            include_first=include_first,
            seed=seed,
        )
        if run_control
        else None
    )
    clock["control"] = time.perf_counter()
    if run_control and on_progress is not None:
        on_progress("control", 1, 1)
    focus = layer if layer is not None else _peak_layer(rows, "last_token", model.cfg.n_layer)
    focus_index = next(i for i, s in enumerate(sites) if s.substep == RESID and s.layer == focus)
    summary = {c: _peak_summary(rows, c, model.cfg.n_layer, control_findings) for c in CLOUDS}
    text_distances = _text_distances(clouds, focus_index, corpus.texts, focus)
    tsne_map = _tsne(clouds, focus_index, corpus.texts, focus, seed)
    gram = _gram_profile(
        model, prompt or corpus.texts[int(clouds.origins["last_token"][0, 0])], max_tokens, include_first
    )
    clock["extras"] = time.perf_counter()
    marks = list(clock.items())
    seconds = {f"{name}_s": round(end - begin, 2) for (_, begin), (name, end) in zip(marks, marks[1:])}
    seconds["corpus_s"] = round(clock["corpus"] - clock["start"] + corpus.read_s, 2)  # a corpus read beforehand
    findings = GeometryFindings(
        model=model.source,
        config=GeometryConfig(n_layer=model.cfg.n_layer, d_model=model.cfg.d_model),
        corpus=corpus.info,
        settings=settings,
        n_texts=int((clouds.token_counts > 0).sum()),
        n_texts_skipped_short=clouds.n_skipped_short,
        n_tokens=int(clouds.token_counts.sum()),
        layers=rows,
        summary=summary,
        control=control_findings,
        focus_layer=focus,
        text_distances=text_distances,
        tsne=tsne_map,
        gram=gram,
        timing=Timing(**seconds, total_s=round(clock["extras"] - clock["start"] + corpus.read_s, 2)),
        memory=Memory(clouds_mb=round(clouds.nbytes / 2**20, 1), peak_rss_mb=_peak_rss_mb()),
    )
    return GeometryResult(findings)


def check_settings(
    model: GPT2,
    *,
    layer: int | None,
    max_tokens: int,
    all_tokens_budget: int,
    prompt: str | None = None,
    include_first: bool = False,
    seed: int | None = None,
) -> None:
    """Reject settings that do not fit the model, before any work is done."""
    check_seed(seed)
    if layer is not None and not 0 <= layer <= model.cfg.n_layer:
        raise InputError(
            f"layer={layer} must be between 0 and {model.cfg.n_layer} (0 is the embedding output)", arguments=("layer",)
        )
    check_max_tokens(model, max_tokens)
    if all_tokens_budget < 1:
        raise InputError(f"all_tokens_budget={all_tokens_budget} must be at least 1", arguments=("all_tokens_budget",))
    if prompt is not None:
        _gram_tokens(model, prompt, max_tokens, include_first)


NEIGHBOUR_CHUNK_BYTES = 128 * 2**20  # the exact neighbour search's block of distances (numerics.neighbours)


def check_memory(
    model: GPT2,
    n_sites: int,
    n_texts: int,
    *,
    max_tokens: int,
    all_tokens_budget: int,
    include_first: bool,
    gride_max_rank: int,
    control: bool,
) -> None:
    """InputError before extraction when the point clouds (texts x sites x d_model, float32), the control's and
    the estimates' working memory for one cloud would not fit; the counts are upper bounds (every text full)."""
    d_model = model.cfg.d_model
    n_points = n_texts + min(all_tokens_budget, n_texts * (max_tokens - (0 if include_first else 1)))
    clouds = 4 * n_sites * n_points * d_model
    control_clouds = 4 * (model.cfg.n_layer + 1) * n_points * d_model if control else 0
    # one cloud at a time: float64 and centred copies, neighbour lists, one block of the distance matrix
    estimates = n_points * (24 * d_model + 24 * gride_max_rank) + NEIGHBOUR_CHUNK_BYTES
    resources.require(
        clouds + control_clouds + estimates,
        f"measuring {n_sites} sites x {n_points:,} points x d_model {d_model}",
        "all_tokens_budget= or max_texts= (or leave out substeps=)",
        arguments=("all_tokens_budget", "max_texts", "substeps"),
    )


CONTROL_MAX_PARAMETERS = 800_000_000  # gpt2-large; gpt2-xl's control would need another 6 GB
CONTROL_SEED_OFFSET = 1_000_003


def random_control(
    model: GPT2,
    texts: Sequence[str],
    *,
    max_tokens: int,
    all_tokens_budget: int,
    include_first: bool,
    seed: int,
) -> RandomControl:
    """TwoNN per residual layer of a random-initialised GPT-2 of `model`'s shape, on the same texts and positions.

    What a network that learned nothing gives, measured the same way: the chance baseline for every ID reading.
    """
    control_seed = seed + CONTROL_SEED_OFFSET
    twin = GPT2(model.cfg, model.tokenizer).init_weights(seed=control_seed).eval().requires_grad_(False)
    twin = twin.to(device=model.device, dtype=next(model.parameters()).dtype)
    sites = measurement_sites(model.cfg.n_layer, False)
    clouds = extract_clouds(
        twin,
        list(texts),
        sites,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        include_first=include_first,
        seed=seed,  # the same sampled points as the model's clouds
        progress=False,
    )
    del twin
    twonn_by_cloud: dict[str, list[ControlEstimate]] = {}
    cosine_by_cloud: dict[str, list[float]] = {}
    for cloud in CLOUDS:
        estimates = [twonn(unique_rows(points), TWONN_DISCARD_FRACTION, seed=seed) for points in clouds.points[cloud]]
        twonn_by_cloud[cloud] = [ControlEstimate(id=e.id, err=e.err) for e in estimates]
        cosine_by_cloud[cloud] = [mean_cosine(points) for points in clouds.points[cloud]]
    return RandomControl(
        kind="random-initialised GPT-2 of the same shape (weights normal(0, 0.02), LayerNorm gains 1), "
        "on the same texts and sampled positions",
        seed=control_seed,
        twonn=twonn_by_cloud,
        mean_cosine=cosine_by_cloud,
    )


def _measure_all(
    clouds: Clouds, *, gride_max_rank: int, seed: int, progress: bool, on_progress: ProgressCallback | None = None
) -> list[LayerRow]:
    jobs = [(i, site, cloud) for i, site in enumerate(clouds.sites) for cloud in CLOUDS]
    rows = []
    with tqdm(jobs, desc="estimating", unit="cloud", disable=not progress, leave=False) as bar:
        for done, (i, site, cloud) in enumerate(bar):  # a failure closes the bar before its error is printed
            if on_progress is not None:
                on_progress("estimating", done, len(jobs))
            measured = measure_cloud(
                clouds.points[cloud][i],
                gride_max_rank=gride_max_rank,
                seed=seed,
                discard_fraction=TWONN_DISCARD_FRACTION,
            )
            rows.append(LayerRow.of(site.layer, site.substep, site.hook, site.depth, cloud, measured))
    return rows


def _peak_layer(rows: list[LayerRow], cloud: str, n_layer: int) -> int:
    """The hidden layer (after block 0 or later) with the highest TwoNN ID; the middle layer if none is finite.

    The embedding output is left out: its points are token vectors (plus position vectors), a different
    kind of cloud whose ID says more about the vocabulary than about processing.
    """
    candidates = [
        r
        for r in rows
        if r.cloud == cloud and r.substep == RESID and r.layer >= min(1, n_layer) and math.isfinite(r.twonn_id)
    ]
    return max(candidates, key=lambda r: r.twonn_id).layer if candidates else n_layer // 2


def _peak_summary(rows: list[LayerRow], cloud: str, n_layer: int, control: RandomControl | None) -> CloudSummary:
    peak = _peak_layer(rows, cloud, n_layer)
    resid = {r.layer: r for r in rows if r.cloud == cloud and r.substep == RESID}
    baseline = control.twonn[cloud][peak] if control else None
    return CloudSummary(
        peak_layer=peak,
        peak_twonn_id=resid[peak].twonn_id,
        # the random-initialised control of the same shape, same texts and points, at the same layer
        peak_control_twonn_id=baseline.id if baseline else None,
        peak_control_twonn_err=baseline.err if baseline else None,
        first_twonn_id=resid[0].twonn_id,
        last_twonn_id=resid[n_layer].twonn_id,
    )


def _snippet(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _text_distances(clouds: Clouds, site_index: int, texts: Sequence[str], layer: int) -> TextDistances:
    """Euclidean and cosine distances between the last-token vectors of the first texts at one layer."""
    n = min(TEXT_DISTANCES, clouds.points["last_token"].shape[1])
    X = clouds.points["last_token"][site_index, :n].astype(np.float64)
    return TextDistances(
        layer=layer,
        cloud="last_token",
        texts=[_snippet(texts[int(t)]) for t in clouds.origins["last_token"][:n, 0]],
        euclidean=cdist(X, X).tolist(),
        cosine=np.clip(cdist(X, X, metric="cosine"), 0, 2).tolist(),
    )


def _tsne(clouds: Clouds, site_index: int, texts: Sequence[str], layer: int, seed: int) -> TsneMap:
    """3D t-SNE (after PCA to 50 dimensions) of at most `tsne_points` last-token vectors at one layer."""
    X = clouds.points["last_token"][site_index].astype(np.float64)
    origins = clouds.origins["last_token"]
    if len(X) > TSNE_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), TSNE_POINTS, replace=False))
        X, origins = X[keep], origins[keep]
    if len(X) < 5:
        return TsneMap(layer=layer, cloud="last_token", n_points=len(X), coords=[], texts=[], n_tokens=[])
    centred = X - X.mean(0)
    # not numerics.fit_pca: t-SNE's coordinates (in findings.json) depend on the exact bits and signs of this
    # projection; fit_pca's (eigh of the Gram matrix) changed the mini model's map (pairwise distances by up to 37)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coords = tsne(centred @ components[:50].T, 3, seed=seed)
    return TsneMap(
        layer=layer,
        cloud="last_token",
        n_points=len(X),
        coords=np.round(coords, 4).tolist(),
        texts=[_snippet(texts[int(t)]) for t in origins[:, 0]],
        n_tokens=(origins[:, 1] + 1).tolist(),
    )


def _gram_tokens(model: GPT2, prompt: str, max_tokens: int, include_first: bool) -> tuple[list[int], int]:
    """The prompt's token ids for the Gram volume and the first position used (1: position 0 left out)."""
    ids = model.tokenizer.encode(prompt)[:max_tokens]
    first = 0 if include_first else 1
    if len(ids) <= first:
        raise InputError(
            f"prompt= has {len(ids)} token(s): the Gram volume needs at least {first + 1} token{'s' if first else ''}",
            arguments=("prompt",),
        )
    return ids, first


def _gram_profile(model: GPT2, prompt: str, max_tokens: int, include_first: bool) -> GramProfile:
    """log-volume of the parallelotope spanned by the prompt's token vectors, at every residual layer."""
    ids, first = _gram_tokens(model, prompt, max_tokens, include_first)
    sites = [s for s in measurement_sites(model.cfg.n_layer) if s.substep == RESID]
    _, cache = model.run_with_cache(ids, names=[s.hook for s in sites], stop_at_layer=model.cfg.n_layer)
    vectors = [cache[s.hook][0, first:].double().cpu().numpy() for s in sites]
    return GramProfile(
        prompt=prompt,
        tokens=model.tokenizer.to_str_tokens(ids),
        first_position=first,
        layers=[s.layer for s in sites],
        log_volume=[gram_log_volume(v) for v in vectors],
        log_volume_unit=[gram_log_volume(v, unit=True) for v in vectors],
    )


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (VmHWM: unlike ru_maxrss, never the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # not Linux
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
