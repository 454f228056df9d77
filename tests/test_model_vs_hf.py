"""Our GPT-2 gives Hugging Face's logits on the same checkpoint, in every layout we load."""

import pytest
import torch
from safetensors.torch import save_file

from gpt2atlas import load_model
from gpt2atlas.model import save_checkpoint
from hf_utils import hf_random_checkpoint

CONFIGS = {
    "small-2x4": dict(n_layer=2, n_head=4, n_embd=64),
    "distilgpt2-6-layers": dict(n_layer=6, n_head=12, n_embd=768),
    "non-square-heads-5x24": dict(n_layer=3, n_head=5, n_embd=120, n_inner=200),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_logits_equal_transformers(tmp_path, name):
    hf, folder = hf_random_checkpoint(tmp_path / name, **CONFIGS[name])
    ours = load_model(folder)
    # 120 rows take the unembedding's few-rows path, 240 the plain one
    for shape in ((3, 40), (4, 60)):
        tokens = torch.randint(0, 50257, shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = hf(tokens).logits
        got = ours(tokens)
        assert got.shape == expected.shape and got.is_contiguous()
        assert (got - expected).abs().max().item() < 1e-4
    assert ours.cfg.n_layer == CONFIGS[name]["n_layer"] and ours.cfg.n_head == CONFIGS[name]["n_head"]


def test_fused_and_explicit_attention_agree(tiny_model):
    tokens = torch.randint(0, 50257, (2, 30), generator=torch.Generator().manual_seed(2))
    fused = tiny_model(tokens)
    explicit, _ = tiny_model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    assert (fused - explicit).abs().max().item() < 1e-5


def test_pytorch_bin_and_bare_safetensors_and_our_export(tmp_path):
    hf, folder = hf_random_checkpoint(tmp_path / "ref", n_layer=2, n_head=2, n_embd=128)
    tokens = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = hf(tokens).logits

    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_text((folder / "config.json").read_text())
    torch.save({k: v.clone() for k, v in hf.state_dict().items()}, bin_folder / "pytorch_model.bin")
    assert (load_model(bin_folder)(tokens) - expected).abs().max() < 1e-4

    # A lone .safetensors file, OpenAI-style names (no "transformer." prefix): config comes from shapes.
    bare = tmp_path / "bare" / "gpt2.safetensors"
    bare.parent.mkdir()
    save_file(
        {k.removeprefix("transformer."): v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"},
        str(bare),
    )
    from_bare = load_model(bare)
    assert from_bare.cfg.n_head == 2  # d_model 128 / d_head 64
    assert (from_bare(tokens) - expected).abs().max() < 1e-4

    # Our own export loads back in transformers with the same logits.
    from transformers import GPT2LMHeadModel

    exported = save_checkpoint(from_bare, tmp_path / "export")
    again = GPT2LMHeadModel.from_pretrained(exported).eval()
    with torch.no_grad():
        assert (again(tokens).logits - expected).abs().max() < 1e-4


def test_half_precision_load(tiny_checkpoint):
    model = load_model(tiny_checkpoint, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    reference = load_model(tiny_checkpoint)
    tokens = torch.arange(10)[None]
    assert torch.allclose(model(tokens).float(), reference(tokens), atol=0.1)
