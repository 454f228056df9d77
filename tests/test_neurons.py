"""MLP neurons: a planted 'cat -> dog' neuron is found, and every number equals a direct computation."""

import json

import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.analysis import neurons
from gpt2atlas.areas import figures_of
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError

LAYER, NEURON = 1, 77
PROMPT = "My cat and your cat met a bird"


def planted_model():
    """Neuron 77 of layer 1 reads the ' cat' embedding (key) and writes the ' dog' embedding (value).

    The ' cat' embedding is made 10x longer so that it, not the random attention outputs, dominates its residual."""
    model = random_model(TINY, seed=3)
    tok = model.tokenizer
    cat, dog = tok.encode(" cat")[0], tok.encode(" dog")[0]
    mlp = model.blocks[LAYER].mlp
    with torch.no_grad():
        model.W_E[cat] *= 10.0
        key = model.W_E[cat] - model.W_E[cat].mean()
        mlp.W_in[:, NEURON] = 4.0 * key / key.norm()
        mlp.b_in[NEURON] = -8.0
        value = model.W_E[dog] - (model.W_E[dog] @ key) / (key @ key) * key  # orthogonal to the long ' cat'
        mlp.W_out[NEURON] = 3.0 * value
    return model, cat, dog


@pytest.fixture(scope="module")
def planted():
    model, cat, dog = planted_model()
    return model, cat, dog, neurons.analyze(model, PROMPT, extra_prompts=["a cat", "no pets here"])


def test_planted_neuron_is_chosen_and_fires_on_its_token(planted):
    model, cat, dog, result = planted
    chosen = result.findings.neuron
    assert (chosen.layer, chosen.neuron) == (LAYER, NEURON)
    top = chosen.top_tokens
    assert [t.token for t in top[:3]] == [" cat"] * 3  # two in the prompt, one in the first extra prompt
    assert {(t.prompt, t.position) for t in top[:3]} == {(0, 1), (0, 4), (1, 1)}
    assert top[0].activation > 1.0 and top[3].activation < 0.1
    assert chosen.promotes[0].token_id == dog and chosen.promotes[0].token == " dog"


def test_promotes_and_suppresses_equal_w_out_times_w_u(planted):
    model, _, _, result = planted
    chosen = result.findings.neuron
    direct = model.blocks[LAYER].mlp.W_out[NEURON] @ model.W_E.T
    up, down = direct.topk(10), direct.topk(10, largest=False)
    assert [r.token_id for r in chosen.promotes] == up.indices.tolist()
    assert [r.token_id for r in chosen.suppresses] == down.indices.tolist()
    assert [r.logit for r in chosen.promotes] == pytest.approx(up.values.tolist(), abs=1e-5)
    assert [r.logit for r in chosen.suppresses] == pytest.approx(down.values.tolist(), abs=1e-5)


def test_activation_statistics_equal_the_cache(planted):
    model, _, _, result = planted
    _, cache = model.run_with_cache(PROMPT, names=lambda n: n.endswith("mlp.hook_pre"))
    pre = torch.stack([cache[f"blocks.{l}.mlp.hook_pre"][0] for l in range(2)])
    post = torch.nn.functional.gelu(pre, approximate="tanh")
    assert result.findings.fraction_active_by_layer == pytest.approx((pre > 0).float().mean((1, 2)).tolist())
    for row in result.findings.top_neurons_by_token:
        best = row.neurons[0]
        p = row.position
        assert best.activation == pytest.approx(post[:, p].max().item(), abs=1e-5)
        assert post[best.layer, p, best.neuron] == pytest.approx(post[:, p].max().item(), abs=1e-5)
        assert len(row.neurons) == 5
    peak = post[LAYER, 1:, NEURON].max().item()
    strongest = result.findings.strongest_neurons[0]
    assert (strongest.layer, strongest.neuron) == (LAYER, NEURON)
    assert strongest.max_activation == pytest.approx(peak, abs=1e-5)


def test_user_choice_and_range_checks(tiny_model):
    result = neurons.analyze(tiny_model, "hello there", layer=0, neuron=5)
    assert result.findings.neuron.chosen_by == "user" and result.findings.neuron.neuron == 5
    in_layer = neurons.analyze(tiny_model, "hello there", layer=1).findings.neuron
    assert in_layer.layer == 1
    with pytest.raises(InputError, match="neuron=256 is out of range: each layer has 256 neurons"):
        neurons.analyze(tiny_model, "hello", layer=0, neuron=256)
    with pytest.raises(InputError, match="needs layer="):
        neurons.analyze(tiny_model, "hello", neuron=3)
    with pytest.raises(InputError, match="layer=5 is out of range"):
        neurons.analyze(tiny_model, "hello", layer=5)


def test_figures_are_escaped(tiny_model):
    figures = figures_of(neurons.analyze(tiny_model, "<img src=x onerror=alert(1)> & more"))
    assert set(figures) == {"tokens_by_layers", "tokens_by_neurons", "neuron_key_value", "fraction_active"}
    for fig in figures.values():
        assert "<img" not in fig.to_json()


def test_cli(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "neurons",
            "--model",
            str(tiny_checkpoint),
            "--prompt",
            "One two three",
            "--out",
            str(out),
            "--no-png",
            "--layer",
            "0",
            "--extra-prompt",
            "four five",
        ]
    )
    assert code == 0
    findings = json.loads((out / "neurons" / "findings.json").read_text())
    assert findings["neuron"]["layer"] == 0 and findings["prompts"] == ["One two three", "four five"]
    capsys.readouterr()
    code = main(["neurons", "--model", str(tiny_checkpoint), "--prompt", "x", "--out", str(out), "--layer", "2"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        "error: --layer 2 is out of range: this model has 2 layers (0..1)"
    ]
