"""Next-token cross-entropy fused with the unembedding, so the (tokens x 50,257) logits never exist at once.

GPT-2's loss is  mean_i [ logsumexp_v (h_i . W_E[v]) - h_i . W_E[t_i] ]  over the final LayerNorm's outputs h.
For a small model the unembedding and this softmax cost more than every block together, and a plain
`cross_entropy(h @ W_E.T, t)` writes and rereads a float32 (tokens x vocabulary) matrix several times: 0.8 GB
per 4,096 tokens. Here the rows go through in chunks: each chunk's logits are computed once, turned into the
loss and, in the same pass, into the gradient  p - onehot(t)  (p = softmax), which is multiplied straight into
the gradients of h and W_E. The backward pass then only scales what the forward pass already computed.

With `compute_dtype=torch.bfloat16` the three matrix products run in bfloat16 (on CPUs with AMX, several times
faster than float32), and so does every element-wise step over a chunk's logits: the logits, their shifted exp
and the softmax gradient p - onehot(t) are bfloat16 (mixed-dtype element-wise ops over the chunk were 20-40x
slower on CPUs). The exp-sum is accumulated in float32 by torch's reduction but stored in bfloat16, so it is
rounded once (relative error at most 2^-8, i.e. at most 0.004 nats in a row's loss); its log, the row maximum and
the target logit are then added in float32, and the gradients of h and W_E are accumulated in float32.
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK_ROWS = 256  # CPUs: a chunk's logits stay in cache
CUDA_CHUNK_ROWS = 8192  # GPUs: fewer, larger kernels (a chunk's bfloat16 logits are 0.8 GB)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        compute_dtype: torch.dtype,
        chunk_rows: int,
        with_grad: bool,
    ) -> torch.Tensor:
        n_rows, d_model = hidden.shape
        d_vocab = weight.shape[0]
        device = hidden.device
        with torch.autocast(device.type, enabled=False):
            h = hidden.detach().to(compute_dtype)
            w = weight.detach().to(compute_dtype)
            logits = torch.empty(min(chunk_rows, n_rows), d_vocab, dtype=compute_dtype, device=device)
            loss_sum = torch.zeros((), dtype=torch.float32, device=device)
            if with_grad:
                grad_h = torch.empty(n_rows, d_model, dtype=torch.float32, device=device)
                grad_w = torch.zeros(d_vocab, d_model, dtype=torch.float32, device=device)
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                h_c, t_c = h[start:stop], targets[start:stop, None]
                z = logits[: stop - start]
                torch.mm(h_c, w.T, out=z)
                # loss_i = log sum_v exp(z_iv) - z_i,t: one exp pass, shifted by the row maximum. Every step stays in
                # the compute dtype: on CPUs, mixed-dtype element-wise ops and bfloat16 scatters convert the whole
                # chunk (20-40x slower); a bfloat16 sum accumulates in float32 and rounds once at the end.
                row_max = z.amax(dim=1, keepdim=True)
                target_logit = z.gather(1, t_c)
                z.sub_(row_max).exp_()
                exp_sum = z.sum(dim=1, keepdim=True)
                loss_sum += (row_max.float() + exp_sum.float().log() - target_logit.float()).sum()
                if not with_grad:
                    continue
                # d loss / d logits = (softmax - onehot(t)) / n, formed in place over the chunk's logits
                z.mul_((exp_sum.float() * n_rows).reciprocal_().to(compute_dtype))
                rows = torch.arange(stop - start, device=device)
                z[rows, t_c[:, 0]] -= 1.0 / n_rows
                if compute_dtype == grad_h.dtype:
                    torch.mm(z, w, out=grad_h[start:stop])
                    grad_w.addmm_(z.T, h_c)
                else:  # low-precision products, accumulated in float32
                    grad_h[start:stop] = z @ w
                    grad_w += z.T @ h_c
        if with_grad:
            ctx.save_for_backward(grad_h, grad_w)
            ctx.dtypes = (hidden.dtype, weight.dtype)
        return loss_sum / n_rows

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        hidden_dtype, weight_dtype = ctx.dtypes
        return (grad_h * grad_loss).to(hidden_dtype), (grad_w * grad_loss).to(weight_dtype), None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    compute_dtype: torch.dtype = torch.float32,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> torch.Tensor:
    """Mean cross-entropy of `targets` under the logits `hidden @ weight.T`, without materialising them.

    hidden: (..., d_model); weight: (d_vocab, d_model); targets: (...) token ids. Equals
    `F.cross_entropy(hidden @ weight.T, targets)` (to float rounding) and has the same gradients.
    """
    flat = hidden.reshape(-1, hidden.shape[-1])
    flat_targets = targets.reshape(-1).long()
    if flat.shape[0] != flat_targets.shape[0]:
        raise ValueError(f"{flat.shape[0]} hidden rows but {flat_targets.shape[0]} targets")
    with_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(flat, weight, flat_targets, compute_dtype, chunk_rows, with_grad)
