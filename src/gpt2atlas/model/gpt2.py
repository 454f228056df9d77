"""GPT-2, written out once, with a hook point at every activation worth looking at.

    x_0        = W_E[tokens] + W_pos[positions]                      (hook_embed, hook_pos_embed)
    for each block l:
        a_l    = Attn(LN1(x_l))                                      (blocks.l.hook_attn_out)
        m_l    = x_l + a_l                                           (blocks.l.hook_resid_mid)
        x_l+1  = m_l + MLP(LN2(m_l))                                 (blocks.l.hook_resid_post)
    logits     = LN_final(x_L) @ W_E^T                               (unembedding tied to W_E)

    LN(x)      = (x - mean(x)) / sqrt(var(x) + eps) * w + b
    Attn(x)    = concat_h softmax(q_h k_h^T / sqrt(d_head) + causal mask) v_h  @ W_O + b_O
               = sum_h z_h @ W_O[h] + b_O                            (attn.hook_z, attn.hook_result)
    MLP(x)     = GELU_tanh(x @ W_in + b_in) @ W_out + b_out

Weight matrices are stored as (in, out), the layout of OpenAI's and Hugging Face's checkpoints, so loading
copies nothing and `x @ W` reads like the equations. Hook names and shapes follow TransformerLens.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from gpt2atlas.errors import InputError
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.hooks import ActivationCache, HookFn, HookPoint, HookRegistry, NameFilter
from gpt2atlas.model.names import is_opt_in
from gpt2atlas.tokenizer import Tokenizer

if TYPE_CHECKING:
    from gpt2atlas.model.generation import GenerationResult, KVCache

ModelInput = str | Sequence[str] | Sequence[int] | torch.Tensor


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ weight + bias over the last axis, for any leading shape."""
    flat = torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight)
    return flat.view(*x.shape[:-1], weight.shape[1])


def _autograd() -> contextlib.ExitStack:
    """Autograd on, even inside the caller's inference mode or no_grad."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


class LayerNorm(nn.Module):
    """Centre, scale onto the sphere of radius sqrt(d), then the per-dimension gain w and shift b."""

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()  # (batch, pos, 1): sqrt(var + eps)
        self.hook_normalized = HookPoint()  # (batch, pos, d_model): on the sphere, before w and b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hook_scale.is_active or self.hook_normalized.is_active:
            return self.equation(x)
        return F.layer_norm(x, self.w.shape, self.w, self.b, self.eps)  # the same equation, in one fused kernel

    def equation(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm step by step, each step at its hook point (statistics in float32 whatever x's dtype)."""
        x32 = x.float()
        centred = x32 - x32.mean(dim=-1, keepdim=True)  # 1. centre: subtract the mean over d_model
        variance = centred.pow(2).mean(dim=-1, keepdim=True)  # 2. the variance (biased, as GPT-2's)
        scale = self.hook_scale(torch.sqrt(variance + self.eps).to(x.dtype))  # 3. sqrt(var + eps), (batch, pos, 1)
        normalized = self.hook_normalized((centred / scale.float()).to(x.dtype))  # 4. onto the sphere of radius sqrt(d)
        return normalized * self.w + self.b  # 5. the gain and the shift, per dimension


class Attention(nn.Module):
    """Causal multi-head self-attention with fused Q/K/V projection."""

    def __init__(self, cfg: GPT2Config, layer: int = 0) -> None:
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        # q.k / sqrt(d_head); the CRFM runs' option also divides by the layer's number (counted from 1)
        self.scale = 1 / math.sqrt(self.d_head) / ((layer + 1) if cfg.scale_attn_by_inverse_layer_idx else 1)
        self.upcast = cfg.reorder_and_upcast_attn  # scores and softmax in float32 whatever the dtype
        self.W_QKV = nn.Parameter(torch.empty(cfg.d_model, 3 * cfg.d_model))  # columns: Q | K | V
        self.b_QKV = nn.Parameter(torch.zeros(3 * cfg.d_model))
        self.W_O = nn.Parameter(torch.empty(cfg.d_model, cfg.d_model))  # rows: head-major (head, d_head)
        self.b_O = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_q = HookPoint()  # (batch, pos, head, d_head)
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()  # (batch, head, query, key), masked with -inf
        self.hook_pattern = HookPoint()  # (batch, head, query, key)
        self.hook_z = HookPoint()  # (batch, pos, head, d_head): pattern-weighted values
        self.hook_result = HookPoint()  # (batch, pos, head, d_model): each head's z through its rows of W_O

    def _per_head(self, which: int) -> torch.Tensor:
        d_model = self.W_QKV.shape[0]
        block = self.W_QKV[:, which * d_model : (which + 1) * d_model]
        return block.reshape(d_model, self.n_head, self.d_head).transpose(0, 1)

    @property
    def W_Q(self) -> torch.Tensor:
        """(head, d_model, d_head) view of the query weights."""
        return self._per_head(0)

    @property
    def W_K(self) -> torch.Tensor:
        return self._per_head(1)

    @property
    def W_V(self) -> torch.Tensor:
        return self._per_head(2)

    @property
    def W_O_per_head(self) -> torch.Tensor:
        """(head, d_head, d_model) view of the output weights."""
        return self.W_O.view(self.n_head, self.d_head, -1)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        batch, n_new, d_model = x.shape
        qkv = _affine(x, self.W_QKV, self.b_QKV).view(batch, n_new, 3, self.n_head, self.d_head)
        q = self.hook_q(qkv[:, :, 0])
        k = self.hook_k(qkv[:, :, 1])
        v = self.hook_v(qkv[:, :, 2])
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, head, pos, d_head)
        n_past = 0
        if kv_cache is not None:
            n_past = kv_cache.length
            k, v = kv_cache.update(layer, k, v)
        upcast = self.upcast and q.dtype != torch.float32
        if self.hook_attn_scores.is_active or self.hook_pattern.is_active or upcast:
            z = self._explicit_attention(q, k, v, n_past)
        else:
            z = self._fused_attention(q, k, v, n_past)
        z = self.hook_z(z.transpose(1, 2))
        if self.hook_result.is_active:  # per head, only when asked: n_head times attention's output in memory
            result = self.hook_result(torch.einsum("bphd,hdm->bphm", z, self.W_O_per_head))
            return result.sum(dim=2) + self.b_O
        return _affine(z.reshape(batch, n_new, d_model), self.W_O, self.b_O)

    def _explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_past: int) -> torch.Tensor:
        n_new, n_keys = q.shape[-2], k.shape[-2]
        query_pos = torch.arange(n_past, n_past + n_new, device=q.device)[:, None]
        future = torch.arange(n_keys, device=q.device)[None, :] > query_pos
        if self.upcast:
            q, k = q.float(), k.float()
        scores = (q @ k.transpose(-1, -2)).mul_(self.scale).masked_fill_(future, float("-inf"))
        scores = self.hook_attn_scores(scores)  # scaled and masked in place: no extra (query, key) tensors
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        return pattern.to(v.dtype) @ v

    def _fused_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_past: int) -> torch.Tensor:
        n_new = q.shape[-2]
        if n_past == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=n_new > 1, scale=self.scale)
        if n_new == 1:  # one new token sees every cached one
            return F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        query_pos = torch.arange(n_past, n_past + n_new, device=q.device)[:, None]
        visible = torch.arange(k.shape[-2], device=q.device)[None, :] <= query_pos
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=self.scale)


class MLP(nn.Module):
    """Two-layer perceptron with the tanh approximation of GELU (GPT-2's `gelu_new`)."""

    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_pre = HookPoint()  # (batch, pos, d_mlp): before GELU
        self.hook_post = HookPoint()  # (batch, pos, d_mlp): neuron activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(_affine(x, self.W_in, self.b_in))
        post = self.hook_post(F.gelu(pre, approximate="tanh"))
        return _affine(post, self.W_out, self.b_out)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: attention then MLP, each added to the residual stream."""

    def __init__(self, cfg: GPT2Config, layer: int = 0) -> None:
        super().__init__()
        self.hook_resid_pre = HookPoint()
        self.ln1 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.attn = Attention(cfg, layer)
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.ln2 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.mlp = MLP(cfg)
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        resid_pre = self.hook_resid_pre(x)
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid_pre), kv_cache, layer))
        resid_mid = self.hook_resid_mid(resid_pre + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid_mid)))
        return self.hook_resid_post(resid_mid + mlp_out)


class Embed(nn.Module):
    def __init__(self, d_vocab: int, d_model: int) -> None:
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(d_vocab, d_model))


class PosEmbed(nn.Module):
    def __init__(self, n_ctx: int, d_model: int) -> None:
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(n_ctx, d_model))


class Unembed(nn.Module):
    """Logits from the final residual stream. Holds no weight of its own: GPT-2 ties W_U to W_E^T."""

    def __init__(self, embed: Embed) -> None:
        super().__init__()
        self._embed = [embed]  # a list, so the tied matrix is not registered (and counted) twice
        self.hook_in = HookPoint()  # (batch, pos, d_model): ln_final's output
        self.hook_out = HookPoint()  # (batch, pos, d_vocab): the logits

    # Up to this many rows (generation steps, last-position logits), the CPU computes the logits as
    # W_E @ x^T instead of F.linear(x, W_E). benchmarks/bench_unembed.py, GPT-2 small's W_E, 2 threads, torch
    # 2.13, AMD EPYC (2 cores, shared), two runs: F.linear / this form = 0.88-1.07x at 1 row, 2.5-2.9x at 2,
    # 1.8-2.0x at 5, 1.4x at 8, 1.1-1.2x at 32, 1.4x at 128 (1.2x at 256, 1.15x at 512). Earlier machines
    # differed (within 10% at 5 rows on one), so the bound stays where it was measured to help, not beyond.
    FEW_ROWS = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_in(x)
        W_E = self._embed[0].W_E
        flat = x.reshape(-1, x.shape[-1])
        if flat.device.type == "cpu" and flat.shape[0] <= self.FEW_ROWS:
            logits = (W_E @ flat.T).T.contiguous()
        else:
            logits = F.linear(flat, W_E)
        return self.hook_out(logits.view(*x.shape[:-1], W_E.shape[0]))


class GPT2(nn.Module):
    """GPT-2 with TransformerLens-named hook points, a tokenizer, caching and generation."""

    def __init__(self, cfg: GPT2Config, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer or Tokenizer()
        self.source = "random init"  # where the weights came from; set by the loader
        self.weights_path: Path | None = None  # the file they were read from, if any
        self.embed = Embed(cfg.d_vocab, cfg.d_model)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg.n_ctx, cfg.d_model)
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg, layer) for layer in range(cfg.n_layer))
        self.ln_final = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.unembed = Unembed(self.embed)
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
        points = {m.name: m for m in self.modules() if isinstance(m, HookPoint)}
        self.hooks = HookRegistry(points, opt_in=[n for n in points if is_opt_in(n)])

    # ----- weights -------------------------------------------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        """Token embedding, (d_vocab, d_model)."""
        return self.embed.W_E

    @property
    def W_pos(self) -> torch.Tensor:
        """Position embedding, (n_ctx, d_model)."""
        return self.pos_embed.W_pos

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding, (d_model, d_vocab): the transpose of W_E (GPT-2 ties them)."""
        return self.embed.W_E.T

    @property
    def device(self) -> torch.device:
        return self.embed.W_E.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.W_E.dtype

    def init_weights(self, seed: int | None = None, std: float = 0.02, *, scale_residual: bool = False) -> GPT2:
        """GPT-2's initialisation: weights normal(0, std), biases 0, LayerNorm gains 1.

        With `scale_residual` (GPT-2's recipe for training from scratch), the two matrices that write into the
        residual stream in each block (attention's W_O, the MLP's W_out) get std / sqrt(2 n_layer), so that the
        stream's variance does not grow with depth.
        """
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        residual_std = std / math.sqrt(2 * self.cfg.n_layer) if scale_residual else std
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith((".w",)):
                    p.fill_(1.0)
                elif name.split(".")[-1].startswith("b"):
                    p.zero_()
                else:
                    scale = residual_std if name.endswith(("attn.W_O", "mlp.W_out")) else std
                    p.copy_(torch.randn(p.shape, generator=gen).mul_(scale))
        return self

    # ----- inputs --------------------------------------------------------------------------------------------
    def to_tokens(self, inputs: ModelInput, *, prepend_bos: bool = False) -> torch.Tensor:
        """Token ids as a (batch, pos) tensor on the model's device, checked against the vocabulary and context."""
        if isinstance(inputs, str):
            inputs = [inputs]
        if isinstance(inputs, torch.Tensor):
            tokens = inputs.long()
            if tokens.ndim == 1:
                tokens = tokens[None]
        elif len(inputs) and all(isinstance(t, str) for t in inputs):
            rows = [self.tokenizer.encode(text) for text in inputs]  # type: ignore[arg-type]
            if any(not row for row in rows) and not prepend_bos:
                raise InputError("the prompt is empty: give at least one character of text")
            if len({len(r) for r in rows}) > 1:
                raise InputError(
                    f"texts in one batch must have the same number of tokens, these have "
                    f"{sorted({len(r) for r in rows})}: run them one at a time"
                )
            tokens = torch.tensor(rows, dtype=torch.long)
        else:
            tokens = torch.tensor([list(inputs)], dtype=torch.long)
        if prepend_bos:
            bos = torch.full((tokens.shape[0], 1), self.tokenizer.eot_token_id, dtype=torch.long)
            tokens = torch.cat([bos, tokens.cpu()], dim=1)
        self._check_tokens(tokens)
        return tokens.to(self.device)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.ndim != 2:
            raise InputError(f"tokens must be (batch, pos), got shape {tuple(tokens.shape)}")
        if tokens.shape[1] == 0:
            raise InputError("the prompt is empty: give at least one token")
        if tokens.shape[1] > self.cfg.n_ctx:
            raise InputError(
                f"the prompt is {tokens.shape[1]} tokens long, more than the model's context of {self.cfg.n_ctx}"
            )
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.cfg.d_vocab:
            bad = hi if hi >= self.cfg.d_vocab else lo
            raise InputError(
                f"token id {bad} is outside this model's vocabulary: ids are 0..{self.cfg.d_vocab - 1} "
                f"({self.cfg.d_vocab} tokens)"
            )

    def to_str_tokens(self, inputs: ModelInput, *, prepend_bos: bool = False) -> list[str]:
        """The token strings of a single prompt."""
        return self.tokenizer.to_str_tokens(self.to_tokens(inputs, prepend_bos=prepend_bos)[0].tolist())

    # ----- forward -------------------------------------------------------------------------------------------
    def forward(
        self,
        inputs: ModelInput,
        *,
        kv_cache: KVCache | None = None,
        last_position_only: bool = False,
        stop_at_layer: int | None = None,
    ) -> torch.Tensor:
        """Logits (batch, pos, d_vocab); with `stop_at_layer=l`, the residual stream entering block l."""
        tokens = inputs if isinstance(inputs, torch.Tensor) and inputs.ndim == 2 else self.to_tokens(inputs)
        x = self.residual_stream(tokens, kv_cache=kv_cache, stop_at_layer=stop_at_layer)
        if stop_at_layer is not None:
            return x
        if last_position_only:
            x = x[:, -1:]
        return self.unembed(self.ln_final(x))

    def residual_stream(
        self, tokens: torch.Tensor, *, kv_cache: KVCache | None = None, stop_at_layer: int | None = None
    ) -> torch.Tensor:
        """The residual stream (batch, pos, d_model) after the last block (or entering block `stop_at_layer`).

        `ln_final` of it is what the unembedding reads: training takes it from here, so that the loss can be
        computed without materialising the logits (see `gpt2atlas.training.loss`).
        """
        n_past = kv_cache.length if kv_cache is not None else 0
        if n_past + tokens.shape[1] > self.cfg.n_ctx:
            raise InputError(f"{n_past + tokens.shape[1]} tokens exceed the model's context of {self.cfg.n_ctx}")
        positions = torch.arange(n_past, n_past + tokens.shape[1], device=tokens.device)
        pos_embed = self.pos_embed.W_pos[positions].expand(tokens.shape[0], -1, -1)
        x = self.hook_embed(F.embedding(tokens, self.embed.W_E)) + self.hook_pos_embed(pos_embed)
        for layer, block in enumerate(self.blocks[:stop_at_layer]):
            x = block(x, kv_cache, layer)
        if kv_cache is not None:
            kv_cache.advance(tokens.shape[1])
        return x

    # ----- hooks ---------------------------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """Every hook name, in the order the forward pass reaches them."""
        return self.hooks.names

    def run_with_hooks(
        self,
        inputs: ModelInput,
        fwd_hooks: Iterable[tuple[NameFilter, HookFn]] = (),
        *,
        bwd_hooks: Iterable[tuple[NameFilter, HookFn]] = (),
        prepend_bos: bool = False,
    ) -> torch.Tensor:
        """Forward pass with hooks `fn(activation, hook)` attached; a hook may return a replacement.

        The hooks belong to this call (another thread's passes on the same model never see them) and are gone
        when it returns or raises. `bwd_hooks` get `fn(grad, hook)`, the gradient with respect to the activation,
        when the returned logits are differentiated (the pass then runs with autograd on, whatever the caller's
        mode); one may return a replacement gradient.
        """
        tokens = self.to_tokens(inputs, prepend_bos=prepend_bos)
        bwd_hooks = list(bwd_hooks)
        mode = _autograd() if bwd_hooks else contextlib.nullcontext()
        with mode, self.hooks.attached(fwd_hooks, bwd_hooks=bwd_hooks):
            return self(tokens)

    def run_with_cache(
        self,
        inputs: ModelInput,
        names: NameFilter = None,
        *,
        prepend_bos: bool = False,
        stop_at_layer: int | None = None,
        grad: bool = False,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Logits and the activations named by `names` (all of them if None; a list or a predicate).

        Only requested activations are kept; None leaves out each head's `attn.hook_result`, which is computed
        only when named. By default the pass runs in inference mode and the activations are detached. With
        `grad=True` it keeps the autograd graph: every cached activation requires grad (one computed from
        nothing that does, as with a loaded model's frozen weights, becomes a leaf), so the logits can be
        differentiated with respect to it, e.g. `torch.autograd.grad(logits[0, -1, t], cache[name])`.
        Values equal TransformerLens's `run_with_cache` on a model loaded without weight processing
        (`fold_ln=False, center_writing_weights=False, center_unembed=False`).
        """
        tokens = self.to_tokens(inputs, prepend_bos=prepend_bos)
        cache = ActivationCache()

        def keep(activation: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = activation.detach()

        def keep_in_graph(activation: torch.Tensor, hook: HookPoint) -> torch.Tensor:
            if not activation.requires_grad:  # the same values, now a leaf the backward pass can reach
                activation = activation.detach().requires_grad_(True)
            cache[hook.name] = activation
            return activation

        mode = _autograd() if grad else torch.inference_mode()
        with mode, self.hooks.attached([(names, keep_in_graph if grad else keep)], read_only=True):
            logits = self(tokens, stop_at_layer=stop_at_layer)
        return logits, cache

    # ----- generation ----------------------------------------------------------------------------------------
    def generate(self, prompt: ModelInput, max_new_tokens: int = 30, **sampling) -> GenerationResult:
        """Continue `prompt`; see `gpt2atlas.model.generation.generate` for the sampling options."""
        from gpt2atlas.model.generation import generate

        return generate(self, prompt, max_new_tokens=max_new_tokens, **sampling)

    def extra_repr(self) -> str:
        c = self.cfg
        return f"n_layer={c.n_layer}, n_head={c.n_head}, d_model={c.d_model}, n_ctx={c.n_ctx}, source={self.source}"
