"""Token and position embeddings; the dashboard shows the token cloud projected to 2D or 3D first."""

from typing import Any

from gpt2atlas.analysis import embeddings
from gpt2atlas.analysis.embedding_findings import EmbeddingFindings
from gpt2atlas.analysis.kinds import Inputs, PerPrompt
from gpt2atlas.areas.pickers import streamlit
from gpt2atlas.areas.spec import AreaSpec, CommandPart, DashboardPart, Knob, Page, ReportContext, ReportPart, dim_pair
from gpt2atlas.viz import embeddings as figures
from gpt2atlas.viz.readings import quoted, read_embeddings
from gpt2atlas.viz.tables import Table

NEIGHBOURS_SHOWN = 6
METHODS = {"PCA": "pca", "t-SNE (slower)": "tsne", "UMAP (slower)": "umap"}
SAMPLE_SIZE = 1500  # tokens in the dashboard's projections


def report_options(ctx: ReportContext) -> dict[str, Any]:
    """The vocabulary-wide numbers are computed here once, for every prompt's analysis to share."""
    local_anchors = 50 if ctx.quick else 200
    return {
        "seed": ctx.seed,
        "progress": ctx.progress,
        "projections": ctx.projections,
        "local_anchors": local_anchors,
        "sample_size": 500 if ctx.quick else 1000,
        "vocabulary": embeddings.vocabulary_stats(ctx.model, local_anchors=local_anchors, seed=ctx.seed),
    }


def neighbour_table(findings: EmbeddingFindings) -> list[Table]:
    """The prompt's tokens and their nearest tokens in the embedding (cosine), as computed by the analysis."""
    rows = findings.neighbours
    if not rows:
        return []
    note = f"; random directions reach {findings.neighbour_cosine_chance:.2f} in 95% of draws"
    return [
        Table(
            f"Nearest tokens in the token embedding, by cosine similarity (whole vocabulary{note})",
            ["token", *(f"{i + 1}." for i in range(NEIGHBOURS_SHOWN))],
            [
                [quoted(row.token), *(f"{quoted(n.token)} {n.cosine:.2f}" for n in row.neighbours[:NEIGHBOURS_SHOWN])]
                for row in rows
            ],
        )
    ]


def view(page: Page) -> None:
    """The token cloud projected to 2D or 3D (PCA, t-SNE or UMAP) with the prompt's tokens labelled."""
    left, right = streamlit().columns(2)
    method = METHODS[left.radio("Projection", list(METHODS), horizontal=True, key="embeddings_method")]
    dims = right.radio("Dimensions", [2, 3], horizontal=True, key="embeddings_dims")
    # the prompt-independent numbers, once per model: a new prompt then costs only its own part
    vocabulary = page.cached(
        ("embeddings vocabulary",), lambda: embeddings.vocabulary_stats(page.model), "analysing the vocabulary ..."
    )
    options = {"projections": (method,), "sample_size": SAMPLE_SIZE, "progress": False, "vocabulary": vocabulary}
    result = page.cached(
        ("embeddings", page.prompt, method), lambda: SPEC.run(page.model, Inputs(page.prompt), options), "analysing ..."
    )
    drawn = page.cached(("embeddings figures", page.prompt, method), lambda: SPEC.figures(result), "drawing ...")
    page.chart(drawn[f"tokens_{method}_{dims}d"], key="embeddings_projection")
    page.reading(SPEC.read(result.findings))
    others = {k: v for k, v in drawn.items() if not k.startswith(f"tokens_{method}")}
    page.figure_picker(others, SPEC.figures, "embeddings_figure", ("dim_stats", "position_curves", "joint_pca_3d"))


SPEC = AreaSpec(
    "embeddings",
    "Token and position embeddings",
    "Embeddings",
    "offset dims, position curves, projections, nearest neighbours",
    PerPrompt(embeddings.analyze),
    figures.FIGURES,
    read_embeddings,
    knobs=(
        Knob("projections", "comma-separated projections of the token sample: pca, tsne, umap", str, listed=True),
        Knob("sample_size", "tokens in the PCA and dimension-pair scatters"),
        Knob("manifold_size", "tokens embedded by t-SNE and UMAP (the sample's first)"),
        Knob(
            "dim_pairs",
            "two dims to scatter tokens and positions in, e.g. 87:138 (repeatable)",
            str,
            ("--dim-pair",),
            repeated=True,
            parse=dim_pair,
        ),
        Knob("seed", "seed of the token sample, t-SNE and UMAP"),
    ),
    report=ReportPart(report_options, neighbour_table, shown=7),  # of the token maps, only those asked for exist
    dashboard=DashboardPart(view=view),
    command=CommandPart(
        "Token and position embeddings: offset dims, norms, PCA, periodicity, smoothness, neighbours, projections.",
        prompt="optional",
        prompt_help="text whose tokens get nearest neighbours and labels (default: a few words)",
    ),
)
