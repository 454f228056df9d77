"""The dashboard through Streamlit's testing API: sidebar, Generate, every view, bad input shown in the page."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gpt2atlas.app.state import MODEL_ENV, default_model
from gpt2atlas.app.views import VIEWS
from gpt2atlas.app.widgets import token_strip
from gpt2atlas.cli.commands.report import app_command
from gpt2atlas.cli.main import main

APP = Path(__file__).parents[1] / "src" / "gpt2atlas" / "app" / "streamlit_app.py"
HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"


@pytest.fixture()
def app(tiny_checkpoint, monkeypatch) -> AppTest:
    monkeypatch.setenv(MODEL_ENV, str(tiny_checkpoint))
    at = AppTest.from_file(str(APP), default_timeout=90).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception  # a traceback in the page is a bug
    return [e.value for e in at.error]


def test_sidebar_has_every_setting(app, tiny_checkpoint):
    sidebar = app.sidebar
    assert sidebar.text_input(key="model").value == str(tiny_checkpoint)
    assert sidebar.text_area(key="prompt").value
    for key in ("max_new_tokens", "temperature", "top_k", "seed"):
        assert sidebar.number_input(key=key) is not None
    assert sidebar.button(key="generate").label == "Generate"
    assert app.radio(key="view").options == list(VIEWS)
    assert {"Summary", "Weights", "Residual", "Saliency"} <= set(VIEWS)


def test_the_landing_page_already_shows_the_default_prompt_continued(app):
    assert app.radio(key="view").value == "Generated text"
    generation = app.session_state["generation"]
    assert generation["tokens"] and len(generation["alternatives"]) == len(generation["tokens"])
    assert "gpt2atlas-sample" in app.get("html")[0].proto.body  # drawn before any button is pressed


def test_generate_shows_tokens_with_probabilities_escaped(app, tiny_model):
    app.sidebar.text_area(key="prompt").input(HOSTILE)
    app.sidebar.number_input(key="max_new_tokens").set_value(7)
    app.sidebar.number_input(key="seed").set_value(3)
    app.sidebar.button(key="generate").click().run()
    assert errors(app) == []
    generation = app.session_state["generation"]
    assert len(generation["tokens"]) == len(generation["probs"]) <= 7 and generation["probs"]
    expected = tiny_model.generate(HOSTILE, 7, temperature=1.0, top_k=40, seed=3)
    # rel 1e-5, and abs 1e-8 for the tiny probabilities (~3e-5) of a random model, whose relative error a float
    # reduction order alone can push past 1e-5 (seen once: 5e-10 apart)
    assert generation["probs"] == pytest.approx(expected.token_probs[0], rel=1e-5, abs=1e-8)
    body = app.get("html")[0].proto.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "&lt;script&gt;" in body
    assert "<img" not in body and "<script" not in body
    assert len(app.dataframe) == 1


def test_token_strip_escapes_tokens():
    html = token_strip("<b>", ["<script>", " x"], [0.5, 0.25])
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert 'title="p = 0.5"' in html


def test_attention_view_layers_heads_lines_and_matrix(app, tiny_model):
    app.radio(key="view").set_value("Attention").run()
    assert errors(app) == [] and len(app.get("plotly_chart")) == 1
    app.selectbox(key="attention_layer").set_value(1)
    app.selectbox(key="attention_head").set_value(2).run()
    assert errors(app) == []
    spec = app.get("plotly_chart")[0].proto.spec
    assert "layer 1 head 2" in spec
    app.radio(key="attention_mode").set_value("lines").run()
    assert errors(app) == [] and "attention lines" in app.get("plotly_chart")[0].proto.spec
    app.selectbox(key="attention_head").set_value("all heads").run()  # every head, not head 0 only
    assert errors(app) == [] and "every head (one colour each)" in app.get("plotly_chart")[0].proto.spec


def test_causes_view_heat_maps_and_a_heads_pattern_on_both_prompts(app):
    app.radio(key="view").set_value("Causes").run()
    assert errors(app) == [] and len(app.get("plotly_chart")) == 7  # 5 causes figures, 2 patterns
    app.selectbox(key="causes_layer").set_value(0)
    app.selectbox(key="causes_head").set_value(2).run()
    specs = figure_specs(app)
    assert "L0H2 on the clean prompt" in specs and "L0H2 on the corrupted prompt" in specs
    app.text_input(key="causes_answer").input("colourful").run()
    assert any("is not a single token" in e for e in errors(app))


def figure_specs(app: AppTest) -> str:
    return " ".join(chart.proto.spec for chart in app.get("plotly_chart"))


def test_how_it_learned_shows_the_shipped_history_and_explains_its_absence(app):
    app.radio(key="view").set_value("How it learned").run()
    assert errors(app) == [] and any("needs a training history" in i.value for i in app.info)
    app.sidebar.text_input(key="model").input("mini").run()
    assert errors(app) == []
    assert len(app.get("plotly_chart")) == 1
    assert any("position" in m.value and "initial" in m.value for m in app.markdown)


def test_pickers_steer_the_analyses(app):
    app.radio(key="view").set_value("Neurons").run()
    app.selectbox(key="neuron_layer").set_value(1).run()
    app.number_input(key="neuron_number").set_value(5).run()
    assert errors(app) == [] and any("Neuron L1N5 " in m.value for m in app.markdown)
    app.radio(key="view").set_value("Journey").run()
    app.selectbox(key="journey_position").set_value(0).run()
    assert errors(app) == []
    app.radio(key="view").set_value("LayerNorm").run()
    app.selectbox(key="layernorm_layer").set_value(1).run()
    assert errors(app) == [] and "blocks.1" in figure_specs(app)
    app.radio(key="view").set_value("Weights").run()
    app.selectbox(key="weights_param").set_value("blocks.1.mlp.W_out").run()
    assert errors(app) == [] and "blocks.1.mlp.W_out" in figure_specs(app)
    app.radio(key="view").set_value("Saliency").run()
    app.text_input(key="saliency_target").input(" the").run()
    assert errors(app) == [] and any("' the'" in m.value for m in app.markdown)


def test_coming_back_to_a_picker_value_reuses_the_analysis(app, monkeypatch):
    from gpt2atlas.areas import spec

    app.radio(key="view").set_value("Neurons").run()
    app.selectbox(key="neuron_layer").set_value(1).run()
    calls = []
    original = spec.run  # the runner every area's analysis goes through
    monkeypatch.setattr(spec, "run", lambda *a, **k: calls.append(k) or original(*a, **k))
    app.selectbox(key="neuron_layer").set_value(0).run()
    app.selectbox(key="neuron_layer").set_value(1).run()
    assert errors(app) == [] and len(calls) <= 1  # layer 0 computed once; layer 1 came from the cache


def test_head_roles_and_analysis_views(app):
    app.sidebar.text_area(key="prompt").input(HOSTILE).run()
    skipped = ("Generated text", "Attention", "Geometry", "How it learned", "Neuron atlas")  # atlas: test_atlas_views
    for view in [v for v in VIEWS if v not in skipped]:
        app.radio(key="view").set_value(view).run()
        assert errors(app) == [], view
        drawn = len(app.get("plotly_chart"))
        missing = [i.value for i in app.info if "needs gpt2atlas" in i.value]
        assert drawn >= 1 or missing, f"{view}: neither a figure nor a clear 'not installed' note"
        for block in app.markdown:
            assert "<script>" not in block.value and "<img" not in block.value


def test_geometry_runs_on_demand(app):
    app.radio(key="view").set_value("Geometry").run()
    assert errors(app) == []
    if any("needs gpt2atlas" in i.value for i in app.info):
        pytest.skip("geometry module not installed")
    assert len(app.get("plotly_chart")) == 0  # nothing heavy until asked
    assert app.button(key="run_geometry_button").label.startswith("Run")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("prompt", "   ", "The prompt is empty"),
        ("prompt", "word " * 200, "this model reads at most 128"),
        ("model", "no-such-model-anywhere", "unknown model"),
        ("model", "/nonexistent/folder/gpt2", "no such file or folder"),
    ],
)
def test_bad_input_is_a_clear_message_in_the_page(app, field, value, message):
    widget = app.sidebar.text_area(key="prompt") if field == "prompt" else app.sidebar.text_input(key="model")
    widget.input(value).run()
    shown = errors(app)
    assert len(shown) == 1 and message in shown[0]
    assert "Traceback" not in shown[0]


def test_model_from_command_line_or_environment(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert default_model(["--model", "/tmp/x"]) == "/tmp/x"
    assert default_model([]) == "gpt2"
    monkeypatch.setenv(MODEL_ENV, "distilgpt2")
    assert default_model([]) == "distilgpt2"


def test_app_command_is_local_headless_and_private():
    command = app_command(APP, "gpt2", 8765)
    flags = dict(zip(command[5:-5:2], command[6:-5:2]))
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert command[-5:] == ["--", "--model", "gpt2", "--device", "cpu"]


def test_device_from_command_line_or_environment(monkeypatch):
    from gpt2atlas.app.state import DEVICE_ENV, server_device

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert server_device(["--model", "gpt2", "--device", "cuda:1"]) == "cuda:1"
    assert server_device([]) == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert server_device([]) == "cuda"


def test_app_rejects_an_unknown_device(capsys):
    assert main(["app", "--model", "gpt2", "--device", "tpu9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "tpu9" in err and "\n" not in err


def test_app_rejects_a_bad_port(capsys):
    assert main(["app", "--model", "gpt2", "--port", "70000"]) == 1
    assert "out of range" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_gpt2atlas_app_stops_its_streamlit_server(tiny_checkpoint, signum):
    import psutil

    children: list[psutil.Process] = []
    process = subprocess.Popen(
        [sys.executable, "-m", "gpt2atlas", "app", "--model", str(tiny_checkpoint), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )  # the signal reaches gpt2atlas alone, as from `kill`
    try:
        port = int(process.stdout.readline().split("http://127.0.0.1:")[1].split()[0])
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the dashboard never listened")
        children = psutil.Process(process.pid).children(recursive=True)
        assert children
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:  # leave no server behind, even when the check fails
        for leftover in [process, *children]:
            try:
                leftover.kill()
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
