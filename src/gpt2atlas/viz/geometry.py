"""Figures of the geometry analysis, drawn from its findings alone (so a saved findings.json redraws them)."""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from gpt2atlas.geometry.analysis import GeometryResult
from gpt2atlas.geometry.estimators import IDScaling
from gpt2atlas.geometry.findings import GeometryFindings, GramProfile, LayerRow, RandomControl, TextDistances, TsneMap
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import escape

CLOUD_TITLES = {"last_token": "last token of each text", "all_tokens": "all tokens (sampled)"}
RESID = "resid"


def geometry_figures(findings: GeometryFindings) -> dict[str, go.Figure]:
    """Every figure of the geometry area, by file name (NaN and inf, from degenerate clouds, are gaps)."""
    rows = findings.layers
    clouds = [c for c in CLOUD_TITLES if any(r.cloud == c for r in rows)]
    return {
        "id_vs_layer": id_vs_layer(rows, clouds, findings.control),
        "id_vs_scale": id_vs_scale(rows, clouds),
        "pca_spectra": pca_spectra(rows, clouds),
        "pca_components": pca_components_vs_depth(rows, clouds),
        "norm_anisotropy": norm_anisotropy(rows, clouds),
        "text_distances": text_distances(findings.text_distances),
        "tsne_3d": tsne_3d(findings.tsne),
        "gram_log_volume": gram_log_volume(findings.gram),
    }


# ----- helpers -----------------------------------------------------------------------------------------------
def _by_depth(rows: list[LayerRow], cloud: str, residual: bool) -> list[LayerRow]:
    chosen = [r for r in rows if r.cloud == cloud and (r.substep == RESID) == residual]
    return sorted(chosen, key=lambda r: r.depth)


def _site_label(row: LayerRow) -> str:
    if row.substep == RESID:
        return "embedding output" if row.layer == 0 else f"after block {row.layer - 1}"
    return f"block {row.layer} {row.substep}"


def _depth_traces(
    rows: list[LayerRow],
    cloud: str,
    value: Callable[[LayerRow], float | None],
    err: Callable[[LayerRow], float | None] | None = None,
    *,
    name: str,
    color: str,
    legend: bool = True,
) -> list[go.Scatter]:
    """The residual stream as a line, and the sites inside the blocks (if measured) as open markers."""
    traces = []
    for residual in (True, False):
        chosen = _by_depth(rows, cloud, residual)
        if not chosen:
            continue
        errors = [err(r) for r in chosen] if err else None
        traces.append(
            go.Scatter(
                x=[r.depth for r in chosen],
                y=[value(r) for r in chosen],
                error_y=dict(type="data", array=errors, visible=True) if errors else None,
                mode="lines+markers" if residual else "markers",
                marker=dict(color=color, symbol="circle" if residual else "diamond-open", size=7 if residual else 8),
                line=dict(color=color),
                name=name if residual else f"{name} (inside blocks)",
                legendgroup=name + str(residual),
                showlegend=legend,
                text=[_site_label(r) for r in chosen],
                hovertemplate="%{text}<br>%{y:.3g}<extra></extra>",
            )
        )
    return traces


def _gride_at(gride: IDScaling, n1: int = 8) -> tuple[float | None, float | None]:
    """GRIDE's estimate at rank n1; none (a gap in the curve) where the cloud was too small to measure it."""
    if n1 not in gride.ranks:
        return None, None
    i = gride.ranks.index(n1)
    return gride.ids[i], gride.errs[i]


def _layer_colors(n: int) -> list[str]:
    return sample_colorscale("Viridis", [i / max(1, n - 1) for i in range(n)])


def _depth_axis_title() -> str:
    return "layer (0 = embedding output; fractions = inside the block)"


# ----- figures -----------------------------------------------------------------------------------------------
def id_vs_layer(rows: list[LayerRow], clouds: list[str], control: RandomControl | None = None) -> go.Figure:
    """Every estimator's ID along the forward pass, one column per cloud, error bars where there are any; the
    random-initialised control's TwoNN dashed beside the model's (the chance baseline)."""
    Value = Callable[[LayerRow], float | None]
    estimators: list[tuple[str, Value, Value | None, str]] = [
        ("TwoNN", lambda r: r.twonn_id, lambda r: r.twonn_err, "#1f77b4"),
        ("GRIDE (n1=8, n2=16)", lambda r: _gride_at(r.gride)[0], lambda r: _gride_at(r.gride)[1], "#d62728"),
        ("PCA: components for 90% variance", lambda r: r.pca_id_90, None, "#2ca02c"),
        ("participation ratio", lambda r: r.participation_ratio, None, "#9467bd"),
    ]
    fig = make_subplots(
        rows=len(estimators),
        cols=len(clouds),
        shared_xaxes=True,
        vertical_spacing=0.05,
        column_titles=[CLOUD_TITLES[c] for c in clouds],
    )
    for i, (name, value, err, color) in enumerate(estimators, start=1):
        for j, cloud in enumerate(clouds, start=1):
            for trace in _depth_traces(rows, cloud, value, err, name=name, color=color, legend=j == 1):
                fig.add_trace(trace, row=i, col=j)
            if i == 1 and control:
                resid = _by_depth(rows, cloud, True)
                baseline = [control.twonn[cloud][r.layer] for r in resid]
                fig.add_trace(
                    go.Scatter(
                        x=[r.depth for r in resid],
                        y=[b.id for b in baseline],
                        error_y=dict(type="data", array=[b.err for b in baseline], visible=True),
                        mode="lines+markers",
                        line=dict(color="#7f7f7f", dash="dash"),
                        marker=dict(color="#7f7f7f", size=6),
                        name="TwoNN of a random-initialised GPT-2 (chance)",
                        legendgroup="control",
                        showlegend=j == 1,
                        hovertemplate="random-initialised control<br>%{y:.3g}<extra></extra>",
                    ),
                    row=i,
                    col=j,
                )
        fig.update_yaxes(title_text=name.split(":")[0].split(" (")[0], row=i, col=1)
    fig.update_xaxes(title_text=_depth_axis_title(), row=len(estimators))
    fig.update_layout(
        title="Intrinsic dimension layer by layer",
        height=260 * len(estimators) + 120,
        width=1100,
        legend=dict(orientation="h", y=-0.08),
    )
    return fig


def id_vs_scale(rows: list[LayerRow], clouds: list[str]) -> go.Figure:
    """ID against distance scale at every residual layer: GRIDE (n1 = 1, 2, 4, ...) and TwoNN with decimation."""
    methods: list[tuple[str, str, Callable[[LayerRow], IDScaling]]] = [
        ("GRIDE", "gride", lambda r: r.gride),
        ("TwoNN with decimation", "twonn_decimation", lambda r: r.twonn_decimation),
    ]
    fig = make_subplots(
        rows=2,
        cols=len(clouds),
        column_titles=[CLOUD_TITLES[c] for c in clouds],
        vertical_spacing=0.12,
        horizontal_spacing=0.08,
    )
    for j, cloud in enumerate(clouds, start=1):
        resid = _by_depth(rows, cloud, True)
        colors = _layer_colors(len(resid))
        for i, (title, key, scaling_of) in enumerate(methods, start=1):
            for color, row in zip(colors, resid):
                scaling = scaling_of(row)
                fig.add_trace(
                    go.Scatter(
                        x=scaling.scales,
                        y=scaling.ids,
                        mode="lines+markers",
                        error_y=dict(type="data", array=scaling.errs, visible=True, thickness=1),
                        line=dict(color=color),
                        marker=dict(color=color, size=5),
                        name=f"layer {row.layer}",
                        legendgroup=f"layer {row.layer}",
                        showlegend=i == 1 and j == 1,
                        customdata=scaling.ranks,
                        hovertemplate=f"layer {row.layer}<br>scale %{{x:.3g}}<br>ID %{{y:.3g}}"
                        f"<br>{'n1' if key == 'gride' else 'points'} %{{customdata}}<extra></extra>",
                    ),
                    row=i,
                    col=j,
                )
            fig.update_xaxes(type="log", title_text="scale (mean neighbour distance)", row=i, col=j)
            fig.update_yaxes(title_text=f"{title} ID", row=i, col=j)
    fig.update_layout(title="Intrinsic dimension against scale", height=820, width=1100)
    return fig


def pca_spectra(rows: list[LayerRow], clouds: list[str]) -> go.Figure:
    """Share of variance of each principal component, one line per residual layer (log-log)."""
    fig = make_subplots(rows=1, cols=len(clouds), column_titles=[CLOUD_TITLES[c] for c in clouds])
    for j, cloud in enumerate(clouds, start=1):
        resid = _by_depth(rows, cloud, True)
        for color, row in zip(_layer_colors(len(resid)), resid):
            spectrum = row.pca_spectrum
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(spectrum) + 1)),
                    y=spectrum,
                    mode="lines",
                    line=dict(color=color),
                    name=f"layer {row.layer}",
                    legendgroup=f"layer {row.layer}",
                    showlegend=j == 1,
                    hovertemplate=f"layer {row.layer}<br>component %{{x}}<br>%{{y:.3%}} of variance<extra></extra>",
                ),
                row=1,
                col=j,
            )
        fig.update_xaxes(type="log", title_text="principal component", row=1, col=j)
        fig.update_yaxes(type="log", title_text="share of variance", row=1, col=j)
    fig.update_layout(title="PCA spectra per layer", height=520, width=1100)
    return fig


def pca_components_vs_depth(rows: list[LayerRow], clouds: list[str]) -> go.Figure:
    """Components needed for 75/80/85/90/95% of the variance at every site, inside blocks included."""
    fig = make_subplots(rows=1, cols=len(clouds), column_titles=[CLOUD_TITLES[c] for c in clouds])
    thresholds = sorted({k for r in rows for k in r.pca_components}, key=int)
    colors = sample_colorscale("Plasma", [i / max(1, len(thresholds)) for i in range(len(thresholds))])
    for j, cloud in enumerate(clouds, start=1):
        chosen = sorted((r for r in rows if r.cloud == cloud), key=lambda r: r.depth)
        for color, key in zip(colors, thresholds):
            fig.add_trace(
                go.Scatter(
                    x=[r.depth for r in chosen],
                    y=[r.pca_components[key] for r in chosen],
                    mode="lines+markers",
                    line=dict(color=color),
                    marker=dict(size=5),
                    name=f"{key}% of variance",
                    legendgroup=key,
                    showlegend=j == 1,
                    text=[_site_label(r) for r in chosen],
                    hovertemplate=f"%{{text}}<br>%{{y}} components for {key}%<extra></extra>",
                ),
                row=1,
                col=j,
            )
        fig.update_xaxes(title_text=_depth_axis_title(), row=1, col=j)
        fig.update_yaxes(type="log", title_text="principal components", row=1, col=j)
    fig.update_layout(title="Principal components needed for a share of the variance", height=520, width=1100)
    return fig


def norm_anisotropy(rows: list[LayerRow], clouds: list[str]) -> go.Figure:
    """Mean vector norm and mean pairwise cosine (anisotropy) along the forward pass."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=["mean norm", "mean pairwise cosine (anisotropy)"],
    )
    colors = {"last_token": "#1f77b4", "all_tokens": "#ff7f0e"}
    statistics: list[Callable[[LayerRow], float | None]] = [lambda r: r.mean_norm, lambda r: r.mean_cosine]
    for i, statistic in enumerate(statistics, start=1):
        for cloud in clouds:
            for trace in _depth_traces(
                rows, cloud, statistic, name=CLOUD_TITLES[cloud], color=colors[cloud], legend=i == 1
            ):
                fig.add_trace(trace, row=i, col=1)
    fig.update_xaxes(title_text=_depth_axis_title(), row=2, col=1)
    fig.update_layout(title="Norm and anisotropy layer by layer", height=720, width=1000)
    return fig


def text_distances(data: TextDistances) -> go.Figure:
    """Euclidean and cosine distance matrices between the texts' last-token vectors at one layer."""
    labels = [f"{i}: {escape(t[:28])}" for i, t in enumerate(data.texts)]
    hover = [escape(t) for t in data.texts]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["Euclidean distance", "cosine distance"], horizontal_spacing=0.2
    )
    for j, distances in enumerate((data.euclidean, data.cosine), start=1):
        fig.add_trace(
            go.Heatmap(
                z=distances,
                x=labels,
                y=labels,
                colorscale="Viridis",
                colorbar=dict(x=0.43 if j == 1 else 1.0),
                customdata=[[[a, b] for b in hover] for a in hover],
                hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>distance %{z:.3g}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        fig.update_yaxes(autorange="reversed", tickfont=dict(size=8), row=1, col=j)
        fig.update_xaxes(tickfont=dict(size=8), tickangle=60, row=1, col=j)
    fig.update_layout(title=f"Distances between texts (last token) at layer {data.layer}", height=800, width=1500)
    return fig


def tsne_3d(data: TsneMap) -> go.Figure:
    """3D t-SNE of the last-token cloud at one layer, coloured by the text's length in tokens."""
    coords = data.coords
    fig = go.Figure(
        go.Scatter3d(
            x=[c[0] for c in coords],
            y=[c[1] for c in coords],
            z=[c[2] for c in coords],
            mode="markers",
            marker=dict(size=3, color=data.n_tokens, colorscale="Viridis", colorbar=dict(title="tokens")),
            text=[escape(t) for t in data.texts],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"3D t-SNE of the last-token vectors at layer {data.layer} ({data.n_points} texts)",
        height=750,
        width=900,
    )
    return fig


def gram_log_volume(data: GramProfile) -> go.Figure:
    """log-volume of the parallelotope spanned by a prompt's token vectors, per layer."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=[
            "log volume, 0.5 log det(V V<sup>T</sup>)",
            "log volume of the unit vectors (directions only; 0 = orthogonal)",
        ],
    )
    for i, volumes in enumerate((data.log_volume, data.log_volume_unit), start=1):
        fig.add_trace(
            go.Scatter(
                x=data.layers,
                y=volumes,
                mode="lines+markers",
                showlegend=False,
                hovertemplate="layer %{x}<br>%{y:.4g}<extra></extra>",
            ),
            row=i,
            col=1,
        )
    fig.update_xaxes(title_text="layer (0 = embedding output)", row=2, col=1)
    n = len(data.tokens) - data.first_position
    prompt = escape(data.prompt[:70] + ("…" if len(data.prompt) > 70 else ""))
    fig.update_layout(title=f"Gram volume of {n} token vectors of “{prompt}”", height=650, width=1000)
    return fig


def geometry_result_figures(result: GeometryResult) -> dict[str, go.Figure]:
    return geometry_figures(result.findings)


FIGURES = Figures(
    geometry_result_figures,
    {
        "id_vs_layer": "Intrinsic dimension of the hidden representations layer by layer (TwoNN, GRIDE, PCA).",
        "id_vs_scale": "Intrinsic dimension against the distance scale at every residual layer (GRIDE, and TwoNN "
        "on decimated clouds).",
        "pca_components": "Principal components needed for 75-95% of the variance at every site of the forward pass.",
        "norm_anisotropy": "Mean vector norm and anisotropy (mean pairwise cosine) along the forward pass.",
        "gram_log_volume": "Log volume of the parallelotope spanned by the prompt's token vectors, per layer.",
        "pca_spectra": "The explained-variance spectrum of each cloud at every residual layer.",
        "text_distances": "Euclidean and cosine distances between the last-token vectors of the first texts, at the "
        "focus layer.",
        "tsne_3d": "The texts' last-token vectors at the focus layer, laid out by t-SNE in three dimensions.",
    },
    first=("id_vs_layer", "id_vs_scale", "pca_components", "norm_anisotropy", "gram_log_volume"),
)
