"""Hook names, built and read in one place, exactly as TransformerLens writes them.

    act_name("resid_pre", 3)  -> "blocks.3.hook_resid_pre"
    act_name("pattern", 3)    -> "blocks.3.attn.hook_pattern"
    act_name("post", 0)       -> "blocks.0.mlp.hook_post"
    act_name("embed")         -> "hook_embed"
    act_name("result", 3)     -> "blocks.3.attn.hook_result"   (opt-in: computed only when hooked by name)
    parse_act_name("blocks.3.attn.hook_pattern") -> ("pattern", 3)

The short names are TransformerLens's (`utils.get_act_name`), so code carries over; `module_name` names the
modules inside a block (`blocks.3.ln1`), whose parameters and hooks live under that path.
"""

from __future__ import annotations

# short name -> where the hook sits inside a block (None: outside the blocks)
_IN_BLOCK: dict[str, str] = {
    "resid_pre": "hook_resid_pre",
    "attn_out": "hook_attn_out",
    "resid_mid": "hook_resid_mid",
    "mlp_out": "hook_mlp_out",
    "resid_post": "hook_resid_post",
    "q": "attn.hook_q",
    "k": "attn.hook_k",
    "v": "attn.hook_v",
    "attn_scores": "attn.hook_attn_scores",
    "pattern": "attn.hook_pattern",
    "z": "attn.hook_z",
    "result": "attn.hook_result",
    "pre": "mlp.hook_pre",
    "post": "mlp.hook_post",
    "ln1_scale": "ln1.hook_scale",
    "ln1_normalized": "ln1.hook_normalized",
    "ln2_scale": "ln2.hook_scale",
    "ln2_normalized": "ln2.hook_normalized",
}
_OUTSIDE: dict[str, str] = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "ln_final_scale": "ln_final.hook_scale",
    "ln_final_normalized": "ln_final.hook_normalized",
    "unembed_in": "unembed.hook_in",
    "logits": "unembed.hook_out",
}
_BY_SUFFIX = {suffix: short for short, suffix in _IN_BLOCK.items()}
_BY_NAME = {name: short for short, name in _OUTSIDE.items()}
BLOCK_PARTS = ("ln1", "attn", "ln2", "mlp")
# computed only when hooked by name, so left out of "every activation" (TransformerLens: `use_attn_result`)
OPT_IN = ("result",)


def act_name(kind: str, layer: int | None = None) -> str:
    """The full hook name of activation `kind` (a short name, above) in block `layer`."""
    if kind in _IN_BLOCK:
        if layer is None:
            raise ValueError(f"'{kind}' is inside a block: give its layer")
        return f"blocks.{layer}.{_IN_BLOCK[kind]}"
    if kind in _OUTSIDE:
        if layer is not None:
            raise ValueError(f"'{kind}' is not inside a block: give no layer")
        return _OUTSIDE[kind]
    raise ValueError(f"unknown activation '{kind}': use one of {', '.join([*_IN_BLOCK, *_OUTSIDE])}")


def parse_act_name(name: str) -> tuple[str, int | None]:
    """(short name, layer) of a full hook name; the inverse of `act_name`."""
    if name in _BY_NAME:
        return _BY_NAME[name], None
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] in _BY_SUFFIX:
        return _BY_SUFFIX[parts[2]], int(parts[1])
    raise ValueError(f"'{name}' is not a hook name of GPT-2")


def is_opt_in(name: str) -> bool:
    """Whether hook `name` is one that only a hook asking for it by name computes (each head's result)."""
    parts = name.split(".", 2)
    return len(parts) == 3 and parts[0] == "blocks" and _BY_SUFFIX.get(parts[2]) in OPT_IN


def module_name(layer: int, part: str) -> str:
    """The path of a module inside block `layer`: part is ln1, attn, ln2 or mlp."""
    if part not in BLOCK_PARTS:
        raise ValueError(f"unknown block part '{part}': use one of {', '.join(BLOCK_PARTS)}")
    return f"blocks.{layer}.{part}"


def residual_names(n_layer: int) -> list[str]:
    """The residual stream before block 0 and after every block: n_layer + 1 names."""
    return [act_name("resid_pre", 0)] + [act_name("resid_post", layer) for layer in range(n_layer)]
