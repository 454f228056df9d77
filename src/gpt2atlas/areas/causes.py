"""Causes: which parts produce a prediction, measured on a clean prompt against a corrupted one (DLA, patching,
attribution patching). The report and a first dashboard visit use a code prompt whose first copy is corrupted, on
which the shipped mini's induction head (L1H3) restores most of the answer."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpt2atlas.analysis import attention
from gpt2atlas.analysis.causes.inputs import SITES
from gpt2atlas.analysis.causes.summary import DEFAULT_SITES, CausesResult, analyze_pair
from gpt2atlas.analysis.kinds import Inputs, PromptPair
from gpt2atlas.areas.pickers import streamlit
from gpt2atlas.areas.spec import AreaSpec, CommandPart, DashboardPart, Knob, Page, ReportContext, ReportPart
from gpt2atlas.viz import attention as attention_figures
from gpt2atlas.viz import causes as figures
from gpt2atlas.viz.labels import token_labels
from gpt2atlas.viz.readings import read_causes

# The default pair: a line of code, then the same line cut in the middle of its last identifier ("expected_"),
# whose end ("colour") only the first copy tells; the corrupted prompt has another first line of the same length.
LINE = "    self.assertEqual(widget.colour, expected_colour)\n"
CUT = "    self.assertEqual(widget.colour, expected_"
CLEAN = LINE + CUT
CORRUPTED = "    self.assertEqual(button.height, default_height)\n" + CUT
ANSWER, OTHER = "colour", "height"
DEFAULT_PAIR = Inputs(CLEAN, CORRUPTED)


def report_options(ctx: ReportContext) -> dict[str, Any]:
    return {"answer": ANSWER, "other": OTHER, "sites": ("head_out",), "seed": ctx.seed}


def head_patterns(page: Page, prompt: str, layer: int) -> tuple[np.ndarray, list[str]]:
    """(head, query, key) patterns of one layer on `prompt`, and numbered token labels."""

    def compute() -> tuple[np.ndarray, list[str]]:
        tokens = page.model.to_tokens(prompt)
        patterns = attention.layer_patterns(page.model, tokens, layer)[0].cpu().numpy()
        return patterns, token_labels(page.model.to_str_tokens(tokens[0].tolist()), numbered=True)

    return page.cached(("causes patterns", prompt, layer), compute)


def view(page: Page) -> None:
    """A clean and a corrupted prompt and the answer/other tokens; the reading, the heat maps, then a head picker
    that shows the head's pattern on both prompts."""
    st = streamlit()
    clean = st.text_area("Clean prompt", CLEAN, key="causes_clean")
    corrupted = st.text_area("Corrupted prompt (same number of tokens)", CORRUPTED, key="causes_corrupted")
    left, right = st.columns(2)
    answer = left.text_input("Answer token", ANSWER, key="causes_answer") or None
    other = right.text_input("Other token (blank: the answer's logit alone)", OTHER, key="causes_other") or None
    options = (("answer", answer), ("other", other), ("sites", DEFAULT_SITES))

    def compute() -> tuple[CausesResult, dict]:
        result = SPEC.run(page.model, Inputs(clean, corrupted), dict(options))
        assert isinstance(result, CausesResult)
        return result, SPEC.figures(result)

    result, drawn = page.cached(("causes", clean, corrupted, options), compute, "patching ...")
    page.reading(SPEC.read(result.findings))
    for name in ("patch_head_out", "patch_resid_pre", "dla", "attribution_head_out", "attribution_resid_pre"):
        page.chart(drawn[name], key=f"causes_{name}")
    cfg = page.model.cfg
    best = result.findings.sweeps[DEFAULT_SITES.index("head_out")].ranking.top  # "L1H3"
    top_layer, top_head = (int(x) for x in best[1:].split("H"))
    st.markdown("**A head's attention on both prompts** (the head that restores most is picked first)")
    left, right = st.columns(2)
    layer = left.selectbox("Layer", list(range(cfg.n_layer)), index=top_layer, key="causes_layer")
    head = right.selectbox("Head", list(range(cfg.n_head)), index=top_head, key="causes_head")
    for which, prompt in (("clean", clean), ("corrupted", corrupted)):
        patterns, labels = head_patterns(page, prompt, layer)
        title = f"L{layer}H{head} on the {which} prompt"
        page.chart(attention_figures.pattern_figure(patterns[head], labels, title), key=f"causes_pattern_{which}")


SPEC = AreaSpec(
    "causes",
    "Causes: which parts produce the answer",
    "Causes",
    "direct logit attribution, activation patching and attribution patching on a clean/corrupted pair",
    PromptPair(analyze_pair),
    figures.FIGURES,
    read_causes,
    knobs=(
        Knob(
            "answer",
            "the answer token (default: the built-in pair's repeated token, else the clean run's top prediction)",
            str,
        ),
        Knob(
            "other",
            "the token the answer is measured against (default: the corrupted run's top prediction, or the clean "
            "run's next one where that is the answer)",
            str,
        ),
        Knob("sites", f"patching sites, comma-separated: {', '.join(SITES)}", str, listed=True),
        Knob("position", "the position whose prediction DLA splits (patching reads the last)"),
        Knob("seed", "seed of the random tokens (built-in pair) and random directions"),
        Knob(
            "data",
            "also zero- and mean-ablate every head and MLP over this corpus and report the loss increase of each: "
            "the same corpora as `gpt2atlas train --data` (a file, a folder or a built-in corpus name)",
            str,
        ),
        Knob("ablation_tokens", "at most this many tokens of --data for the ablation"),
    ),
    report=ReportPart(report_options, pair=lambda ctx: DEFAULT_PAIR),
    dashboard=DashboardPart(view=view),
    command=CommandPart(
        "Which parts produce a prediction: direct logit attribution, activation patching and attribution "
        "patching, on a clean prompt against a corrupted one (without --corrupted, the prompt repeated with its "
        "first copy replaced by random tokens, which tests induction).",
        prompt_help="the clean prompt",
    ),
)
