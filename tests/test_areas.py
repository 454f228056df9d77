"""Each analysis area is declared once (analysis/areas.py) and every consumer is made from that declaration."""

from __future__ import annotations

import importlib

from gpt2atlas.analysis.areas import AREA_KEYS, AREAS, LAYER_AREAS
from gpt2atlas.app.views import VIEWS
from gpt2atlas.app.views.analysis import AnalysisView
from gpt2atlas.report.sections import SECTION_KEYS, SECTIONS
from gpt2atlas.viz.captions import CAPTIONS
from gpt2atlas.viz.readings import READERS


def test_every_area_has_its_module_reading_and_captions():
    for area in AREAS:
        assert callable(importlib.import_module(area.module).analyze), area.key
        assert area.key in READERS, f"{area.key}: no reading in viz/readings.py"
        assert [f for f in area.figures if f not in CAPTIONS] == [], area.key


def test_the_report_the_dashboard_and_layers_are_made_from_the_areas():
    assert [k for k in SECTION_KEYS if k in AREA_KEYS] == list(AREA_KEYS)  # every area, in the declared order
    titles = {spec.key: spec.title for spec in SECTIONS}
    assert all(titles[a.key] == a.title for a in AREAS)
    labels = [name for name in VIEWS if name in {a.label for a in AREAS}]
    assert labels == [a.label for a in AREAS]
    for area in AREAS:
        view = VIEWS[area.label]
        if isinstance(view, AnalysisView):
            assert (view.module, view.preferred, view.on_demand) == (area.module, area.figures, area.slow)
    assert LAYER_AREAS == ("attention", "neurons", "layernorm", "residual", "journey", "saliency")


def test_every_area_has_a_command_made_from_its_knobs():
    import inspect

    from typer.main import get_command

    from gpt2atlas.cli.main import app

    click_app = get_command(app)
    for area in AREAS:
        signature = inspect.signature(importlib.import_module(area.module).analyze).parameters
        command = click_app.commands[area.key]  # type: ignore[attr-defined]
        options = {param.name: param for param in command.params}
        assert area.prompt == "none" or options["prompt"].required == (area.prompt == "required"), area.key
        for knob in area.knobs:
            assert knob.name in signature, f"{area.key}: analyze() has no argument {knob.name}"
            assert knob.flag in options[knob.name].opts, (area.key, knob.name)
            default = signature[knob.name].default
            if knob.listed:
                assert options[knob.name].default == ",".join(default)
            elif not knob.repeated:
                assert options[knob.name].default == default, (area.key, knob.name)
        assert command.help == (area.command or area.about)


def test_knobs_reach_the_analysis(tiny_checkpoint, tmp_path):
    import json

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
