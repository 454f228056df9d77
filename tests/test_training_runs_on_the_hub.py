"""Checkpoints of published training runs: hub revisions, and the two options the Stanford CRFM runs set."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.errors import CheckpointError, ModelNotFoundError
from hf_utils import hf_random_checkpoint
from test_loading_and_cli import assert_one_line_error, run_cli


@pytest.mark.parametrize(
    "flags",
    [
        {"scale_attn_by_inverse_layer_idx": True},
        {"reorder_and_upcast_attn": True},
        {"scale_attn_by_inverse_layer_idx": True, "reorder_and_upcast_attn": True},
    ],
)
def test_crfm_attention_options_give_the_logits_of_transformers(tmp_path, flags):
    pytest.importorskip("transformers")
    from transformers import GPT2LMHeadModel

    _, folder = hf_random_checkpoint(tmp_path / "crfm", n_layer=3)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **flags}))
    hf = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():  # large weights, so that a wrong scale would show
        for name, p in hf.named_parameters():
            if "c_attn.weight" in name:
                p.mul_(8)
    hf.save_pretrained(folder)
    ours = load_model(folder)
    assert all(getattr(ours.cfg, k) == v for k, v in flags.items())
    tokens = torch.randint(0, 50257, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(tokens).logits
    torch.testing.assert_close(ours(tokens), expected, atol=1e-4, rtol=1e-4)
    _, cache = ours.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))  # the explicit path
    with torch.no_grad():
        attentions = hf(tokens, output_attentions=True).attentions
    for layer, pattern in enumerate(attentions):
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], pattern, atol=1e-5, rtol=1e-4)
    if flags.get("reorder_and_upcast_attn"):  # in bfloat16, scores and softmax are still taken in float32
        half = load_model(folder, dtype=torch.bfloat16)
        logits, cache = half.run_with_cache(tokens, names=lambda n: n.endswith("hook_attn_scores"))
        assert all(t.dtype == torch.float32 for t in cache.values()) and logits.dtype == torch.bfloat16
        assert (half(tokens).float() - expected).abs().max() < 0.05 * expected.abs().max()
    if flags.get("scale_attn_by_inverse_layer_idx"):  # the check can fail: without the flag, other logits
        plain = tmp_path / "plain"
        shutil.copytree(folder, plain)
        (plain / "config.json").write_text(
            json.dumps({**json.loads((folder / "config.json").read_text()), "scale_attn_by_inverse_layer_idx": False})
        )
        assert (load_model(plain)(tokens) - expected).abs().max() > 1e-3


@pytest.mark.parametrize(
    "option,value",
    [
        ("activation_function", "relu"),
        ("scale_attn_weights", False),
        ("add_cross_attention", True),
        ("tie_word_embeddings", False),
    ],
)
def test_config_options_that_would_change_the_logits_are_refused(tmp_path, tiny_checkpoint, option, value):
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, option: value}))
    with pytest.raises(CheckpointError, match=f"{option}={value!r}"):
        load_model(folder)
    assert_one_line_error(run_cli("info", "--model", str(folder)), option)


def test_a_revision_reads_that_branch_from_the_hub_cache(tmp_path, tiny_checkpoint, monkeypatch):
    import huggingface_hub.constants

    from conftest import random_model
    from gpt2atlas.model import save_checkpoint

    later = save_checkpoint(random_model(seed=1), tmp_path / "later")
    repo_dir = tmp_path / "hub" / "models--stanford-crfm--alias-gpt2-small-x21"
    for revision, commit, source in (("main", "a" * 40, later), ("checkpoint-100", "b" * 40, tiny_checkpoint)):
        snapshot = repo_dir / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy(source / name, snapshot / name)
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / revision).write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "stanford-crfm/alias-gpt2-small-x21"
    early, final = load_model(repo, revision="checkpoint-100"), load_model(repo)
    assert torch.equal(early.W_E, load_model(tiny_checkpoint).W_E) and torch.equal(final.W_E, load_model(later).W_E)
    assert "at revision checkpoint-100" in early.source
    with pytest.raises(ModelNotFoundError, match="checkpoint-999"):
        load_model(repo, revision="checkpoint-999")
    with pytest.raises(ModelNotFoundError, match="applies to hub ids"):
        load_model(tiny_checkpoint, revision="checkpoint-100")
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    shown = run_cli("info", "--model", repo, "--revision", "checkpoint-100", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"].startswith(f"{repo} at revision checkpoint-100")
    assert_one_line_error(run_cli("info", "--model", repo, "--revision", "checkpoint-999", env=env), "checkpoint-999")
