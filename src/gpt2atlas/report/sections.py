"""The report's sections: one per area (everything it runs, keeps and reads comes from the area's spec), and
the summary, the samples and how the model learned around them.

A section that fails costs only itself: it is recorded as skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import plotly.graph_objects as go

from gpt2atlas.analysis.base import AnalysisResult, AreaUnavailable
from gpt2atlas.analysis.kinds import Inputs, OverCorpus, PerPrompt, PromptPair, WholeModel
from gpt2atlas.analysis.summary import SummaryFindings, summary
from gpt2atlas.areas import AREAS
from gpt2atlas.areas.spec import AreaSpec, ReportContext
from gpt2atlas.report.document import Alternative, Part, Sample, SampleFindings, SamplingSettings, Table
from gpt2atlas.viz import readings
from gpt2atlas.viz.atlas import neuron_view

__all__ = ["SECTIONS", "SECTION_KEYS", "AnalysisSection", "ReportContext", "SectionSpec", "area_section"]


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
    """The section of one area: its analysis run its own way (once per prompt, once for the model, once over
    the corpus), the figures picked, the reading and tables from its findings."""

    spec: AreaSpec

    def __call__(self, ctx: ReportContext) -> list[Part]:
        spec = self.spec
        options = spec.report.options(ctx)  # once: the same options (and anything precomputed) serve every prompt
        if isinstance(spec.kind, PerPrompt):
            titled = len(ctx.prompts) > 1
            parts = [
                self._part(spec.run(ctx.model, Inputs(prompt), options), f"Prompt {i + 1}" if titled else None)
                for i, prompt in enumerate(ctx.prompts)
            ]
            return share_common(parts) + self._atlas_parts(ctx, [p.findings for p in parts])
        if isinstance(spec.kind, PromptPair):
            if spec.report.pair is None:
                raise AreaUnavailable("the report has no corrupted prompt to compare with")
            return [self._part(spec.run(ctx.model, spec.report.pair(ctx), options), None)]
        inputs = Inputs(ctx.prompts[0]) if isinstance(spec.kind, OverCorpus) else Inputs()
        assert isinstance(spec.kind, (OverCorpus, WholeModel))
        return [self._part(spec.run(ctx.model, inputs, options), None)]

    def _atlas_parts(self, ctx: ReportContext, findings: list) -> list[Part]:
        """One part per neuron the findings point to (the strongest on the prompts, each once), from the atlas."""
        pick = self.spec.report.atlas
        if ctx.atlas is None or pick is None:
            return []
        units = list(dict.fromkeys(unit for f in findings for unit in pick(f)))
        return [atlas_part(ctx, layer, index) for layer, index in units]

    def _part(self, result: AnalysisResult, title: str | None) -> Part:
        spec, findings = self.spec, result.findings
        figures = pick_figures(spec.figures(result), spec.figures.first, spec.report_figures)
        return Part(
            title=title,
            reading=spec.read(findings),
            tables=spec.report.tables(findings),
            figures=figures,
            captions=spec.figures.captions_of(figures),
            findings=findings,
        )


REPORT_EXAMPLES = 6  # top examples shown per neuron in the report (the dashboard shows 10)


def atlas_part(ctx: ReportContext, layer: int, index: int) -> Part:
    """What the report's atlas says about one neuron: reading, shaded examples, bands, logit effect, histogram."""
    assert ctx.atlas is not None
    view = neuron_view(ctx.atlas, layer, index, examples=REPORT_EXAMPLES)
    return Part(
        title=view.title,
        reading=list(view.reading),
        blocks=list(view.blocks),
        tables=list(view.tables),
        figures=dict(view.figures),
        captions=dict(view.captions),
        findings=view.entry,
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
    captions = {name: first.captions[name] for name in figures}
    return [Part(title=SHARED_TITLE, reading=reading, figures=figures, captions=captions, shared=True), *parts]


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
    from gpt2atlas.viz.dynamics import FIGURES

    dynamics = analyze_dynamics(ctx.history, progress=False)
    figures = pick_figures(FIGURES(dynamics, ctx.history), FIGURES.first, 4)
    return [
        Part(
            reading=readings.read_dynamics(dynamics),
            figures=figures,
            captions=FIGURES.captions_of(figures),
            findings=replace(dynamics, losses=[p for p in dynamics.losses if p.val_loss is not None]),
        )
    ]


def area_section(spec: AreaSpec) -> SectionSpec:
    """The report section of an area."""
    return SectionSpec(spec.key, spec.title, AnalysisSection(spec), spec.about)


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("summary", "Model summary", summary_parts, "configuration and parameters per component"),
    *(area_section(spec) for spec in AREAS),
    SectionSpec("samples", "Generated samples", sample_parts, "continuations with per-token probabilities"),
    SectionSpec(
        "learning",
        "How it learned",
        learning_parts,
        "position embeddings and heads over training, against the initial checkpoint",
    ),
)
SECTION_KEYS = tuple(spec.key for spec in SECTIONS)
