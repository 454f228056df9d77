"""Weight blocks: the heat map shows exactly the slice asked for, the numbers match numpy, names resolve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import random_model
from gpt2atlas.analysis import weights as W
from gpt2atlas.analysis.summary import parameter_counts
from gpt2atlas.areas import figures_of
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.model import save_checkpoint
from gpt2atlas.viz.architecture import architecture_boxes


def test_heatmap_data_is_the_tensor_slice(tiny_model):
    for name in ("blocks.1.attn.W_QKV", "h.1.attn.c_attn.weight", "transformer.h.1.attn.c_attn.weight"):
        report = W.analyze(tiny_model, name, rows="3:40", cols="60:150")
        assert report.findings.param == "blocks.1.attn.W_QKV"
        heatmap = figures_of(report)["heatmap"].data[0]
        expected = tiny_model.blocks[1].attn.W_QKV[3:40, 60:150].numpy()
        assert np.array_equal(np.asarray(heatmap.z), expected)
        assert list(heatmap.y) == list(range(3, 40)) and list(heatmap.x) == list(range(60, 150))
    histogram = figures_of(report)["heatmap"].data[1]
    assert int(np.sum(histogram.y)) == 37 * 90


def test_stats_singular_values_and_largest_entries_match_numpy(tiny_model):
    block = tiny_model.blocks[0].mlp.W_out[10:200, 5:60].double().numpy()
    findings = W.analyze(tiny_model, "blocks.0.mlp.W_out", rows="10:200", cols="5:60").findings
    stats = findings.stats
    assert stats.mean == pytest.approx(block.mean()) and stats.std == pytest.approx(block.std())
    assert stats.min == pytest.approx(block.min()) and stats.max == pytest.approx(block.max())
    assert stats.l2_norm == pytest.approx(np.linalg.norm(block))
    assert findings.spectrum.singular_values == pytest.approx(
        np.linalg.svd(block, compute_uv=False)[:10].tolist(), rel=1e-6
    )
    top = findings.largest[0]
    r, c = np.unravel_index(np.abs(block).argmax(), block.shape)
    assert isinstance(top, W.MatrixEntry)
    assert (top.row, top.col) == (10 + r, 5 + c) and top.value == pytest.approx(block[r, c])
    assert findings.block_shape == [190, 55] and findings.shape == [256, 64]


def test_planted_low_rank_block_has_effective_rank_one():
    model = random_model()
    with torch.no_grad():
        u, v = torch.randn(64, 1), torch.randn(1, 256)
        model.blocks[0].mlp.W_in.copy_(u @ v)
    findings = W.analyze(model, "h.0.mlp.c_fc.weight").findings
    assert findings.spectrum.stable_rank == pytest.approx(1.0, abs=1e-6)
    assert findings.spectrum.effective_rank == pytest.approx(1.0, abs=1e-4)
    assert findings.spectrum.singular_values[1] < 1e-4 * findings.spectrum.singular_values[0]


def test_stable_and_effective_rank_of_a_known_spectrum():
    model = random_model()
    with torch.no_grad():  # singular values 2 and 1, the rest 0
        block = torch.zeros(64, 256)
        block[0, 0], block[1, 1] = 2.0, 1.0
        model.blocks[0].mlp.W_in.copy_(block)
    findings = W.analyze(model, "blocks.0.mlp.W_in").findings
    assert findings.spectrum.stable_rank == pytest.approx(5 / 4)  # sum sigma^2 / max sigma^2
    p = np.array([2, 1]) / 3  # Roy & Vetterli: exp(entropy of sigma / sum sigma)
    assert findings.spectrum.effective_rank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)


def test_one_axis_parameters_and_open_ranges(tiny_model):
    findings = W.analyze(tiny_model, "ln_final.w", rows="10:").findings
    assert findings.cols == [10, 64] and findings.rows is None and findings.block_shape == [54]
    report = W.analyze(tiny_model, "h.0.attn.c_attn.bias", cols=":20")
    assert np.array_equal(
        np.asarray(figures_of(report)["heatmap"].data[0].z), tiny_model.blocks[0].attn.b_QKV[None, :20].numpy()
    )
    assert W.parse_span(None, 7, "rows") == (0, 7) and W.parse_span(slice(2, None), 7, "rows") == (2, 7)


def test_large_tensors_are_strided_in_the_figure_only(tiny_model):
    report = W.analyze(tiny_model, "wte.weight")
    stride = report.findings.figure_stride
    assert report.findings.param == "embed.W_E" and stride[0] > 1
    z = np.asarray(figures_of(report)["heatmap"].data[0].z)
    assert np.array_equal(z, tiny_model.W_E[:: stride[0], :: stride[1]].numpy())
    assert z.size <= W.MAX_CELLS
    assert report.findings.stats.max == pytest.approx(float(tiny_model.W_E.max()))  # all values count
    rows, cols = W.heatmap_strides(50257, 768)  # gpt2's W_E: the smallest row stride that fits
    assert cols == 1 and -(-50257 // rows) * 768 <= W.MAX_CELLS < -(-50257 // (rows - 1)) * 768


def test_bad_names_and_ranges_are_clear_errors(tiny_model):
    with pytest.raises(InputError, match="did you mean blocks.0.attn.W_QKV"):
        W.analyze(tiny_model, "blocks.0.attn.W_QKVV")
    with pytest.raises(InputError, match="e.g. embed.W_E"):
        W.analyze(tiny_model, "nonsense")
    with pytest.raises(InputError, match=r"cols=10:100 must be a non-empty range a:b with 0 <= a < b <= 64"):
        W.analyze(tiny_model, "embed.W_E", cols="10:100")
    with pytest.raises(InputError, match="a:b"):
        W.analyze(tiny_model, "embed.W_E", rows="7")
    with pytest.raises(InputError, match="one axis"):
        W.analyze(tiny_model, "ln_final.b", rows="0:2", cols="0:2")
    with pytest.raises(InputError, match="param="):
        W.analyze(tiny_model, None, rows="0:2")


def test_summary_and_architecture_figures(tiny_model):
    report = W.analyze(tiny_model)
    figures = figures_of(report)
    assert set(figures) == {"model_summary", "architecture_3d"}
    counts = parameter_counts(tiny_model)
    bars = figures["model_summary"].data[0]
    assert list(bars.y) == [v for k, v in counts.items() if k != "total"]
    boxes = architecture_boxes(report.model_summary)
    # cube volume is proportional to the parameter count
    attn = next(b for b in boxes if b.kind == "attention")
    mlp = next(b for b in boxes if b.kind == "mlp")
    assert (mlp.side / attn.side) ** 3 == pytest.approx(
        sum(p.numel() for p in tiny_model.blocks[0].mlp.parameters())
        / sum(p.numel() for p in tiny_model.blocks[0].attn.parameters())
    )
    assert sum(b.kind == "attention" for b in boxes) == tiny_model.cfg.n_layer
    assert "blocks.0.attn.W_QKV: 64 × 192" in attn.hover
    meshes = [t for t in figures["architecture_3d"].data if t.type == "mesh3d"]
    assert sum(len(m.x) for m in meshes) == 8 * len(boxes)


def test_cli_weights(tmp_path, tiny_model, capsys):
    model = random_model()
    with torch.no_grad():
        model.blocks[1].mlp.W_in[2, 7] = 5.0  # a planted outlier weight
    folder = save_checkpoint(model, tmp_path / "m")
    out = tmp_path / "out"
    assert (
        main(
            [
                "weights",
                "--model",
                str(folder),
                "--param",
                "h.1.mlp.c_fc.weight",
                "--rows",
                "0:32",
                "--out",
                str(out),
                "--no-png",
            ]
        )
        == 0
    )
    findings = json.loads((out / "weights" / "findings.json").read_text())
    assert findings["param"] == "blocks.1.mlp.W_in" and findings["rows"] == [0, 32]
    assert findings["largest"][0] == {"row": 2, "col": 7, "value": 5.0}
    assert findings["stats"]["max"] == 5.0
    written = {p.name for p in (out / "weights").iterdir()}
    assert written >= {"heatmap.html", "model_summary.html", "architecture_3d.html"}
    capsys.readouterr()
    assert main(["weights", "--model", str(folder), "--param", "blocks.9.mlp.W_in", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --param 'blocks.9.mlp.W_in' is not a parameter of this model") and "\n" not in err


@pytest.mark.browser
def test_cli_weights_png(tmp_path, tiny_checkpoint):
    out = tmp_path / "png"
    assert main(["weights", "--model", str(tiny_checkpoint), "--param", "blocks.0.attn.W_O", "--out", str(out)]) == 0
    for name in ("heatmap", "model_summary", "architecture_3d"):
        assert (out / "weights" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "name, ours",
    [
        ("wte", "embed.W_E"),
        ("transformer.wte", "embed.W_E"),
        ("transformer.wpe", "pos_embed.W_pos"),
        ("transformer.W_pos", "pos_embed.W_pos"),
        ("lm_head.weight", "embed.W_E"),
        ("transformer.h.1.mlp.c_fc.weight", "blocks.1.mlp.W_in"),
        ("h.0.ln_1.bias", "blocks.0.ln1.b"),
        ("blocks.0.attn.W_O", "blocks.0.attn.W_O"),
    ],
)
def test_parameter_names_in_every_spelling(tiny_model, name, ours):
    assert W.resolve_param(tiny_model, name) == ours
