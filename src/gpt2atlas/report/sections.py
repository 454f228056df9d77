"""The report's sections: which analysis each runs, which figures it keeps, and its reading.

Each analysis module is imported when its section runs, so a module that is missing (or fails) costs only its
own section, which is recorded as skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from gpt2atlas.analysis.areas import AREAS, Area
from gpt2atlas.analysis.base import AreaUnavailable, call_supported, import_area
from gpt2atlas.analysis.embedding_findings import EmbeddingFindings
from gpt2atlas.analysis.summary import SummaryFindings, summary
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.report.document import Alternative, Part, Sample, SampleFindings, SamplingSettings, Table
from gpt2atlas.training.history import TrainingHistory
from gpt2atlas.viz import readings
from gpt2atlas.viz.figures import figures_of

WEIGHTS_PARAM = "blocks.0.attn.W_QKV"  # the report shows its query columns (W_Q of every head of layer 0)


@dataclass
class ReportContext:
    """What every section needs: the model, the prompts, the texts for geometry, and the knobs."""

    model: GPT2
    prompts: list[str]
    seed: int = 0
    texts: list[str] | None = None  # None: the geometry analysis's default corpus
    max_texts: int = 200
    max_new_tokens: int = 40
    num_samples: int = 2
    temperature: float = 1.0
    top_k: int | None = 40
    quick: bool = False  # smaller samples and probes: a rough report in seconds
    projections: tuple[str, ...] = ("pca",)  # token-embedding projections; "tsne" and "umap" take minutes
    all_tokens_budget: int = 3000  # points in geometry's all-tokens cloud (its default is 10,000: slower)
    history: TrainingHistory | None = None  # the model's training history, for "How it learned"
    progress: bool = True  # the analyses' own progress bars (embeddings, geometry)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    build: Callable[[ReportContext], list[Part]]
    about: str = ""


def pick_figures(figures: Mapping[str, go.Figure], preferred: tuple[str, ...], limit: int) -> dict[str, go.Figure]:
    """The `preferred` figures that exist (in that order), topped up with the others, `limit` at most."""
    names = [n for n in preferred if n in figures] + [n for n in figures if n not in preferred]
    return {name: figures[name] for name in names[:limit]}


@dataclass(frozen=True)
class AnalysisSection:
    """A section made from one analysis module's `analyze(...)`: figures picked, reading from its findings."""

    area: str
    module: str
    per_prompt: bool = True
    preferred: tuple[str, ...] = ()
    limit: int = 4
    entry: str = "analyze"
    options: Callable[[ReportContext], dict] = field(default=lambda ctx: {})
    tables: Callable[[Any], list[Table]] = field(default=lambda findings: [])  # from the typed findings

    def __call__(self, ctx: ReportContext) -> list[Part]:
        analyze = getattr(import_area(self.module), self.entry)
        options = self.options(ctx)  # once: the same options (and anything precomputed in them) serve every prompt
        if not self.per_prompt:
            return [self._part(call_supported(analyze, ctx.model, **options), None)]
        titled = len(ctx.prompts) > 1
        parts = [
            self._part(call_supported(analyze, ctx.model, prompt, **options), f"Prompt {i + 1}" if titled else None)
            for i, prompt in enumerate(ctx.prompts)
        ]
        return share_common(parts)

    def _part(self, result: Any, title: str | None) -> Part:
        findings = result.findings
        return Part(
            title=title,
            reading=readings.read(self.area, findings),
            tables=self.tables(findings),
            figures=pick_figures(figures_of(result), self.preferred, self.limit),
            findings=findings,
        )


SHARED_TITLE = "The whole model (the same for every prompt)"


def share_common(parts: list[Part]) -> list[Part]:
    """Lift what every prompt's part has in common (model-wide figures and sentences) into one part shown first.

    With several prompts, an area's model-wide figures (the embedding statistics, the LayerNorm gains) came out
    identical for each prompt and were drawn once per prompt: 5.9 MB of a 3-prompt GPT-2 report was repeats.
    """
    if len(parts) < 2:
        return parts
    first = parts[0]
    figures = {}
    for name, fig in first.figures.items():
        drawn = fig.to_json()  # once per figure, not once per comparison
        if all(name in p.figures and p.figures[name].to_json() == drawn for p in parts[1:]):
            figures[name] = fig
    reading = [s for s in first.reading if all(s in p.reading for p in parts[1:])]
    if not figures and not reading:
        return parts
    for part in parts:
        part.figures = {name: fig for name, fig in part.figures.items() if name not in figures}
        part.reading = [s for s in part.reading if s not in reading]
    return [Part(title=SHARED_TITLE, reading=reading, figures=figures, shared=True), *parts]


# ----- sections not backed by an analysis module ---------------------------------------------------------------
def summary_parts(ctx: ReportContext) -> list[Part]:
    data = summary(ctx.model)
    config = Table("Configuration", ["setting", "value"], [[k, str(v)] for k, v in data.config.settings().items()])
    total = data.parameter_counts["total"]
    counts = Table(
        "Parameters per component (unembedding tied to W_E, counted once)",
        ["component", "parameters", "share"],
        [[k.replace("_", " "), f"{v:,}", readings.pct(v / total)] for k, v in data.parameter_counts.items()],
    )
    findings = SummaryFindings(data.source, data.config, data.parameter_counts)
    return [Part(reading=readings.read_summary(data), tables=[config, counts], findings=findings)]


def sample_parts(ctx: ReportContext) -> list[Part]:
    model, decode = ctx.model, ctx.model.tokenizer.decode
    parts = []
    for i, prompt in enumerate(ctx.prompts):
        result = model.generate(
            prompt,
            ctx.max_new_tokens,
            temperature=ctx.temperature,
            top_k=ctx.top_k,
            seed=ctx.seed + i,
            num_samples=ctx.num_samples,
            alternatives=ALTERNATIVES,
        )
        samples = [
            Sample(
                prompt,
                [decode([t]) for t in tokens],
                [float(p) for p in probs],
                [[(decode([t]), float(p)) for t, p in zip(ids, ps)] for ids, ps in zip(step_ids, step_probs)],
            )
            for tokens, probs, step_ids, step_probs in zip(
                result.new_tokens, result.token_probs, result.top_tokens, result.top_probs
            )
        ]
        settings = SamplingSettings(ctx.max_new_tokens, ctx.temperature, ctx.top_k, ctx.seed + i, ctx.num_samples)
        reading = readings.read_samples(samples, model.cfg.d_vocab)
        reading.append(f"Sampling: temperature {ctx.temperature}, top-k {ctx.top_k}, seed {ctx.seed + i}.")
        parts.append(
            Part(
                title=f"Prompt {i + 1}" if len(ctx.prompts) > 1 else None,
                reading=reading,
                samples=samples,
                tables=[step_table(samples[0])] if samples and samples[0].tokens else [],
                findings=SampleFindings(
                    settings=settings,
                    texts=result.texts,
                    token_probs=result.token_probs,
                    alternatives=[
                        [[Alternative(t, p) for t, p in step] for step in sample.alternatives] for sample in samples
                    ],
                ),
            )
        )
    return parts


ALTERNATIVES = 5  # the likeliest next tokens kept at each generation step


def step_table(sample: Sample) -> Table:
    """The first sample step by step: the token drawn, its probability, and the distribution it was drawn from."""
    return Table(
        f"The first sample, step by step: the token drawn and the {ALTERNATIVES} most likely next tokens "
        "(probabilities at temperature 1, before top-k)",
        ["step", "drawn", "p", *(f"{i + 1}." for i in range(ALTERNATIVES))],
        [
            [
                str(step + 1),
                readings.quoted(token),
                readings.num(p),
                *(f"{readings.quoted(t)} {readings.num(q)}" for t, q in alternatives),
            ]
            for step, (token, p, alternatives) in enumerate(zip(sample.tokens, sample.probs, sample.alternatives))
        ],
    )


def learning_parts(ctx: ReportContext) -> list[Part]:
    """How it learned: the position embeddings smoothing and the heads forming, checkpoint by checkpoint."""
    if ctx.history is None:
        raise AreaUnavailable("no training history: use a run folder (--run DIR) or the shipped model (--model mini)")
    from dataclasses import replace

    from gpt2atlas.analysis.dynamics import analyze as analyze_dynamics
    from gpt2atlas.viz.dynamics import figures as dynamics_figures

    dynamics = analyze_dynamics(ctx.history, progress=False)
    figures = pick_figures(
        dynamics_figures(dynamics, ctx.history),
        ("position_tables", "positions_over_time", "heads_over_time", "loss"),
        4,
    )
    return [
        Part(
            reading=readings.read_dynamics(dynamics),
            figures=figures,
            findings=replace(dynamics, losses=[p for p in dynamics.losses if p.val_loss is not None]),
        )
    ]


def _embeddings_options(ctx: ReportContext) -> dict:
    """The vocabulary-wide numbers are computed here once, for every prompt's analysis to share."""
    from gpt2atlas.analysis.embeddings import vocabulary_stats

    local_anchors = 50 if ctx.quick else 200
    return {
        "seed": ctx.seed,
        "progress": ctx.progress,
        "projections": ctx.projections,
        "local_anchors": local_anchors,
        "sample_size": 500 if ctx.quick else 1000,
        "vocabulary": vocabulary_stats(ctx.model, local_anchors=local_anchors, seed=ctx.seed),
    }


NEIGHBOURS_SHOWN = 6


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
                [
                    readings.quoted(row.token),
                    *(f"{readings.quoted(n.token)} {n.cosine:.2f}" for n in row.neighbours[:NEIGHBOURS_SHOWN]),
                ]
                for row in rows
            ],
        )
    ]


def _attention_options(ctx: ReportContext) -> dict:
    return {"seed": ctx.seed, **({"repeat_batch": 2} if ctx.quick else {})}


def _weights_options(ctx: ReportContext) -> dict:
    """Layer 0's W_Q, all heads: the whole W_QKV would weigh ~10 MB in the page for GPT-2 small."""
    return {"param": WEIGHTS_PARAM, "cols": f"0:{ctx.model.cfg.d_model}"}


def _layernorm_options(ctx: ReportContext) -> dict:
    return {"seed": ctx.seed, **({"superposition_steps": 20} if ctx.quick else {})}


def _journey_options(ctx: ReportContext) -> dict:
    return {"seed": ctx.seed, "projections": tuple(p for p in ctx.projections if p in ("pca", "umap")) or ("pca",)}


def _geometry_options(ctx: ReportContext) -> dict:
    options = {
        "prompt": ctx.prompts[0],
        "max_texts": ctx.max_texts,
        "seed": ctx.seed,
        "progress": ctx.progress,
        "all_tokens_budget": ctx.all_tokens_budget,
    }
    if ctx.texts is not None:
        options["texts"] = ctx.texts[: ctx.max_texts]
    if ctx.quick:
        options.update(all_tokens_budget=1000, gride_max_rank=16)
    return options


# what the report passes to each area's analysis, and the tables it adds (the areas themselves: analysis/areas.py)
REPORT_OPTIONS: dict[str, Callable[[ReportContext], dict]] = {
    "embeddings": _embeddings_options,
    "weights": _weights_options,
    "attention": _attention_options,
    "layernorm": _layernorm_options,
    "journey": _journey_options,
    "geometry": _geometry_options,
}
REPORT_TABLES: dict[str, Callable[[Any], list[Table]]] = {"embeddings": neighbour_table}  # typed findings


def area_section(area: Area) -> SectionSpec:
    """The report section of an analysis area."""
    build = AnalysisSection(
        area.key,
        area.module,
        per_prompt=area.per_prompt,
        preferred=area.figures,
        limit=area.report_figures,
        options=REPORT_OPTIONS.get(area.key, lambda ctx: {}),
        tables=REPORT_TABLES.get(area.key, lambda findings: []),
    )
    return SectionSpec(area.key, area.title, build, area.about)


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("summary", "Model summary", summary_parts, "configuration and parameters per component"),
    *(area_section(area) for area in AREAS),
    SectionSpec("samples", "Generated samples", sample_parts, "continuations with per-token probabilities"),
    SectionSpec(
        "learning",
        "How it learned",
        learning_parts,
        "position embeddings and heads over training, against the initial checkpoint",
    ),
)
SECTION_KEYS = tuple(spec.key for spec in SECTIONS)
