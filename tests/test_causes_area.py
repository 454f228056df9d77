"""The causes area end to end: `gpt2atlas causes` on the shipped mini (findings.json ranks its induction head
first, the figures are written), bad input as one `error:` line, and the report's causes section."""

from __future__ import annotations

import json

import pytest

from gpt2atlas.areas.causes import ANSWER, CLEAN, CORRUPTED, OTHER
from gpt2atlas.cli.main import main

PAIR = ["--model", "mini", "--prompt", CLEAN, "--no-png"]


def test_the_command_ranks_minis_induction_head_first(tmp_path, capsys):
    code = main(["causes", *PAIR, "--corrupted", CORRUPTED, "--answer", ANSWER, "--other", OTHER,
                 "--sites", "head_out", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "causes"
    found = json.loads((folder / "findings.json").read_text())
    assert found["built_in_pair"] is False
    assert (found["pair"]["answer_token"], found["pair"]["other_token"]) == (ANSWER, OTHER)
    assert found["pair"]["clean_metric"] > 5 > 0 > found["pair"]["corrupted_metric"]
    (sweep,) = found["sweeps"]
    assert sweep["site"] == "head_out" and len(sweep["values"]) == 2 and len(sweep["values"][0]) == 4
    ranking = sweep["ranking"]
    assert ranking["top"] == "L1H3" and ranking["top_value"] > 0.75
    assert ranking["runner_up_value"] < 0.3 and ranking["median"] < 0.1
    assert found["estimates"][0]["correlation"] > 0.95  # attribution patching agrees on heads here
    dla = found["attribution"]
    assert abs(sum(dla["values"]) - dla["total"]) < 1e-3 and dla["total"] == pytest.approx(
        found["pair"]["clean_metric"], abs=1e-3
    )
    written = {p.name for p in folder.iterdir()}
    assert {"dla.html", "patch_head_out.html", "attribution_head_out.html"} <= written


def test_without_corrupted_the_built_in_pair_is_used(tmp_path, capsys):
    prompt = "    self.assertEqual(widget.colour, expected_colour)"
    code = main(["causes", "--model", "mini", "--prompt", prompt, "--sites", "head_out", "--no-png",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    found = json.loads((tmp_path / "causes" / "findings.json").read_text())
    clean, corrupted = found["pair"]["clean_tokens"], found["pair"]["corrupted_tokens"]
    n = (len(clean) + 1) // 2  # the prompt's tokens t, then t without its last: 2n - 1
    assert found["built_in_pair"] is True and len(corrupted) == len(clean) == 2 * n - 1
    assert clean[n:] == clean[: n - 1] == corrupted[n:] and corrupted[:n] != clean[:n]
    assert found["pair"]["answer_token"] == clean[n - 1] == ")"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corrupted", "short"], "clean has 33, corrupted has 1"),
        (["--corrupted", CORRUPTED, "--answer", "colourful"], "--answer 'colourful' is not a single token"),
        (["--corrupted", CLEAN], "clean and corrupted are the same tokens"),
        (["--corrupted", CORRUPTED, "--position", "40"], "--position 40 is out of range: the prompt has 33 tokens"),
        (["--corrupted", CORRUPTED, "--sites", "resid_post"], "resid_post is not a patching site"),
        (["--data", "corpus.txt", "--ablation-tokens", "0"], "--ablation-tokens 0 must be at least 1"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, capsys, args, message):
    assert main(["causes", *PAIR, *args, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err


def test_the_report_shows_dla_and_one_sweep(tmp_path):
    from gpt2atlas import load_model
    from gpt2atlas.areas.causes import SPEC
    from gpt2atlas.areas.spec import ReportContext
    from gpt2atlas.report.sections import AnalysisSection

    (part,) = AnalysisSection(SPEC)(ReportContext(load_model("mini"), ["ignored by this section"], quick=True))
    assert list(part.figures) == ["dla", "patch_head_out", "attribution_head_out"]
    assert set(part.captions) == set(part.figures)
    head = next(s for s in part.reading if s.startswith("Patching heads"))
    assert head.startswith("Patching heads (head_out): L1H3 restores 0.")
    assert "the median head restores" in head and "no other more than" in head
    assert any("random directions of the unembedding space" in s for s in part.reading)


def test_data_ablates_every_head_and_mlp(tmp_path, capsys, monkeypatch):
    """256 tokens: two windows; the loss over the vocabulary, 21 times, is most of the time."""
    monkeypatch.setenv("GPT2ATLAS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"def f{i}(x):\n    return x * {i} + {i * i}  # line {i}" for i in range(200)))
    code = main(["causes", *PAIR, "--corrupted", CORRUPTED, "--sites", "head_out", "--data", str(corpus),
                 "--ablation-tokens", "256", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "causes"
    ablation = json.loads((folder / "findings.json").read_text())["ablation"]
    assert ablation["tokens"] == 256 and ablation["data"] == str(corpus)
    rows = {row["component"]: row for row in ablation["components"]}
    heads = [f"L{layer}H{head}" for layer in range(2) for head in range(4)]
    assert sorted(rows) == sorted([*heads, "L0.mlp", "L1.mlp"])
    assert all(set(row) == {"component", "zero", "mean"} for row in rows.values())
    for kind in ("zero", "mean"):  # mini's first MLP (its extended embedding) costs more than any head
        assert rows["L0.mlp"][kind] > 2 > max(rows[h][kind] for h in heads)
        assert ablation[f"{kind}_ranking"]["top"] == "L0.mlp"
    assert "ablation.html" in {p.name for p in folder.iterdir()}


def test_missing_data_is_one_error_line(tmp_path, capsys):
    args = ["--corrupted", CORRUPTED, "--sites", "head_out", "--data", str(tmp_path / "missing.txt")]
    assert main(["causes", *PAIR, *args, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "missing.txt" in err, err


def test_the_ablation_sentence_names_the_costliest_against_the_rest():
    import torch

    from gpt2atlas.analysis.causes.findings import AblationFindings, ComponentAblation, rank
    from gpt2atlas.viz.readings.causes import ablation_sentence

    names = ["L0H0", "L0H1", "L0H2", "L0.mlp"]
    zero, mean = torch.tensor([0.2, 0.3, 0.9, 7.5]), torch.tensor([0.1, 0.2, 0.8, 3.0])
    found = AblationFindings(
        data="python-stdlib", tokens=256, windows=2, context=128, base_loss=2.5,
        components=[ComponentAblation(n, float(z), float(m)) for n, z, m in zip(names, zero, mean, strict=True)],
        zero_ranking=rank(names, zero), mean_ranking=rank(names, mean), definition="",
    )  # fmt: skip
    sentence = ablation_sentence(found)
    assert "256 tokens of python-stdlib (loss 2.5 nats per token)" in sentence
    assert "setting L0.mlp's output to zero costs the most, 7.5 nats per token" in sentence
    assert "the median component costs 0.3, and no other more than 0.9 (L0H2)" in sentence
    assert "Set to its mean instead, L0.mlp costs the most, 3; the median 0.2, the runner-up 0.8 (L0H2)." in sentence
