"""What causal work needs from the model: hooks held by the call (thread-safe on one shared model), each head's
result as TransformerLens gives it, and gradients (a cache that keeps the graph, backward hooks) equal to
autograd through transformers' GPT-2."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.analysis import attention, saliency
from gpt2atlas.errors import InputError
from gpt2atlas.model.names import act_name
from hf_utils import hf_random_checkpoint, transformer_lens_model

N_LAYER, N_HEAD, D_MODEL = 2, 4, 64


def _in_two_threads(jobs: list[Callable[[], Any]], times: int) -> list[list[Any]]:
    """Run each job `times` times, the jobs in parallel threads started together; an exception is a result."""
    start = threading.Barrier(len(jobs))
    results: list[list[Any]] = [[] for _ in jobs]

    def loop(job: Callable[[], Any], out: list[Any]) -> None:
        start.wait()
        for _ in range(times):
            try:
                out.append(job())
            except Exception as error:  # another thread's hook may break this call: count it as a wrong answer
                out.append(error)

    threads = [threading.Thread(target=loop, args=(job, out)) for job, out in zip(jobs, results)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_saliency_and_attention_in_two_threads_each_get_their_own_answer(tiny_model):
    """Saliency replaces hook_embed; attention reads every pattern. On one model, at once, neither sees the other."""

    def salient():
        return saliency.analyze(tiny_model, "The capital of France is", steps=4).findings

    def attended():
        return attention.analyze(tiny_model, "one two three one two three", repeat_half=8, repeat_batch=2).findings

    alone = [salient(), attended()]
    together = _in_two_threads([salient, attended], times=100)
    differed = [sum(result != solo for result in runs) for solo, runs in zip(alone, together)]
    assert differed == [0, 0]


def test_a_replacing_hook_in_one_thread_never_reaches_another_threads_plain_pass(tiny_model):
    tokens = tiny_model.to_tokens("Same shape: a leak would fit")
    with torch.inference_mode():
        expected = tiny_model(tokens)

    def replaced():
        with torch.inference_mode():
            return tiny_model.run_with_hooks(tokens, [(act_name("embed"), lambda x, hook: torch.zeros_like(x))])

    def plain():
        with torch.inference_mode():
            return tiny_model(tokens)

    hooked, plain_runs = _in_two_threads([replaced, plain], times=150)
    assert sum(not torch.equal(logits, expected) for logits in plain_runs) == 0
    assert all(not torch.allclose(logits, expected) for logits in hooked)  # the hook did act, in its own thread


def test_hooks_attached_in_one_thread_are_invisible_to_another(tiny_model):
    point = tiny_model.hooks.points[act_name("pattern", 0)]
    seen: list[bool] = []
    with tiny_model.hooks.attached([(point.name, lambda x, hook: None)]):
        other = threading.Thread(target=lambda: seen.append(point.is_active))
        other.start()
        other.join()
        assert point.is_active
    assert seen == [False] and not point.is_active


@pytest.fixture(scope="module")
def hf_and_ours(tmp_path_factory):
    hf, folder = hf_random_checkpoint(tmp_path_factory.mktemp("causal") / "ck", n_layer=N_LAYER, n_head=N_HEAD)
    return hf, load_model(folder)


TOKENS = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(1))


def test_head_results_equal_transformer_lens(hf_and_ours):
    pytest.importorskip("transformer_lens")
    hf, ours = hf_and_ours
    tl = transformer_lens_model(hf, N_LAYER, N_HEAD, D_MODEL, use_attn_result=True)
    names = [act_name("result", layer) for layer in range(N_LAYER)]
    _, tl_cache = tl.run_with_cache(TOKENS, names_filter=names + [act_name("attn_out", 0)])
    logits, cache = ours.run_with_cache(TOKENS, names=names + [act_name("attn_out", 0)])
    for name in names:
        assert cache[name].shape == (2, 12, N_HEAD, D_MODEL) == tl_cache[name].shape
        assert (cache[name] - tl_cache[name]).abs().max() < 1e-4, name
    summed = cache[names[0]].sum(dim=2) + ours.blocks[0].attn.b_O  # the heads' results add up to attention's output
    assert (summed - cache[act_name("attn_out", 0)]).abs().max() < 1e-5
    assert (logits - ours(TOKENS)).abs().max() < 1e-4  # computing them changes nothing downstream
    _, everything = ours.run_with_cache(TOKENS)
    assert not any(name in everything for name in names)  # every activation but these: they are opt-in


def test_editing_a_head_result_changes_attentions_output(hf_and_ours):
    _, ours = hf_and_ours
    head = 1

    def zero_result(result, hook):
        result[:, :, head] = 0.0

    def zero_z(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    by_result = ours.run_with_hooks(TOKENS, [(act_name("result", 1), zero_result)])
    by_z = ours.run_with_hooks(TOKENS, [(act_name("z", 1), zero_z)])
    assert (by_result - by_z).abs().max() < 1e-4  # zeroing a head's result is zeroing its z
    assert (by_result - ours(TOKENS)).abs().max() > 1e-2  # and it does change the logits


def _hf_gradients(hf, target: int) -> list[torch.Tensor]:
    """d(sum of the target's last-position logits) / d(residual stream entering each block), by HF autograd."""
    out = hf(TOKENS, output_hidden_states=True)
    entering = list(out.hidden_states[:N_LAYER])  # the last hidden state is ln_f's output: not a block's input
    return list(torch.autograd.grad(out.logits[:, -1, target].sum(), entering))


def test_gradients_of_a_cache_kept_in_the_graph_equal_transformers(hf_and_ours):
    hf, ours = hf_and_ours
    target = 1234
    names = [act_name("resid_pre", layer) for layer in range(N_LAYER)]
    with torch.inference_mode():  # grad=True keeps the graph even inside the caller's inference mode
        logits, cache = ours.run_with_cache(TOKENS, names=names, grad=True)
    ours_grads = torch.autograd.grad(logits[:, -1, target].sum(), [cache[name] for name in names])
    for ours_grad, hf_grad in zip(ours_grads, _hf_gradients(hf, target)):
        assert ours_grad.abs().max() > 1e-3
        assert (ours_grad - hf_grad).abs().max() < 1e-4
    _, detached = ours.run_with_cache(TOKENS, names=names)
    assert not detached[names[0]].requires_grad  # the default is unchanged: inference mode, no graph


def test_backward_hooks_see_the_gradients_transformers_computes(hf_and_ours):
    hf, ours = hf_and_ours
    target = 1234
    grads: dict[str, torch.Tensor] = {}

    def save(grad, hook):
        grads[hook.name] = grad

    names = [act_name("resid_pre", layer) for layer in range(N_LAYER)]
    logits = ours.run_with_hooks(TOKENS, bwd_hooks=[(names, save)])
    assert grads == {}  # nothing until the backward pass
    logits[:, -1, target].sum().backward()
    for name, hf_grad in zip(names, _hf_gradients(hf, target)):
        assert (grads[name] - hf_grad).abs().max() < 1e-4

    embeds = hf.transformer.wte(TOKENS).detach().requires_grad_(True)
    (hf_embed_grad,) = torch.autograd.grad(hf(inputs_embeds=embeds).logits[:, -1, target].sum(), embeds)
    ours.run_with_hooks(TOKENS, bwd_hooks=[(act_name("embed"), save)])[:, -1, target].sum().backward()
    assert (grads[act_name("embed")] - hf_embed_grad).abs().max() < 1e-4


def test_a_backward_hook_can_replace_the_gradient(hf_and_ours):
    _, ours = hf_and_ours
    grads: dict[str, torch.Tensor] = {}

    def save(grad, hook):
        grads[hook.name] = grad

    def cut(grad, hook):
        return torch.zeros_like(grad)

    embed, entering_last = act_name("embed"), act_name("resid_pre", N_LAYER - 1)
    ours.run_with_hooks(TOKENS, bwd_hooks=[(embed, save), (entering_last, cut)])[:, -1].sum().backward()
    assert grads[embed].abs().max() == 0  # everything after block 0 reads the embedding only through that stream
    ours.run_with_hooks(TOKENS, bwd_hooks=[(embed, save)])[:, -1].sum().backward()
    assert grads[embed].abs().max() > 0


def test_a_backward_hook_on_a_head_result_gets_its_gradient(hf_and_ours):
    _, ours = hf_and_ours
    name = act_name("result", 0)
    logits, cache = ours.run_with_cache(TOKENS, names=[name], grad=True)
    (expected,) = torch.autograd.grad(logits[:, -1, 7].sum(), cache[name])
    seen: list[torch.Tensor] = []
    ours.run_with_hooks(TOKENS, bwd_hooks=[(name, lambda grad, hook: seen.append(grad))])[:, -1, 7].sum().backward()
    assert seen[0].shape == (2, 12, N_HEAD, D_MODEL)
    assert torch.allclose(seen[0], expected, atol=1e-6)


def test_a_backward_hook_in_a_pass_without_autograd_is_refused(tiny_model):
    name = act_name("resid_pre", 1)
    with tiny_model.hooks.attached(bwd_hooks=[(name, lambda grad, hook: None)]):
        with pytest.raises(InputError, match=f"backward hook on {name} in a pass without autograd"):
            tiny_model.run_with_cache("Hello", names=[name])  # inference mode: it could never fire
        _, cache = tiny_model.run_with_cache("Hello", names=[name], grad=True)
    assert cache[name].requires_grad
