"""Ablation over a corpus: the loss increase when each head's or MLP's output is set to zero or to its mean.

The corpus is what `train --data` reads (a text file, a folder, a built-in corpus, or a token folder); its
held-out stream (the training stream if none is held out) is cut into windows of `context` + 1 tokens, at most
`max_tokens` of them. The mean is taken over the same windows: a head's z (every position of every window)
and an MLP's output. As in patching, each ablated copy starts from the clean run's residual stream where it
changes, so the blocks before it are not recomputed.
"""

from __future__ import annotations

import torch

from gpt2atlas.analysis.causes.findings import AblationFindings, ComponentAblation, rank
from gpt2atlas.analysis.causes.inputs import block_of
from gpt2atlas.analysis.causes.patching import run_from
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import act_name
from gpt2atlas.training.data import prepare_tokens, validation_windows
from gpt2atlas.training.loss import linear_cross_entropy

DEFINITION = (
    "mean next-token cross-entropy (nats per token) with the component's output replaced, minus the "
    "unablated loss; zero: the output set to 0 (a head's z, an MLP's whole output); mean: set to its mean over "
    "every position of the same windows"
)


def component_names(model: GPT2) -> list[str]:
    """L{l}H{h} for every head, then L{l}.mlp per layer, layer by layer."""
    names = []
    for layer in range(model.cfg.n_layer):
        names += [f"L{layer}H{h}" for h in range(model.cfg.n_head)] + [f"L{layer}.mlp"]
    return names


def corpus_windows(model: GPT2, data: str, context: int, max_tokens: int, progress: bool) -> torch.Tensor:
    """(n, context + 1) windows of the corpus's held-out stream (or its training stream when nothing is held out)."""
    if not 1 <= context <= model.cfg.n_ctx:
        raise InputError(f"context={context} must be in 1..{model.cfg.n_ctx}", arguments=("context",))
    tokens = prepare_tokens(data, progress=progress)
    stream = tokens.val if len(tokens.val) > context else tokens.train
    windows = validation_windows(stream, context, max_tokens)
    if len(windows) == 0:
        raise InputError(f"data={data} holds no text to measure the loss on", arguments=("data",))
    return windows


def _caches(model: GPT2, batch: torch.Tensor, short_names: tuple[str, ...]) -> dict[str, list[torch.Tensor]]:
    """Per short name, every layer's activation on a batch of windows (their last token is only a target)."""
    layers = range(model.cfg.n_layer)
    names = [act_name(n, l) for n in short_names for l in layers]
    _, cache = model.run_with_cache(batch[:, :-1], names=names, stop_at_layer=model.cfg.n_layer)
    return {n: [cache[act_name(n, l)] for l in layers] for n in short_names}


def _means(model: GPT2, batches: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the mean z (head, d_head) and the mean MLP output (d_model) over every position of the windows."""
    n_layer = model.cfg.n_layer
    z_sum = [torch.zeros(0)] * n_layer
    mlp_sum = [torch.zeros(0)] * n_layer
    count = 0
    for i, batch in enumerate(batches):
        cache = _caches(model, batch, ("z", "mlp_out"))
        for layer in range(n_layer):
            z, mlp = cache["z"][layer].sum((0, 1)), cache["mlp_out"][layer].sum((0, 1))
            z_sum[layer] = z if i == 0 else z_sum[layer] + z
            mlp_sum[layer] = mlp if i == 0 else mlp_sum[layer] + mlp
        count += batch.shape[0] * (batch.shape[1] - 1)
    return [s / count for s in z_sum], [s / count for s in mlp_sum]


def ablate(
    model: GPT2,
    data: str,
    *,
    context: int = 128,
    max_tokens: int = 16_384,
    batch_size: int = 8,
    progress: bool = True,
) -> AblationFindings:
    """Zero- and mean-ablate every head and MLP over the corpus `data`; the loss increase of each."""
    from tqdm.auto import tqdm

    context = min(context, model.cfg.n_ctx)
    windows = corpus_windows(model, data, context, max_tokens, progress).to(model.device)
    batches = list(windows.split(batch_size))
    names = component_names(model)
    n_layer, n_head = model.cfg.n_layer, model.cfg.n_head
    totals = torch.zeros(2, len(names), dtype=torch.float64)  # (zero, mean) x component, summed token losses
    base = 0.0
    with torch.inference_mode():
        mean_z, mean_mlp = _means(model, batches)

        def loss_of(targets: torch.Tensor):
            def readout(x: torch.Tensor) -> torch.Tensor:
                hidden = model.ln_final(x)
                return linear_cross_entropy(hidden, model.W_E, targets) * targets.numel()

            return readout

        # the bar is closed also when a step fails (before the error line is printed)
        with tqdm(total=len(batches) * len(names), desc="ablating", unit="component", disable=not progress) as bar:
            for batch in batches:
                targets = batch[:, 1:]
                readout = loss_of(targets)
                cache = _caches(model, batch, ("resid_mid", "resid_post", "z", "mlp_out"))
                base += float(readout(cache["resid_post"][n_layer - 1]))
                for layer in range(n_layer):
                    z = cache["z"][layer]  # (batch, pos, head, d_head)
                    for kind, replacement in enumerate((torch.zeros_like(z), mean_z[layer].expand_as(z))):
                        for head in range(n_head):
                            delta = _head_delta(model, layer, head, z, replacement)
                            x = cache["resid_mid"][layer] + delta
                            totals[kind, layer * (n_head + 1) + head] += float(
                                run_from(model, [(2 * layer + 1, x)], readout)
                            )
                    mlp = cache["mlp_out"][layer]
                    post = cache["resid_post"][layer] - mlp
                    for kind, replacement in enumerate((torch.zeros_like(mlp[0, 0]), mean_mlp[layer])):
                        x = post + replacement
                        totals[kind, layer * (n_head + 1) + n_head] += float(
                            run_from(model, [(2 * layer + 2, x)], readout)
                        )
                    bar.update(n_head + 1)
    n_tokens = windows.shape[0] * (windows.shape[1] - 1)
    increase = totals / n_tokens - base / n_tokens
    return AblationFindings(
        data=data,
        tokens=n_tokens,
        windows=windows.shape[0],
        context=context,
        base_loss=base / n_tokens,
        components=[
            ComponentAblation(name, float(increase[0, i]), float(increase[1, i])) for i, name in enumerate(names)
        ],
        zero_ranking=rank(names, increase[0]),
        mean_ranking=rank(names, increase[1]),
        definition=DEFINITION,
    )


def _head_delta(model: GPT2, layer: int, head: int, z: torch.Tensor, replacement: torch.Tensor) -> torch.Tensor:
    """What replacing one head's z (batch, pos, head, d_head) by `replacement` adds to the residual stream."""
    W_O = block_of(model, layer).attn.W_O_per_head[head].detach()  # (d_head, d_model)
    return (replacement[:, :, head] - z[:, :, head]) @ W_O
