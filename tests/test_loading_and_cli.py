"""Where weights come from, and what a user sees when something is wrong (one line, exit 1, no traceback)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.analysis.summary import parameter_counts
from gpt2atlas.cli.main import main
from gpt2atlas.errors import CheckpointError, InputError
from gpt2atlas.model import GPT2, PRESETS


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "gpt2atlas.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def fill_hub_cache(cache: Path, repo: str, checkpoint: Path) -> None:
    """The layout huggingface_hub leaves after a download: snapshots/<rev>/<files> and refs/main."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint / name, snapshot / name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)


def test_gpt2_parameter_count_counts_the_tied_matrix_once():
    with torch.device("meta"):
        counts = parameter_counts(GPT2(PRESETS["gpt2"]))
    assert counts["total"] == 124_439_808
    assert counts["token_embedding"] == 50257 * 768 and counts["position_embedding"] == 1024 * 768


def test_hub_id_loads_from_an_already_filled_cache_offline(tmp_path, tiny_checkpoint, tiny_model, monkeypatch):
    fill_hub_cache(tmp_path / "hub", "openai-community/gpt2", tiny_checkpoint)
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_CACHE once, at import (which an earlier test may already have done)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("gpt2", "openai-community/gpt2"):
        model = load_model(name)
        assert "openai-community/gpt2" in model.source
        loaded, expected = model.state_dict(), tiny_model.state_dict()
        assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)
        # same weights; BLAS may still sum in another order for differently aligned (memory-mapped) tensors
        torch.testing.assert_close(model(torch.arange(8)[None]), tiny_model(torch.arange(8)[None]))


def test_hub_unreachable_and_not_cached(tmp_path):
    result = run_cli(
        "info",
        "--model",
        "distilgpt2",
        env={"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert_one_line_error(result, "unreachable", "not in the local cache", "--model /path/to/distilgpt2")
    offline = run_cli("info", "--model", "gpt2", env={"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert_one_line_error(offline, "HF_HUB_OFFLINE")


def test_unknown_model_and_missing_folder(tmp_path):
    assert_one_line_error(run_cli("info", "--model", "gpt5"), "unknown model 'gpt5'", "gpt2-medium")
    assert_one_line_error(run_cli("info", "--model", str(tmp_path / "nowhere")), "no such file or folder")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("info", "--model", str(tmp_path / "empty")), "no model.safetensors")


def test_truncated_and_corrupt_safetensors(tmp_path, tiny_checkpoint):
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_checkpoint, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_cli("info", "--model", str(truncated)), "truncated or corrupt")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a safetensors file at all" * 10)
    assert_one_line_error(run_cli("info", "--model", str(garbage)), "truncated or corrupt")
    with pytest.raises(CheckpointError):
        load_model(garbage)


def test_checkpoint_with_shapes_that_do_not_fit(tmp_path, tiny_checkpoint):
    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_checkpoint, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["n_embd"] = 128  # weights are d_model 64
    (wrong / "config.json").write_text(json.dumps(config))
    assert_one_line_error(run_cli("info", "--model", str(wrong)), "has shape", "needs")
    config["n_embd"], config["n_layer"] = 64, 3  # one block too many
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has n_layer=3, but .* holds 2 blocks"):
        load_model(wrong)


def test_prompt_errors(tiny_checkpoint, tiny_model):
    assert_one_line_error(run_cli("generate", "--model", str(tiny_checkpoint), "--prompt", ""), "prompt is empty")
    long_prompt = " word" * 200  # 200 tokens, context is 128
    assert_one_line_error(
        run_cli("generate", "--model", str(tiny_checkpoint), "--prompt", long_prompt),
        "200 tokens long",
        "context of 128",
    )
    with pytest.raises(InputError, match="prompt is empty"):
        tiny_model.run_with_cache("")


def test_generate_and_info_commands(tiny_checkpoint, capsys):
    code = main(
        [
            "generate",
            "--model",
            str(tiny_checkpoint),
            "--prompt",
            "Hello, I'm a language model,",
            "--max-new-tokens",
            "5",
            "--num-samples",
            "3",
            "--seed",
            "42",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["samples"]) == 3 and out["seed"] == 42 and all(len(t) <= 5 for t in out["tokens"])
    assert main(["info", "--model", str(tiny_checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["n_layer"] == 2 and info["parameter_counts"]["total"] == sum(
        p["count"] for p in info["parameters"]
    )
    assert (
        run_cli("generate", "--model", str(tiny_checkpoint), "--prompt", "Hi", "--max-new-tokens", "2").returncode == 0
    )


def test_missing_cuda_is_a_clear_error(tiny_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(Exception, match="device=cuda needs a CUDA GPU and PyTorch sees none"):
        load_model(tiny_checkpoint, device="cuda")


def test_an_unexpected_failure_is_one_line_unless_debugging(tiny_checkpoint, monkeypatch, capsys):
    import gpt2atlas.analysis.summary

    def broken(model):
        raise ValueError("something inside broke\nsecond line")

    monkeypatch.setattr(gpt2atlas.analysis.summary, "summary", broken)  # `info` imports it when it runs
    monkeypatch.delenv("GPT2ATLAS_DEBUG", raising=False)
    assert main(["info", "--model", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: unexpected ValueError: something inside broke "
        "(set GPT2ATLAS_DEBUG=1 for the traceback, and please report it)"
    )
    monkeypatch.setenv("GPT2ATLAS_DEBUG", "1")
    with pytest.raises(ValueError, match="something inside broke"):
        main(["info", "--model", str(tiny_checkpoint)])
