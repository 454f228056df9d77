"""Direct logit attribution: the final residual stream split into the parts that wrote it.

    x_L = embed + pos_embed + sum_l (sum_h z_lh W_O_h + b_O_l + mlp_out_l)
    logit difference = LN_final(x_L) . (W_U[:, answer] - W_U[:, other])
LayerNorm is applied linearly, as TransformerLens's `apply_ln_to_stack`: each part is centred and divided by the
real run's scale, then multiplied by the gain; ln_final's bias is a part of its own. The parts sum to the logit
(difference) exactly, up to float rounding.
"""

from __future__ import annotations

import torch

from gpt2atlas.analysis.causes.findings import DirectAttribution, RandomDirections, rank
from gpt2atlas.analysis.causes.inputs import AnswerPair, Token, block_of, check_position, token_id, tokens_of
from gpt2atlas.model.gpt2 import GPT2, ModelInput
from gpt2atlas.model.names import act_name

RANDOM_DIRECTIONS = 200
DEFINITION = (
    "part . LN_final applied linearly (centred, divided by the run's ln_final scale, times the gain) projected on "
    "W_U[:, answer] (minus W_U[:, other]); ln_final.bias . the same direction is its own part"
)


def part_names(model: GPT2) -> list[str]:
    """embed, pos_embed, per layer L{l}H{h}..., L{l}.attn_bias, L{l}.mlp, then ln_final.bias."""
    names = ["embed", "pos_embed"]
    for layer in range(model.cfg.n_layer):
        names += [f"L{layer}H{h}" for h in range(model.cfg.n_head)] + [f"L{layer}.attn_bias", f"L{layer}.mlp"]
    return [*names, "ln_final.bias"]


def residual_parts(model: GPT2, tokens: torch.Tensor, position: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The parts of the final residual stream at `position` (n_parts - 1, d_model; ln_final.bias aside), in
    part_names order, with the run's ln_final scale (1,) and logits (d_vocab,) there."""
    n_layer = model.cfg.n_layer
    embed, pos_embed, scale = act_name("embed"), act_name("pos_embed"), act_name("ln_final_scale")
    names = [embed, pos_embed, scale]
    names += [act_name(n, l) for l in range(n_layer) for n in ("z", "mlp_out")]
    logits, cache = model.run_with_cache(tokens, names=names)
    parts = [cache[embed][0, position], cache[pos_embed][0, position]]
    for layer in range(n_layer):
        block = block_of(model, layer)
        z = cache[act_name("z", layer)][0, position]  # (head, d_head)
        heads = torch.einsum("hd,hdm->hm", z, block.attn.W_O_per_head.detach())
        parts += [*heads, block.attn.b_O.detach(), cache[act_name("mlp_out", layer)][0, position]]
    return torch.stack(parts), cache[scale][0, position], logits[0, position]


def project(model: GPT2, parts: torch.Tensor, scale: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Parts (..., d_model) through ln_final applied linearly, onto directions (d_model, k): (..., k)."""
    centred = parts - parts.mean(dim=-1, keepdim=True)
    return (centred / scale * model.ln_final.w.detach()) @ directions


def _random_directions(model: GPT2, pair: AnswerPair, count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.cfg.d_vocab, (2, count), generator=generator).to(model.device)
    W_U = model.W_U.detach()
    directions = W_U[:, ids[0]] - W_U[:, ids[1]] if pair.other is not None else W_U[:, ids[0]]
    length = pair.direction(model).detach().norm()
    return directions / directions.norm(dim=0).clamp_min(1e-12) * length  # as long as the answer's direction


def direct_logit_attribution(
    model: GPT2,
    prompt: ModelInput,
    answer: Token | None = None,
    other: Token | None = None,
    position: int = -1,
    *,
    random_directions: int = RANDOM_DIRECTIONS,
    seed: int = 0,
) -> DirectAttribution:
    """Split the logit of `answer` (minus `other`'s) at `position` into the parts of the residual stream.

    `answer` defaults to the model's top prediction there; both take a token string (" Mary") or an id.
    """
    tokens = tokens_of(model, prompt)
    pos = check_position(position, tokens.shape[1])
    with torch.inference_mode():
        parts, scale, logits = residual_parts(model, tokens, pos)
        answer_id = token_id(model, answer, "answer") if answer is not None else int(logits.argmax())
        pair = AnswerPair(answer_id, token_id(model, other, "other") if other is not None else None)
        direction = pair.direction(model).detach()
        values = project(model, parts, scale, direction[:, None])[:, 0]
        values = torch.cat([values, (model.ln_final.b.detach() @ direction)[None]])
        total = pair.of_logits(logits[None, None])[0]
        random = project(model, parts, scale, _random_directions(model, pair, random_directions, seed)).abs()
        random = random.double().cpu()  # (part, direction)
        p95 = torch.quantile(random, 0.95, dim=1)
        p95_largest = float(torch.quantile(random.max(dim=0).values, 0.95))
    names = part_names(model)
    components = values[:-1].double().cpu()
    strings = model.tokenizer.to_str_tokens
    return DirectAttribution(
        tokens=strings(tokens[0].tolist()),
        position=pos,
        answer=pair.answer,
        answer_token=strings([pair.answer])[0],
        names=names,
        values=values.double().cpu().tolist(),
        total=float(total),
        ranking=rank(names[:-1], components, by="magnitude"),
        chance=RandomDirections(
            count=random_directions,
            seed=seed,
            definition="W_U columns of uniformly drawn tokens"
            + (" (differences of two)" if pair.other is not None else "")
            + ", each scaled to the length of the answer's direction",
            p95_by_part=p95.tolist(),
            p95_of_largest=p95_largest,
        ),
        above_chance=[n for n, v in zip(names[:-1], components.tolist(), strict=True) if abs(v) > p95_largest],
        definition=DEFINITION,
        other=pair.other,
        other_token=strings([pair.other])[0] if pair.other is not None else None,
    )
