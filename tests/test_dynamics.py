"""`gpt2atlas dynamics` and "How it learned": planted structure that appears between known checkpoints is found
there, and a run that learns nothing reads as nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import random_model
from gpt2atlas.analysis.dynamics import analyze, position_roughness
from gpt2atlas.model import save_checkpoint
from gpt2atlas.training.history import history_of_revisions, history_of_run
from gpt2atlas.training.recipe import TrainConfig
from gpt2atlas.viz.readings import read_dynamics
from test_attention import PLANTED_CFG, PREV, _head_columns, planted_model
from test_loading_and_cli import assert_one_line_error, run_cli

SMOOTH_DIMS = slice(98, 128)  # 30 dims the planted heads do not read
STRENGTHS = {0: 0.0, 1: 0.02, 2: 0.1, 4: 0.7, 8: 1.0}  # step -> how much of the planted structure is there


def _write_run(folder: Path, models: dict[int, torch.nn.Module]) -> Path:
    """A run folder as gpt2atlas train writes it (run.json, metrics.jsonl, checkpoints/step-N/)."""
    config = TrainConfig(data=str(folder / "no-such-data"), n_layer=2, n_head=4, d_model=128, n_ctx=64)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"config": config.to_dict(), "tokens": {}}))
    lines = []
    for step, model in models.items():
        path = save_checkpoint(model, folder / "checkpoints" / f"step-{step:06d}")
        (path / "training.json").write_text(json.dumps({"step": step, "tokens": step * 1000}))
        lines.append(
            json.dumps(
                {
                    "step": step,
                    "tokens": step * 1000,
                    "lr": 1e-3,
                    "train_loss": 9.0 - step,
                    "val_loss": 9.5 - step,
                    "grad_norm": 1.0,
                    "tokens_per_s": 1.0,
                    "elapsed_s": 1.0,
                }
            )
        )
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _planted_at(strength: float, noise: torch.Tensor) -> torch.nn.Module:
    """The planted model with its position code and previous-token head scaled by `strength` (0: random)."""
    model = planted_model()
    with torch.no_grad():
        slow = torch.arange(PLANTED_CFG.n_ctx)[:, None] * (torch.pi / 64) * torch.linspace(0.25, 1.0, 15)
        model.W_pos[:, SMOOTH_DIMS] = 3.0 * torch.cat(
            [slow.cos(), slow.sin()], dim=1
        )  # slow curves, unread by the heads
        model.W_pos.copy_((1 - strength) * noise + strength * model.W_pos)
        model.blocks[PREV[0]].attn.W_QKV[:, _head_columns(model, *PREV, 0)] *= strength
    return model


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> Path:
    noise = torch.randn(PLANTED_CFG.n_ctx, PLANTED_CFG.d_model, generator=torch.Generator().manual_seed(5))
    return _write_run(
        tmp_path_factory.mktemp("runs") / "planted", {step: _planted_at(s, noise) for step, s in STRENGTHS.items()}
    )


@pytest.fixture(scope="module")
def random_run(tmp_path_factory) -> Path:
    return _write_run(
        tmp_path_factory.mktemp("runs") / "random", {step: random_model(PLANTED_CFG, seed=step) for step in STRENGTHS}
    )


def test_planted_structure_is_found_between_the_checkpoints_it_appeared_between(planted_run):
    dynamics = analyze(history_of_run(planted_run), progress=False)
    rough = [p.roughness for p in dynamics.positions]
    noise = torch.randn(PLANTED_CFG.n_ctx, PLANTED_CFG.d_model, generator=torch.Generator().manual_seed(5))
    expected = [position_roughness(_planted_at(s, noise).W_pos) for s in STRENGTHS.values()]
    assert rough == pytest.approx(expected, rel=1e-5)  # read back from the checkpoints, in step order
    assert rough[0] > 1.3 and rough[-1] < rough[0] / 3 and rough == sorted(rough, reverse=True)
    middle = (rough[0] + rough[-1]) / 2
    crossed = next(step for step, r in zip(STRENGTHS, rough) if r <= middle)
    appeared = {a.what: a for a in dynamics.appearances}
    assert appeared["position roughness"].halfway_step == crossed
    assert appeared["position roughness"].before_step == max(step for step in STRENGTHS if step < crossed)
    final_prev = dynamics.checkpoints[-1].head("prev_token")
    assert final_prev.best()[:2] == PREV and final_prev.best()[2] > 0.9
    assert dynamics.checkpoints[0].head("prev_token").values[PREV[0]][PREV[1]] < 0.2
    assert appeared[f"prev_token score of head {PREV[0]}.{PREV[1]}"].halfway_step == 4
    sentences = read_dynamics(dynamics)
    assert any("went from noise to smooth curves" in s and f"and {crossed}k tokens" in s for s in sentences)
    assert any(s.startswith(f"Head {PREV[0]}.{PREV[1]} became the strongest previous-token head") for s in sentences)
    assert dynamics.losses[-1].val_loss == 1.5 and "1.50" in sentences[0]


def test_a_run_that_learns_nothing_reads_as_nothing(random_run):
    dynamics = analyze(history_of_run(random_run), progress=False)
    sentences = read_dynamics(dynamics)
    assert any("did not smooth" in s for s in sentences), sentences
    assert any(s.startswith("No previous-token head stands out") for s in sentences), sentences
    assert any(s.startswith("No induction head stands out") for s in sentences), sentences
    assert "the training data's frequent tokens are unknown" in dynamics.probe


def test_the_cli_writes_findings_figures_and_the_reading(planted_run, tmp_path):
    done = run_cli("dynamics", "--run", str(planted_run), "--out", str(tmp_path), "--no-png")
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "dynamics"
    findings = json.loads((folder / "findings.json").read_text())
    assert [c["step"] for c in findings["checkpoints"]] == list(STRENGTHS)
    assert {"positions", "losses", "appearances", "uniform_head", "reading"} <= set(findings)
    assert {p.name for p in folder.glob("*.html")} == {
        "loss.html",
        "positions_over_time.html",
        "position_tables.html",
        "heads_over_time.html",
        "depth_over_time.html",
    }
    assert "became the strongest previous-token head" in done.stdout


def test_the_shipped_model_has_a_history_and_gpt2_does_not(tmp_path):
    done = run_cli("dynamics", "--out", str(tmp_path), "--no-png")  # --model mini is the default
    assert done.returncode == 0, done.stderr[-2000:]
    assert "went from noise to smooth curves" in done.stdout
    assert_one_line_error(run_cli("dynamics", "--model", "gpt2", "--out", str(tmp_path)), "--revisions")
    assert_one_line_error(
        run_cli("dynamics", "--run", str(tmp_path / "nothing"), "--out", str(tmp_path)), "not a gpt2atlas training run"
    )


def test_hub_revisions_are_measured_in_step_order(tmp_path, monkeypatch):
    import huggingface_hub.constants

    repo_dir = tmp_path / "hub" / "models--stanford-crfm--alias-gpt2-small-x21"
    noise = torch.randn(PLANTED_CFG.n_ctx, PLANTED_CFG.d_model, generator=torch.Generator().manual_seed(5))
    for i, (revision, strength) in enumerate((("checkpoint-0", 0.0), ("checkpoint-400", 1.0))):
        source = save_checkpoint(_planted_at(strength, noise), tmp_path / revision)
        snapshot = repo_dir / "snapshots" / (str(i) * 40)
        snapshot.mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy(source / name, snapshot / name)
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / revision).write_text(str(i) * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    history = history_of_revisions("stanford-crfm/alias-gpt2-small-x21", ["checkpoint-400", "checkpoint-0"])
    assert [s.step for s in history.snapshots] == [0, 400] and history.losses == []
    dynamics = analyze(history, progress=False)
    assert dynamics.positions[-1].roughness < dynamics.positions[0].roughness / 3
    assert dynamics.checkpoints[-1].head("prev_token").best()[:2] == PREV


OTHER_SECTIONS = (
    "embeddings",
    "weights",
    "attention",
    "neurons",
    "layernorm",
    "residual",
    "journey",
    "saliency",
    "geometry",
    "samples",
)


@pytest.mark.parametrize("source", ["run", "mini"])
def test_the_report_tells_how_it_learned(source, planted_run, tmp_path):
    skips = [arg for section in OTHER_SECTIONS for arg in ("--skip", section)]
    chosen = ["--run", str(planted_run)] if source == "run" else ["--model", "mini"]
    done = run_cli("report", *chosen, "--out", str(tmp_path / "r.html"), "--quick", *skips)
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / "r.html").read_text()
    assert "How it learned" in page and "went from noise to smooth curves" in page
    assert "became the strongest previous-token head" in page
    if source == "run":
        assert "step-000008" in page  # the model reported on is the run's last checkpoint


def test_report_refuses_a_run_and_a_model_together(planted_run, tmp_path):
    assert_one_line_error(
        run_cli("report", "--run", str(planted_run), "--model", "mini", "--out", str(tmp_path / "r.html")),
        f"--model mini and --run {planted_run} were both given",
    )
