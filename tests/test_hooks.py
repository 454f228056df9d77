"""Activation capture: TransformerLens names, shapes and values; hooks that read, replace and never leak."""

import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.errors import InputError
from hf_utils import hf_random_checkpoint, transformer_lens_model

PER_LAYER = [
    "hook_resid_pre",
    "ln1.hook_scale",
    "ln1.hook_normalized",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid",
    "ln2.hook_scale",
    "ln2.hook_normalized",
    "mlp.hook_pre",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
]


def test_cache_equals_transformer_lens(tmp_path):
    pytest.importorskip("transformer_lens")
    n_layer, n_head, d_model = 2, 4, 64
    hf, folder = hf_random_checkpoint(tmp_path / "ck", n_layer=n_layer, n_head=n_head, n_embd=d_model)
    ours = load_model(folder)
    tl = transformer_lens_model(hf, n_layer, n_head, d_model)
    tokens = torch.randint(0, 50257, (2, 24), generator=torch.Generator().manual_seed(0))
    tl_logits, tl_cache = tl.run_with_cache(tokens)
    logits, cache = ours.run_with_cache(tokens)

    expected_names = ["hook_embed", "hook_pos_embed"]
    expected_names += [f"blocks.{l}.{n}" for l in range(n_layer) for n in PER_LAYER]
    expected_names += ["ln_final.hook_scale", "ln_final.hook_normalized", "unembed.hook_in", "unembed.hook_out"]
    assert list(cache) == expected_names  # every activation but each head's result, which only a name asks for
    results = [f"blocks.{l}.attn.hook_result" for l in range(n_layer)]
    assert [n for n in ours.hook_names() if n not in results] == expected_names
    assert set(results) <= set(tl.hook_dict)  # TransformerLens has the hook point too, unused by default
    assert set(cache) == set(tl_cache.keys())
    for name in cache:
        assert cache[name].shape == tl_cache[name].shape, name
        difference = (cache[name] - tl_cache[name]).nan_to_num(0.0).abs().max().item()  # -inf == -inf
        assert difference < 1e-4, (name, difference)
    assert (logits - tl_logits).abs().max() < 1e-4


def test_only_requested_activations_are_kept(tiny_model):
    _, by_list = tiny_model.run_with_cache("Hello world", names=["blocks.1.hook_resid_post", "hook_embed"])
    assert set(by_list) == {"blocks.1.hook_resid_post", "hook_embed"}
    _, by_predicate = tiny_model.run_with_cache("Hello world", names=lambda n: n.endswith("hook_pattern"))
    assert list(by_predicate) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert torch.allclose(by_predicate["blocks.0.attn.hook_pattern"].sum(-1), torch.ones(1, 4, 2))


def test_unknown_hook_name_is_a_clear_error(tiny_model):
    with pytest.raises(InputError, match="unknown hook name 'blocks.9.hook_resid_pre'"):
        tiny_model.run_with_cache("Hi", names=["blocks.9.hook_resid_pre"])
    with pytest.raises(InputError, match="unknown hook name"):
        tiny_model.run_with_hooks("Hi", fwd_hooks=[("blocks.0.attn.hook_nothing", lambda x, h: x)])


def test_zero_ablating_a_head_changes_only_what_it_should(tiny_model):
    tokens = torch.randint(0, 50257, (1, 12), generator=torch.Generator().manual_seed(5))
    head = 2

    def ablate(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    seen = {}

    def record(x, hook):
        seen[hook.name] = x.detach().clone()

    tiny_model.run_with_hooks(tokens, [("blocks.0.attn.hook_z", ablate), ("blocks.0.hook_attn_out", record)])
    block = tiny_model.blocks[0]
    _, cache = tiny_model.run_with_cache(tokens, names=["blocks.0.attn.hook_z", "blocks.0.hook_attn_out"])
    z = cache["blocks.0.attn.hook_z"].clone()
    z[:, :, head] = 0
    expected = z.reshape(1, 12, -1) @ block.attn.W_O + block.attn.b_O
    assert torch.allclose(seen["blocks.0.hook_attn_out"], expected, atol=1e-5)


def test_patching_residual_and_hooks_never_leak(tiny_model):
    clean, corrupt = "The cat sat on the mat", "The dog sat on the rug"
    _, clean_cache = tiny_model.run_with_cache(clean, names=["blocks.1.hook_resid_post"])
    patched = tiny_model.run_with_hooks(corrupt, [("blocks.1.hook_resid_post", lambda x, hook: clean_cache[hook.name])])
    assert torch.allclose(patched, tiny_model(clean), atol=1e-5)  # patching the last residual decides the logits
    assert torch.allclose(tiny_model(corrupt), tiny_model.run_with_hooks(corrupt, []), atol=0)
    assert not any(point.is_active for point in tiny_model.hooks.points.values())

    def boom(x, hook):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        tiny_model.run_with_hooks(corrupt, [("blocks.0.hook_resid_pre", boom)])
    assert not any(point.is_active for point in tiny_model.hooks.points.values())


def test_hook_returning_wrong_shape_is_rejected(tiny_model):
    with pytest.raises(InputError, match="returned shape"):
        tiny_model.run_with_hooks("Hi there", [("hook_embed", lambda x, h: x[:, :1])])


def test_gradients_flow_through_a_replacing_hook(tiny_model):
    tokens = tiny_model.to_tokens("Gradients please")
    embed = tiny_model.W_E[tokens].clone().requires_grad_(True)
    logits = tiny_model.run_with_hooks(tokens, [("hook_embed", lambda x, h: embed)])
    logits[0, -1].max().backward()
    assert embed.grad is not None and embed.grad.abs().sum() > 0


def test_a_replaced_or_edited_layernorm_scale_is_the_one_divided_by(tiny_model):
    text = "Freeze the scale"
    halved = tiny_model.run_with_hooks(text, [("blocks.0.ln1.hook_normalized", lambda x, h: x / 2)])

    def double_in_place(x, hook):
        x.mul_(2)

    for doubling in (lambda x, h: x * 2, double_in_place):
        logits = tiny_model.run_with_hooks(text, [("blocks.0.ln1.hook_scale", doubling)])
        assert torch.allclose(logits, halved, atol=1e-5)
    assert not torch.allclose(halved, tiny_model(text), atol=1e-3)  # the edit did change the logits


def test_caching_the_scale_does_not_hide_an_edit_made_alongside(tiny_model):
    """Caching attaches read-only hooks; an editing hook on the same point still takes effect."""
    text = "Freeze the scale"
    name = "blocks.0.ln1.hook_scale"
    halved = tiny_model.run_with_hooks(text, [("blocks.0.ln1.hook_normalized", lambda x, h: x / 2)])
    point = tiny_model.hooks.points[name]
    with tiny_model.hooks.attached([(name, lambda x, h: x * 2)]):
        assert point.may_edit
        logits, cache = tiny_model.run_with_cache(text, names=[name])
        assert point.may_edit  # detaching the read-only cache hook left the editing hook in place
    assert not point.may_edit and not point.is_active
    assert torch.allclose(logits, halved, atol=1e-5)
    _, plain = tiny_model.run_with_cache(text, names=[name])
    assert torch.allclose(cache[name], 2 * plain[name])
