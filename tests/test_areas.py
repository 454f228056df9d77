"""The contract every area's spec keeps (gpt2atlas.areas), and that every consumer is made from the specs."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace

import pytest

from gpt2atlas.analysis.kinds import Inputs, OverCorpus, PerPrompt, PromptPair, WholeModel, options_taken
from gpt2atlas.app.views import VIEWS
from gpt2atlas.app.views.analysis import AnalysisView, SpecView
from gpt2atlas.areas import AREAS, LAYER_AREAS, area, figures_of, spec_of
from gpt2atlas.areas.spec import AreaSpec, ReportContext
from gpt2atlas.errors import InputError
from gpt2atlas.report.sections import SECTION_KEYS, SECTIONS, AnalysisSection

PROMPT = "The cat sat on the mat. The cat sat on the mat because it was warm."
QUICK = {  # options that keep each area fast on the tiny model
    "embeddings": {"projections": ("pca",), "sample_size": 200, "local_anchors": 20, "progress": False},
    "weights": {"param": "blocks.0.attn.W_QKV"},
    "layernorm": {"superposition_steps": 5},
    "journey": {"projections": ("pca",)},
    "geometry": {"max_texts": 30, "all_tokens_budget": 200, "gride_max_rank": 8, "progress": False},
    "causes": {"sites": ("resid_pre", "attn_out", "mlp_out", "head_out", "head_out_by_pos", "head_pattern")},
}


@pytest.fixture(scope="module")
def drawn(tiny_checkpoint) -> dict[str, tuple]:
    """Every area run once on the tiny model through its spec, with its figures drawn."""
    from gpt2atlas import load_model

    model = load_model(str(tiny_checkpoint))
    out = {}
    for spec in AREAS:
        prompted = spec.per_prompt or isinstance(spec.kind, PromptPair)  # a pair: the analysis makes one
        result = spec.run(model, Inputs(PROMPT) if prompted else Inputs(), QUICK.get(spec.key, {}))
        out[spec.key] = (result, spec.figures(result))
    return out


@pytest.mark.parametrize("spec", AREAS, ids=lambda spec: spec.key)
def test_every_figure_drawn_is_declared_with_a_caption(spec: AreaSpec, drawn):
    result, figures = drawn[spec.key]
    assert result.area == spec.key and spec_of(result) is spec
    assert figures and [name for name in figures if name not in spec.figures.captions] == []
    assert set(spec.figures.first) <= set(spec.figures.captions)
    assert 0 < spec.report_figures <= len(spec.figures.first)
    for caption in spec.figures.captions.values():
        assert caption[0].isupper() and caption.endswith(".") and "_" not in caption


def test_every_declared_figure_is_drawn_by_some_run(drawn):
    """A caption no drawer ever draws is a stale name (only the maps not asked for are left out here: the slow
    projections, and causes' ablation, drawn only with --data, in test_causes_area)."""
    asked_not = {f"tokens_{method}_{dims}d" for method in ("tsne", "umap") for dims in (2, 3)} | {"ablation"}
    for spec in AREAS:
        never = set(spec.figures.captions) - set(drawn[spec.key][1]) - asked_not
        if spec.key == "attention":
            never.discard("prompt_induction")  # only on a prompt with an induction target (test_attention)
        assert never == set(), spec.key


@pytest.mark.parametrize("spec", AREAS, ids=lambda spec: spec.key)
def test_the_reading_says_something(spec: AreaSpec, drawn):
    result, _ = drawn[spec.key]
    sentences = spec.reading(result.findings)
    assert sentences and all(isinstance(s, str) and s for s in sentences)


@pytest.mark.parametrize("spec", AREAS, ids=lambda spec: spec.key)
def test_knobs_and_options_match_the_analysis(spec: AreaSpec, tiny_model):
    taken = options_taken(spec.kind)
    assert [knob.name for knob in spec.knobs if knob.name not in taken] == []
    assert [name for name, _ in spec.dashboard.options if name not in taken] == []
    context = ReportContext(tiny_model, [PROMPT], quick=True, progress=False)
    assert [name for name in spec.report.options(context) if name not in taken] == []
    parameters = list(inspect.signature(spec.kind.entry).parameters)
    assert parameters[0] == "model"
    if isinstance(spec.kind, (PerPrompt, OverCorpus)):
        assert parameters[1] == "prompt"
    if spec.command.prompt == "none":
        assert isinstance(spec.kind, WholeModel)
    for name in ("model", "prompt", "clean", "corrupted"):
        assert name not in taken


def test_the_registry_is_the_list_of_specs():
    keys = [spec.key for spec in AREAS]
    assert len(set(keys)) == len(keys) and len({spec.label for spec in AREAS}) == len(keys)
    assert area("attention") is AREAS[2]
    with pytest.raises(KeyError, match="no area 'nope'"):
        area("nope")


def test_an_unknown_area_is_never_drawn_as_nothing():
    from gpt2atlas.analysis.base import AnalysisResult

    class Stray(AnalysisResult):
        area = "stray"

    with pytest.raises(ValueError, match="no area declares results of 'stray'"):
        figures_of(Stray({}))


def test_the_report_the_dashboard_and_layers_are_made_from_the_specs():
    assert [k for k in SECTION_KEYS if k in {s.key for s in AREAS}] == [s.key for s in AREAS]
    for spec in AREAS:
        section = next(s for s in SECTIONS if s.key == spec.key)
        assert section.title == spec.title and isinstance(section.build, AnalysisSection)
        assert section.build.spec is spec
        view = VIEWS[spec.label]
        if spec.dashboard.view is None:
            assert isinstance(view, AnalysisView) and view.spec is spec
        else:
            assert isinstance(view, SpecView) and view.view is spec.dashboard.view
        for name, after in spec.dashboard.after:
            assert isinstance(VIEWS[name], SpecView) and VIEWS[name].view is after  # type: ignore[attr-defined]
    labels = [name for name in VIEWS if name in {s.label for s in AREAS}]
    assert labels == [s.label for s in AREAS]
    assert [s.key for s in LAYER_AREAS] == ["attention", "neurons", "layernorm", "residual", "journey", "saliency"]


def test_every_area_has_a_command_made_from_its_knobs():
    from typer.main import get_command

    from gpt2atlas.cli.main import app

    click_app = get_command(app)
    for spec in AREAS:
        signature = spec.defaults()
        command = click_app.commands[spec.key]  # type: ignore[attr-defined]
        options = {param.name: param for param in command.params}
        part = spec.command
        assert part.prompt == "none" or options["prompt"].required == (part.prompt == "required"), spec.key
        for knob in spec.knobs:
            assert knob.flag in options[knob.name].opts, (spec.key, knob.name)
            default = signature[knob.name].default
            if knob.listed:
                assert options[knob.name].default == ",".join(default)
            elif not knob.repeated:
                assert options[knob.name].default == default, (spec.key, knob.name)
        for option in part.options:
            assert options[option.name].default == option.default
        assert command.help == (part.help or spec.about)


def test_knobs_reach_the_analysis(tiny_checkpoint, tmp_path):
    from gpt2atlas.cli.main import main

    code = main(
        ["embeddings", "--model", str(tiny_checkpoint), "--out", str(tmp_path), "--no-png", "--projections", "pca"]
        + ["--sample-size", "123", "--dim-pair", "3:5", "--dim-pair", "7:9", "--prompt", "cat"]
    )
    assert code == 0
    findings = json.loads((tmp_path / "embeddings" / "findings.json").read_text())
    assert findings["dim_pairs"] == [[3, 5], [7, 9]]
    assert findings["projection_sample"]["size"] == 123 and findings["projection_sample"]["methods"] == ["pca"]


def test_errors_name_the_flags_the_knobs_declare():
    from gpt2atlas.cli.commands.areas import flag_names

    assert flag_names() == {"dim_pairs": "dim-pair", "extra_prompts": "extra-prompt", "all_tokens_budget": "budget"}


# ----- an option no analysis takes is refused, naming it ----------------------------------------------------
def test_an_unknown_option_from_python_names_it(tiny_model):
    with pytest.raises(InputError, match=r"unknown option 'layr' for the neurons analysis: it takes layer, ") as err:
        area("neurons").run(tiny_model, Inputs(PROMPT), {"layr": 1})
    assert err.value.arguments == ("layr",)
    with pytest.raises(InputError, match="unknown option 'prompt'"):  # the prompt is an input, never an option
        area("weights").run(tiny_model, Inputs(), {"prompt": "x"})


def test_an_unknown_report_option_skips_the_section_naming_it(tiny_model, tmp_path, monkeypatch):
    from gpt2atlas.report import build_report, builder, sections

    spec = area("residual")
    misspelt = replace(spec, report=replace(spec.report, options=lambda ctx: {"treshold": 5.0}))
    specs = (sections.SECTIONS[0], sections.area_section(misspelt))
    monkeypatch.setattr(builder, "SECTIONS", specs)
    _, report = build_report(tiny_model, tmp_path / "r.html", prompts=["hello"], progress=False)
    skipped = {s.key: s.skipped for s in report.sections}
    assert skipped["summary"] is None
    assert "unknown option 'treshold' for the residual analysis" in (skipped["residual"] or "")


def test_an_unknown_dashboard_option_is_an_error_naming_it(tiny_checkpoint):
    from gpt2atlas.app import state

    with pytest.raises(InputError, match="unknown option 'superposition_step' for the layernorm analysis"):
        state.cached_analysis(str(tiny_checkpoint), area("layernorm"), PROMPT, (("superposition_step", 3),))
