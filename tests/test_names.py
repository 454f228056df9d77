"""Hook names come from one module (model/names.py), and it names every hook point the model has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import random_model
from gpt2atlas.model.names import act_name, module_name, parse_act_name, residual_names

SRC = Path(__file__).resolve().parents[1] / "src" / "gpt2atlas"


def test_every_hook_point_of_the_model_parses_and_is_rebuilt_exactly():
    model = random_model()
    names = model.hook_names()
    assert len(names) == 6 + 18 * model.cfg.n_layer  # 6 outside the blocks, 18 in each: names.py knows them all
    kinds = {}
    for name in names:
        kind, layer = parse_act_name(name)
        assert act_name(kind, layer) == name
        kinds.setdefault(kind, set()).add(layer)
    assert all(layers == set(range(model.cfg.n_layer)) for layers in kinds.values() if None not in layers)
    assert residual_names(2) == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]


def test_transformer_lens_spellings():
    assert act_name("pattern", 3) == "blocks.3.attn.hook_pattern"
    assert act_name("post", 0) == "blocks.0.mlp.hook_post"
    assert act_name("embed") == "hook_embed" and module_name(2, "ln1") == "blocks.2.ln1"
    for bad in (
        lambda: act_name("pattern"),
        lambda: act_name("embed", 0),
        lambda: act_name("resid"),
        lambda: parse_act_name("blocks.x.hook_resid_pre"),
        lambda: module_name(0, "ln3"),
    ):
        with pytest.raises(ValueError):
            bad()


def test_no_hook_name_is_built_by_hand_outside_names_py():
    hand_built = re.compile(r"""f["']blocks\.\{|["']hook_(resid|attn|mlp|embed|pos_embed)""")
    offenders = [
        f"{path.relative_to(SRC)}:{i}"
        for path in SRC.rglob("*.py")
        if path.name != "names.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if hand_built.search(line)
    ]
    assert offenders == []
