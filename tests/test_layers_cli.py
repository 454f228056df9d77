"""`gpt2atlas layers` (all six areas), `layernorm`, `residual` and `journey` from the command line."""

import json

import pytest

from gpt2atlas.analysis import residual
from gpt2atlas.areas import LAYER_AREAS
from gpt2atlas.areas.residual import SPEC as RESIDUAL
from gpt2atlas.cli.main import main
from gpt2atlas.viz.export import browser_session, save_result

PROMPT = "The cat sat on the mat and the dog sat on the log"


def _findings(out, area):
    return json.loads((out / area / "findings.json").read_text())


@pytest.mark.slow  # every area once, UMAP's first (JIT-compiling) fit included
def test_layers_writes_all_six_areas(tiny_checkpoint, tmp_path, capsys):
    code = main(["layers", "--model", str(tiny_checkpoint), "--prompt", PROMPT, "--out", str(tmp_path), "--no-png"])
    assert code == 0
    for area in (spec.key for spec in LAYER_AREAS):
        assert _findings(tmp_path, area)["tokens"][0] == "The"
        assert (tmp_path / area).is_dir() and any((tmp_path / area).glob("*.html"))
    assert "all 6 areas written" in capsys.readouterr().out
    journey = _findings(tmp_path, "journey")
    assert journey["final_token_rank"][-1] == [0] * len(journey["tokens"])
    assert len(journey["trajectory"]["umap"]) == len(journey["trajectory"]["nearest_sampled_token"]) == 3  # UMAP ran
    assert len(_findings(tmp_path, "residual")["norm_by_layer"]) == 3
    layernorm = _findings(tmp_path, "layernorm")
    assert layernorm["invariants"]["matches_model"] is True and layernorm["illustrated_layernorm"] == "blocks.1.ln1"
    assert len(_findings(tmp_path, "attention")["heads"]) == 2 * 4


def test_single_commands_with_their_options(tiny_checkpoint, tmp_path):
    common = ["--model", str(tiny_checkpoint), "--prompt", PROMPT, "--out", str(tmp_path), "--no-png"]
    assert main(["residual", *common, "--include-first", "--threshold", "5"]) == 0
    stream = _findings(tmp_path, "residual")
    assert stream["position_0_excluded"] is False and stream["outlier_threshold"] == 5
    assert main(["journey", *common, "--position", "3", "--top-k", "2", "--projections", "pca"]) == 0
    journey = _findings(tmp_path, "journey")
    assert journey["trajectory"]["position"] == 3 and "umap" not in journey["trajectory"]
    assert len(journey["top_k"][0][0]) == 2


def test_png_export_alone_and_through_one_browser_session(tiny_checkpoint, tiny_model, tmp_path):
    assert main(["residual", "--model", str(tiny_checkpoint), "--prompt", PROMPT, "--out", str(tmp_path)]) == 0
    with browser_session(png=True):  # what `layers` does: one headless browser for every area's PNGs
        for name in ("first", "second"):
            result = residual.analyze(tiny_model, PROMPT)
            save_result(result, RESIDUAL.figures(result), tmp_path / name, png=True)
    for folder in ("", "first", "second"):
        for figure in ("norm_growth", "token_layer_norms", "outlier_dims"):
            png = tmp_path / folder / "residual" / f"{figure}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batched_png_export_keeps_each_figures_size(tmp_path):
    import plotly.graph_objects as go

    from gpt2atlas.viz.export import write_pngs

    sizes = [(333, 222), (640, 480)]
    figures = [go.Figure(go.Scatter(y=[1, 3, 2]), layout=dict(width=w, height=h)) for w, h in sizes]
    paths = [tmp_path / f"{i}.png" for i in range(len(sizes))]
    write_pngs(figures, paths)
    for path, size in zip(paths, sizes):
        header = path.read_bytes()[16:24]  # IHDR: width, height as big-endian 32-bit integers
        assert (int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")) == size


@pytest.mark.parametrize(
    "args, message",
    [
        (["layernorm", "--layer", "9"], "layer 9 is out of range"),
        (["journey", "--position", "99"], "position 99 is out of range"),
        (["journey", "--projections", "tsne"], "unknown projection"),
        (["residual", "--threshold", "0.5"], "--threshold 0.5 must be above 1"),
    ],
)
def test_bad_options_exit_1_with_one_line(tiny_checkpoint, tmp_path, capsys, args, message):
    code = main([*args, "--model", str(tiny_checkpoint), "--prompt", PROMPT, "--out", str(tmp_path), "--no-png"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "layernorm").exists() and not (tmp_path / "journey").exists()


@pytest.mark.parametrize("command", ["layers", "layernorm", "residual", "journey"])
def test_empty_prompt_exits_1_with_one_line(tiny_checkpoint, tmp_path, capsys, command):
    code = main([command, "--model", str(tiny_checkpoint), "--prompt", "  ", "--out", str(tmp_path), "--no-png"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == "error: the prompt is empty: give at least one character of text"
