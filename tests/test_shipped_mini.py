"""The shipped `mini` model, measured on the shipped files: what it learned, against its own initialisation.

The issue's targets for its heads (previous-token >= 0.5, induction >= 0.3) were not reached; those two checks
are strict xfails, so that they fail loudly the day a retrained model reaches them (then make them plain).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.analysis.dynamics import _head_scores, position_roughness, probe_sequences, repeat_half
from gpt2atlas.shipped import HISTORY, INIT_FILE, PROBES_FILE, RUN_FILE, shipped_folder
from gpt2atlas.training.data import BUILTIN_CORPORA, is_validation
from gpt2atlas.training.history import dequantize_rows, history_of_shipped, init_sha256, quantize_rows
from gpt2atlas.training.recipe import PRESETS

MINI = shipped_folder("mini")


@pytest.fixture(scope="module")
def history():
    return history_of_shipped("mini")


@pytest.fixture(scope="module")
def initial_and_final(history):
    return history.snapshots[0].load(), history.snapshots[-1].load()


@pytest.fixture(scope="module")
def head_scores(history, initial_and_final):
    initial, final = initial_and_final
    half = repeat_half(final.cfg.n_ctx)
    sequences = probe_sequences(final, history.probe_ids, half)
    return (
        {h.name: np.asarray(h.values) for h in _head_scores(initial, sequences)},
        {h.name: np.asarray(h.values) for h in _head_scores(final, sequences)},
    )


def test_the_shipped_files_fit_the_budget_and_load_as_the_mini_shape():
    files = [p for p in MINI.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25_000_000
    model = load_model("mini")
    assert {k: getattr(model.cfg, k) for k in PRESETS["mini"]} == PRESETS["mini"]
    assert model.cfg.d_vocab == 50257
    from safetensors import safe_open

    with safe_open(str(MINI / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(name).dtype for name in f.keys()} == {torch.float16}


def test_the_initialisation_is_regenerated_exactly_from_the_recipe(initial_and_final):
    record = json.loads((MINI / HISTORY / INIT_FILE).read_text())
    initial, _ = initial_and_final
    assert init_sha256(initial) == record["sha256"]
    recipe = json.loads((MINI / HISTORY / RUN_FILE).read_text())["phases"][0]["config"]
    assert (
        recipe["seed"] == record["seed"]
        and recipe["data"]
        and "python-docs" in json.loads((MINI / HISTORY / RUN_FILE).read_text())["data"]["spec"]
    )


def test_validation_loss_is_well_below_the_unigram_entropy_of_the_same_text():
    """On held-out documents of the Python standard library (the split is by document name, so these were never
    trained on), on any machine: the interpreter's own sources."""
    model = load_model("mini")
    documents = [d for d in BUILTIN_CORPORA["python-stdlib"].documents() if is_validation(d.name, 0.05)]
    ids: list[int] = []
    for document in documents:
        ids += model.tokenizer.encode(document.path.read_text(encoding="utf-8", errors="replace")) + [50256]
        if len(ids) > 100 * 257:
            break
    windows = torch.tensor(ids[: 100 * 257]).view(100, 257)
    with torch.inference_mode():  # ten windows at a time: the logits of all 100 would take 5 GB
        total = sum(
            float(
                torch.nn.functional.cross_entropy(
                    model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten(), reduction="sum"
                )
            )
            for batch in windows.split(10)
        )
    loss = total / (100 * 256)
    counts = np.bincount(windows[:, 1:].flatten().numpy())
    p = counts[counts > 0] / counts.sum()
    unigram_entropy = float(-(p * np.log(p)).sum())
    assert loss < 0.6 * unigram_entropy, (loss, unigram_entropy)  # measured: 2.09 against 4.20 nats
    assert loss < 2.5


def test_position_embeddings_are_three_times_smoother_than_at_initialisation(initial_and_final):
    initial, final = initial_and_final
    before, after = position_roughness(initial.W_pos), position_roughness(final.W_pos)
    assert before > 1.3  # independent random rows: sqrt(2)
    assert after <= before / 3, (before, after)


def test_heads_rose_far_above_the_same_heads_at_initialisation(head_scores):
    initial, final = head_scores
    for name, reached in (("prev_token", 0.25), ("induction", 0.12)):
        layer, head = np.unravel_index(final[name].argmax(), final[name].shape)
        assert final[name][layer, head] >= reached, (name, final[name].max())
        assert initial[name][layer, head] <= 0.1
        assert final[name][layer, head] >= 5 * initial[name].max()


@pytest.mark.xfail(strict=True, reason="not reached: best previous-token score 0.28 (see README, 'The mini model')")
def test_issue_target_a_previous_token_head_at_0_5(head_scores):
    assert head_scores[1]["prev_token"].max() >= 0.5


@pytest.mark.xfail(strict=True, reason="not reached: best induction score 0.15 (see README, 'The mini model')")
def test_issue_target_an_induction_head_at_0_3(head_scores):
    assert head_scores[1]["induction"].max() >= 0.3


def test_the_probe_tokens_are_frequent_tokens_of_the_training_data():
    probes = json.loads((MINI / HISTORY / PROBES_FILE).read_text())
    assert len(probes["ids"]) == len(set(probes["ids"])) == 2000 and 50256 not in probes["ids"]
    assert probes["share_of_training_tokens"] > 0.8


def test_int8_rows_round_trip_within_half_a_step():
    matrix = torch.randn(300, 64) * torch.rand(300, 1)
    rows, scale = quantize_rows(matrix)
    error = (dequantize_rows(rows, scale) - matrix).abs()
    assert rows.dtype == torch.int8 and bool(
        (error <= scale.float()[:, None] * 0.5 + 1e-3 * scale.float()[:, None]).all()
    )


def test_the_midway_checkpoint_lies_between_initialisation_and_the_end(history):
    assert [s.step for s in history.snapshots] == sorted(s.step for s in history.snapshots)
    midway = history.snapshots[1].load()
    rough = [position_roughness(s) for s in (history.snapshots[0].load().W_pos, midway.W_pos, load_model("mini").W_pos)]
    assert rough[0] > rough[1] > rough[2] or math.isclose(rough[1], rough[2], rel_tol=0.5)
    steps = [step for step, _, _ in history.positions]
    assert steps[0] == 0 and steps[-1] == history.snapshots[-1].step and len(steps) > 20


def test_every_command_runs_on_mini_offline(tmp_path):
    from test_loading_and_cli import run_cli

    for args in (
        ["info", "--model", "mini"],
        ["generate", "--model", "mini", "-p", "The function returns", "--max-new-tokens", "8"],
        ["attention", "--model", "mini", "-p", "def f(x): return x", "--out", str(tmp_path), "--no-png"],
    ):
        done = run_cli(*args, env={"HF_HUB_OFFLINE": "1"})
        assert done.returncode == 0, (args, done.stderr[-2000:])
    assert (tmp_path / "attention" / "findings.json").is_file()


def test_mini_is_not_mistaken_for_a_path_or_a_hub_id(tmp_path, monkeypatch):
    from gpt2atlas.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="hub ids"):
        load_model("mini", revision="main")
    (tmp_path / "mini").mkdir()
    monkeypatch.chdir(tmp_path)  # a local folder named mini wins, as any path does
    with pytest.raises(Exception, match="mini"):
        load_model("mini")
    assert Path(MINI).name == "mini"
