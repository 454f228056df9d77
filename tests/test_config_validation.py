"""A model config is checked field by field before anything is built: a bad value is one line naming the
field and its value, from Python (InputError) and from the command line (a config.json in a --model folder)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from gpt2atlas.cli.main import main
from gpt2atlas.errors import CheckpointError, InputError
from gpt2atlas.model import GPT2Config
from gpt2atlas.model.loading import load_model

SHAPE = dict(n_layer=2, n_head=4, d_model=64, n_ctx=128)
BAD_FIELDS = [
    ("n_layer", 0),
    ("n_layer", -1),
    ("n_layer", 2.5),
    ("n_head", 0),
    ("d_model", 0),
    ("d_model", -64),
    ("n_ctx", 0),
    ("d_vocab", 0),
    ("d_mlp", -1),
    ("layer_norm_eps", 0.0),
    ("layer_norm_eps", -1e-5),
    ("layer_norm_eps", math.nan),
    ("layer_norm_eps", math.inf),
    ("layer_norm_eps", "1e-5"),
    ("scale_attn_by_inverse_layer_idx", "yes"),
]


@pytest.mark.parametrize("field, value", BAD_FIELDS)
def test_python_names_the_field_and_its_value(field, value):
    with pytest.raises(InputError) as caught:
        GPT2Config(**{**SHAPE, field: value})
    assert str(caught.value).startswith(f"{field}={value!r} must be")
    assert caught.value.arguments == (field,)


def test_d_model_must_split_into_the_heads():
    with pytest.raises(InputError, match=r"d_model=64 is not divisible by n_head=5: d_model must be a multiple"):
        GPT2Config(**{**SHAPE, "n_head": 5})


def test_good_configs_still_build():
    assert GPT2Config(**SHAPE).d_mlp == 256 and GPT2Config(**SHAPE, d_mlp=100).d_mlp == 100
    assert GPT2Config(**SHAPE, d_vocab=1).d_vocab == 1


# config.json keys (Hugging Face names) and a nonsense value for each
BAD_JSON = [
    ("n_layer", 0),
    ("n_layer", "two"),
    ("n_layer", None),
    ("n_head", -4),
    ("n_head", 4.5),
    ("n_embd", 0),
    ("n_embd", True),
    ("n_positions", 0),
    ("vocab_size", 0),
    ("vocab_size", "50257"),
    ("n_inner", -1),
    ("layer_norm_epsilon", 0),
    ("layer_norm_epsilon", "tiny"),
    ("scale_attn_by_inverse_layer_idx", "false"),
    ("reorder_and_upcast_attn", 1),
]


@pytest.mark.parametrize("key, value", BAD_JSON)
def test_a_config_json_with_a_nonsense_value_is_one_line_naming_the_key(key, value, tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, key: value}))
    expected = f"{folder / 'config.json'} sets {key}={value!r}: GPT-2's"
    with pytest.raises(CheckpointError) as caught:
        load_model(folder)
    assert str(caught.value).startswith(expected)
    assert main(["info", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1, err
    assert "unexpected" not in err


def test_a_config_json_that_is_not_an_object_or_splits_no_heads(tiny_checkpoint, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds a list, not a JSON object"):
        load_model(folder)
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_head": 3}))
    with pytest.raises(CheckpointError, match="d_model=64 is not divisible by n_head=3"):
        load_model(folder)


def test_a_config_json_with_far_more_layers_than_weights_is_refused_before_building(tiny_checkpoint, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_layer": 10**9}))
    with pytest.raises(CheckpointError, match=r"has n_layer=1000000000, but .* holds 2 blocks"):
        load_model(folder)
