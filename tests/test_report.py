"""`gpt2atlas report`: sections, numbers that match the findings, self-contained and escaped HTML, atomic writes,
Markdown + PNG, and readings that say what planted findings hold."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from gpt2atlas.analysis.base import AreaUnavailable
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas import area
from gpt2atlas.areas.journey import SPEC as JOURNEY
from gpt2atlas.areas.spec import ReportPart
from gpt2atlas.cli.main import main
from gpt2atlas.report import SECTION_KEYS, build_report, builder, sections
from gpt2atlas.viz.readings import first_stable_top1_layer, num, quoted

HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script> the end"
WORDS = "river stone lamp harbour winter garden engine letter market window violin ladder".split()


def write_texts(folder: Path, n: int = 30) -> Path:
    """Short texts of our own for the geometry section (faster than the default corpus)."""
    path = folder / "texts.txt"
    path.write_text(
        "\n".join(
            f"Note {i}: the {WORDS[i % 12]} near the {WORDS[(5 * i + 3) % 12]} was {i % 7 + 2} steps from the "
            f"{WORDS[(7 * i + 1) % 12]}, so we wrote it down again."
            for i in range(n)
        )
    )
    return path


def fast_args(folder: Path) -> list[str]:
    return [
        "--quick",
        "--texts",
        str(write_texts(folder)),
        "--max-texts",
        "30",
        "--max-new-tokens",
        "6",
        "--num-samples",
        "1",
    ]


def embedded_findings(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="gpt2atlas-findings">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report(tiny_checkpoint, tmp_path_factory) -> tuple[str, dict]:
    """The whole report of the tiny checkpoint, built once through the CLI with a hostile prompt."""
    folder = tmp_path_factory.mktemp("report")
    out = folder / "report.html"
    assert (
        main(["report", "--model", str(tiny_checkpoint), "--prompt", HOSTILE, "--out", str(out), *fast_args(folder)])
        == 0
    )
    text = out.read_text()
    return text, embedded_findings(text)


def test_every_section_is_present_with_a_table_of_contents(report):
    text, data = report
    assert list(data["sections"]) == list(SECTION_KEYS)
    for key in SECTION_KEYS:
        assert f'<section id="{key}"' in text
        assert f'<a href="#{key}">' in text
    for key in ("summary", "attention", "samples"):  # these exist in every installation
        assert data["sections"][key]["skipped"] is None, data["sections"][key]
    for section in data["sections"].values():  # a skipped section says why, in the page
        if section["skipped"]:
            assert html.escape(section["skipped"]) in text


def _unpacked_plotly_js(text: str) -> str:
    packed = re.findall(r'<script type="application/gzip-base64" id="plotly-js">([^<]*)</script>', text)
    assert len(packed) == 1  # plotly.js embedded exactly once
    return gzip.decompress(base64.b64decode(packed[0])).decode()


def test_self_contained_plotly_once_and_no_external_loads(report):
    text, _ = report
    assert _unpacked_plotly_js(text) == get_plotlyjs()
    assert text.count('class="plot"') >= 3
    ours = text  # (plotly.js, packed, names no URL a reader can see; unpacked it names map-tile URLs no figure uses)
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", ours, re.I)
    assert "<link" not in ours and "<iframe" not in ours and "http://" not in ours and "https://" not in ours
    assert "Content-Security-Policy" in text and "connect-src 'none'" in text


def test_hostile_prompt_is_escaped_everywhere(report):
    text, data = report
    assert data["provenance"]["prompts"] == [HOSTILE]
    without_plotly_js = re.sub(r'(id="plotly-js">)[^<]*', r"\1", text)
    for raw in ("<img src=x", "<script>alert", "onerror=alert(1)>"):
        assert raw not in without_plotly_js
    assert html.escape(HOSTILE) in text  # shown, as text
    # the only script elements are packed plotly.js, the packed figures, the findings JSON and the loader
    scripts = re.findall(r"<script\b[^>]*>", without_plotly_js)
    assert len(scripts) == 4
    assert [f["id"] for f in packed_figures(text)["figures"]] == re.findall(
        r'<div class="gpt2atlas-figure" id="([^"]+)"', text
    )


def packed_figures(text: str) -> dict:
    packed = re.findall(r'<script type="application/gzip-base64" id="gpt2atlas-figures">([^<]*)</script>', text)
    assert len(packed) == 1
    return json.loads(gzip.decompress(base64.b64decode(packed[0])))


def test_numbers_in_the_page_match_the_findings(report, tiny_model):
    text, data = report
    summary = data["sections"]["summary"]["parts"][0]
    assert summary["parameter_counts"]["total"] == sum(p.numel() for p in tiny_model.parameters())
    assert f"{summary['parameter_counts']['total']:,}" in text
    attention = data["sections"]["attention"]["parts"][0]
    best = max(attention["heads"], key=lambda r: r["prev_token"])
    assert html.escape(f"L{best['layer']}H{best['head']} ({num(best['prev_token'])})") in text
    sink = attention["attention_sink"]["by_layer"]
    assert f"{100 * sink[0]:.1f}% in layer 0" in text
    samples = data["sections"]["samples"]["parts"][0]
    probs = samples["token_probs"][0]
    assert f"mean probability of {num(sum(probs) / len(probs))}" in text
    for key in SECTION_KEYS:
        for part in data["sections"][key]["parts"]:
            assert part, f"section {key} kept no findings"


def test_provenance_hashes_the_weights_file(report, tiny_checkpoint):
    text, data = report
    weights = tiny_checkpoint / "model.safetensors"
    assert data["provenance"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert data["provenance"]["weights_sha256"] in text
    assert data["provenance"]["packages"]["torch"] and data["provenance"]["seed"] == 0
    assert re.match(r"\d{4}-\d\d-\d\dT", data["provenance"]["date"])


def test_markdown_with_png_folder(tiny_checkpoint, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("md")
    args = fast_args(tmp_path_factory.mktemp("texts"))
    out = tmp_path / "report.md"
    skip = [
        arg
        for key in SECTION_KEYS
        if key not in ("summary", "attention", "saliency", "samples")
        for arg in ("--skip", key)
    ]  # PNG export costs time: a few sections show it works
    assert (
        main(
            [
                "report",
                "--model",
                str(tiny_checkpoint),
                "--prompt",
                HOSTILE,
                "--out",
                str(out),
                "--format",
                "md",
                *skip,
                *args,
            ]
        )
        == 0
    )
    text = out.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "no figure in the Markdown"
    for image in images:
        png = (out.parent / image).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert sorted(p.name for p in (tmp_path / "report_files").glob("*.png")) == sorted(Path(i).name for i in images)
    assert "<script>" not in text and "<img src=x" not in text
    assert json.loads((tmp_path / "report_files" / "findings.json").read_text())["provenance"]["prompts"] == [HOSTILE]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failing_or_missing_analysis_costs_only_its_section(tiny_model, tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("planted failure")

    def unavailable(model, prompt):
        raise AreaUnavailable("gpt2atlas.no_such_module is not available in this installation")

    journey = replace(JOURNEY, kind=PerPrompt(unavailable), report=ReportPart())
    specs = (
        sections.SECTIONS[0],
        sections.SectionSpec("attention", "Attention", broken),
        sections.SectionSpec("journey", "Journey", sections.AnalysisSection(journey)),
    )
    monkeypatch.setattr(builder, "SECTIONS", specs)
    out, result = build_report(tiny_model, tmp_path / "r.html", prompts=["hello"], progress=False)
    by_key = {s.key: s for s in result.sections}
    assert by_key["summary"].skipped is None
    assert "RuntimeError: planted failure" in by_key["attention"].skipped
    assert "not available" in by_key["journey"].skipped
    assert [s.key for s in result.sections if s.failed] == ["attention"]  # a missing module is not a failure
    assert "planted failure" in out.read_text()


def _report_with_attention_raising(error, tiny_checkpoint, tmp_path, monkeypatch, capsys) -> tuple[int, Path, str]:
    """`gpt2atlas report` with only the summary and attention sections, attention's analysis raising `error`."""
    from gpt2atlas.areas.attention import SPEC

    def raising(*args, **kwargs):
        raise error

    monkeypatch.setitem(SPEC.__dict__, "kind", PerPrompt(raising))  # the spec holds its analysis by reference
    out = tmp_path / "r.html"
    skip = [arg for key in SECTION_KEYS if key not in ("summary", "attention") for arg in ("--skip", key)]
    code = main(["report", "--model", str(tiny_checkpoint), "--out", str(out), *skip])
    return code, out, capsys.readouterr().err


def test_an_unexpected_failure_still_writes_the_page_and_exits_non_zero(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    error = RuntimeError("planted failure")
    code, out, err = _report_with_attention_raising(error, tiny_checkpoint, tmp_path, monkeypatch, capsys)
    assert code == 3
    assert "planted failure" in out.read_text() and "Configuration" in out.read_text()
    last = err.strip().splitlines()[-1]
    assert last == f"error: 1 section(s) failed: attention (the rest of the report is in {out})"


def test_a_missing_optional_extra_is_only_a_skipped_section(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    from gpt2atlas.analysis.base import AreaUnavailable

    error = AreaUnavailable("needs the planted extra")
    code, out, err = _report_with_attention_raising(error, tiny_checkpoint, tmp_path, monkeypatch, capsys)
    assert code == 0
    assert "needs the planted extra" in out.read_text()
    assert "skipped attention: needs the planted extra" in err and "failed" not in err


def _interrupt(ctx):
    raise KeyboardInterrupt


def _fail_rendering(report):
    raise RuntimeError("renderer broke")


def _fail_renaming(src, dst):
    raise OSError("disk full")


@pytest.mark.parametrize(
    "patch",
    [
        ("SECTIONS", (sections.SectionSpec("summary", "Summary", _interrupt),)),  # Ctrl-C while analysing
        ("render_html", _fail_rendering),  # an error while writing the HTML
        ("os.replace", _fail_renaming),  # an error at the very last step
    ],
)
def test_write_is_atomic_on_failure_and_interrupt(tiny_model, tmp_path, monkeypatch, patch):
    out = tmp_path / "report.html"
    out.write_text("the previous report")
    target, replacement = patch
    monkeypatch.setattr(
        builder.os if target == "os.replace" else builder, "replace" if target == "os.replace" else target, replacement
    )
    with pytest.raises((KeyboardInterrupt, RuntimeError, OSError)):
        build_report(
            tiny_model, out, prompts=["hello"], skip=[k for k in SECTION_KEYS if k != "summary"], progress=False
        )
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "   "], "prompt is empty"),
        (["--prompt", "word " * 200], "more than the model's context"),
        (["--skip", "nonsense"], "--skip 'nonsense' is not a section"),
        (["--format", "pdf"], "--format 'pdf' is not a format: use html or md"),
        (["--projections", "pca,mds"], "--projections 'pca,mds': unknown projection 'mds'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_checkpoint, tmp_path, capsys, args, message):
    out = tmp_path / "r.html"
    assert main(["report", "--model", str(tiny_checkpoint), "--out", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_model_is_an_error(tmp_path, capsys):
    assert main(["report", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html")]) == 1
    assert "error:" in capsys.readouterr().err


# ----- readings from planted findings -----------------------------------------------------------------------
def test_embeddings_reading_names_the_offset_dims_and_periods():
    from gpt2atlas.analysis import embedding_findings as E

    findings = E.EmbeddingFindings(
        model=E.EmbeddedModel(source="planted", d_model=768, d_vocab=50257, n_ctx=1024),
        token_embedding=E.TokenEmbedding(
            offset_dims=[E.OffsetDim(dim=138, mean=-0.31, z=-14.2), E.OffsetDim(dim=378, mean=0.2, z=9.1)],
            offset_z_chance=4.2,
            # no rows at the ends: the reading names the min_token and max_token
            norm=E.TokenNorm(3.9, 0.4, 1.5, 6.2, " the", "SPONSORED", 262, 37190, smallest=[], largest=[]),
            pca_explained_variance_ratio=[0.05, 0.02],
            pca_first_share_chance=0.003,
            pca_components_for_90pct=500,
            local_pca=E.LocalPCA(100, 0, None, None, None, None),
        ),
        position_embedding=E.PositionEmbedding(
            active_dims=[E.ActiveDim(dim=7, std=0.9)],
            periodicity=[E.PeriodicDim(dim=7, period=32.0, power_share=0.8, smoothness=0.1)],
            period_share_chance=None,
            smoothness=0.1,
            pca_explained_variance_ratio=[0.5],
            pca_components_for_90pct=3,
            norm=E.PositionNorm(3.0, 0.1, 2.9, 3.5, 5, 0, smallest=[], largest=[]),
            position0_norm_z=5.0,
            norm_outliers=[],
        ),
        neighbours_of="default",
        neighbours=[],
        neighbour_cosine_chance=0.2,
        dim_pairs=[[138, 378]],
        projection_sample=E.ProjectionSample(size=10, tsne_umap_size=0, seed=0, methods=["pca"], labelled_tokens=0),
    )
    text = " ".join(area("embeddings").read(findings))
    assert "dim 138 (mean -0.31, z = -14.2)" in text and "dim 378" in text
    assert "dim 7 every 32 positions (80.0%" in text and "smooth curves" in text
    assert "' the'" in text and "'SPONSORED'" in text


def test_residual_and_geometry_readings(tiny_model):
    from gpt2atlas.analysis import residual as R
    from gpt2atlas.geometry.analysis import analyze as geometry

    measured = R.analyze(tiny_model, "The cat sat on the mat").findings
    planted = replace(
        measured, norm_by_layer=[2.0, 10.0, 60.0], outlier_dims=[R.OutlierDim(447, 3000.0, 250.0, [1, 2])]
    )
    residual = area("residual").read(planted)
    assert "30×" in residual[0] and any("dim 447 reaches |3,000|, 250× the median" in s for s in residual)
    texts = [f"Text number {i} says something about the weather and the sea." for i in range(40)]
    found = geometry(tiny_model, texts=texts, all_tokens_budget=200, control=False, progress=False).findings
    rows = [r for r in found.layers if r.substep == "resid" and r.cloud == "last_token"][:3]
    rows = [
        replace(r, layer=i, twonn_id=v, twonn_err=0.5, pca_id_90=10 + i, mean_cosine=0.1 * i)
        for i, (r, v) in enumerate(zip(rows, [8.0, 21.0, 14.0]))
    ]
    corpus = replace(found.corpus, description="stdlib docstrings")
    text = " ".join(area("geometry").read(replace(found, layers=rows, corpus=corpus, n_texts=200)))
    assert "peaks at 21 ± 0.5 at the output of block 0" in text and "stdlib docstrings, 200 texts" in text
    assert "highest at the output of block 1" in text


def test_journey_reading_finds_the_layer_where_the_prediction_settles(tiny_model):
    from gpt2atlas.analysis import journey

    ranks = [[5, 3, 9], [0, 2, 1], [1, 0, 0], [0, 0, 0]]
    assert [first_stable_top1_layer(ranks, p) for p in range(3)] == [3, 2, 2]
    findings = replace(
        journey.analyze(tiny_model, "a b c", projections=("pca",)).findings,
        layers=["embed", "block 0", "block 1", "block 2"],
        tokens=["a", "b", "c"],
        top1=[["x"] * 3] * 4,
        final_token_rank=ranks,
        kl_to_final=[[4.0, 4.0, 4.0], [3.0, 3.0, 3.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
        kl_to_final_mean=[4.0, 3.0, 1.0, 0.0],
    )
    text = " ".join(area("journey").read(findings))
    assert "top-1 from block 1 on" in text and "halves by block 1" in text


def test_findings_a_reading_does_not_know_raise_instead_of_falling_back():
    with pytest.raises(AttributeError):
        area("neurons").read({"threshold": 0.5, "note": "x"})


def test_model_wide_figures_and_sentences_are_shown_once_for_several_prompts(tiny_model, tmp_path):
    prompts = ["The cat sat on the mat.", "One, two, three, four, five."]
    keep = ("embeddings", "layernorm", "attention")
    out, result = build_report(
        tiny_model,
        tmp_path / "r.html",
        prompts=prompts,
        skip=[k for k in SECTION_KEYS if k not in keep],
        quick=True,
        progress=False,
    )
    by_key = {s.key: s for s in result.sections}
    for key in ("embeddings", "layernorm"):  # both have figures that do not depend on the prompt
        shared, *per_prompt = by_key[key].parts
        assert shared.shared and shared.title == sections.SHARED_TITLE and shared.figures
        assert [p.title for p in per_prompt] == ["Prompt 1", "Prompt 2"]
        for part in per_prompt:
            assert not set(part.figures) & set(shared.figures)
            assert not set(part.reading) & set(shared.reading)
    # what differs between prompts stays with each prompt: the attention patterns are drawn for both
    attention = [p for p in by_key["attention"].parts if not p.shared]
    assert all("head_pattern" in p.figures for p in attention)
    data = embedded_findings(out.read_text())
    for key in keep:  # findings.json keeps one entry per prompt, as before
        assert len(data["sections"][key]["parts"]) == len(prompts)
    text = out.read_text()
    for sentence in by_key["embeddings"].parts[0].reading:
        assert text.count(html.escape(sentence)) == 1


def test_figures_travel_narrowed_to_float32(tiny_model, tmp_path):
    out, result = build_report(
        tiny_model, tmp_path / "r.html", skip=[k for k in SECTION_KEYS if k != "layernorm"], quick=True, progress=False
    )
    figures = packed_figures(out.read_text())["figures"]
    dtypes = re.findall(r'"dtype": "(\w+)"', json.dumps(figures))
    assert dtypes and "f8" not in dtypes and "i8" not in dtypes
    drawn = {f["id"].split("-", 3)[-1]: f for f in figures}
    original = result.sections[0].parts[0].figures["gamma_per_dim"].data[0].y
    shipped = drawn["gamma_per_dim"]["data"][0]["y"]
    values = np.frombuffer(base64.b64decode(shipped["bdata"]), dtype="<f4")
    assert np.allclose(values, original, rtol=1e-6)


def test_every_figure_has_a_written_caption_not_its_key(report):
    from gpt2atlas.areas import AREAS
    from gpt2atlas.viz.dynamics import FIGURES

    text, _ = report
    names = re.findall(r'<figure class="plot" data-name="([^"]+)">', text)
    captioned = {name for spec in AREAS for name in spec.figures.captions} | set(FIGURES.captions)
    assert names and [n for n in names if n not in captioned] == []
    for caption in re.findall(r"<figcaption>(.*?)</figcaption>", text):
        assert "_" not in caption and caption[0].isupper() and caption.endswith(".")


def test_the_prompt_tokens_nearest_neighbours_are_shown_as_a_table(report):
    text, data = report
    embeddings = data["sections"]["embeddings"]["parts"][0]
    if data["sections"]["embeddings"]["skipped"]:
        pytest.skip("embeddings section skipped")
    assert "<caption>Nearest tokens in the token embedding, by cosine similarity" in text
    first = embeddings["neighbours"][0]
    row = [quoted(first["token"])] + [f"{quoted(n['token'])} {n['cosine']:.2f}" for n in first["neighbours"][:6]]
    assert "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" in text


def test_each_generation_step_shows_the_likeliest_tokens(report):
    text, data = report
    samples = data["sections"]["samples"]["parts"][0]
    first = samples["alternatives"][0]
    assert len(first) == len(samples["token_probs"][0]) and all(len(step) == 5 for step in first)
    assert "<caption>The first sample, step by step" in text
    step = first[0]
    cells = [f"{quoted(a['token'])} {num(a['prob'])}" for a in step]
    assert "".join(f"<td>{html.escape(c)}</td>" for c in cells) in text
    assert html.escape(f"likeliest: {step[0]['token']!r} {num(step[0]['prob'])}", quote=True) in text
