"""The atlas views on a made-up atlas (tests/atlas_factory.py): readings against chance, escaping of hostile tokens
in every HTML piece, the report's MLP section with an atlas, and the dashboard's "Neuron atlas" view."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from atlas_factory import DOT, HOSTILE_TEXT, PLANTED_WINDOWS, ROCKS, TAG, fake_atlas, fake_window
from gpt2atlas.app.state import MODEL_ENV
from gpt2atlas.atlas.reader import MemoryAtlas, check_model
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.report import build_report
from gpt2atlas.report.html import _table
from gpt2atlas.report.markdown import render_markdown
from gpt2atlas.viz import atlas as views
from gpt2atlas.viz.readings.atlas import binomial_tail, read_head_entry, read_neuron_entry, uniform_share
from gpt2atlas.viz.readings.words import pct

APP = Path(__file__).parents[1] / "src" / "gpt2atlas" / "app" / "streamlit_app.py"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the page's text (entities decoded)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def with_class(self, cls: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if cls in (a.get("class") or "").split()]


@pytest.fixture(scope="module")
def atlas() -> MemoryAtlas:
    return fake_atlas()


# ----- readings ---------------------------------------------------------------------------------------------------
def test_binomial_tail_is_the_exact_sum():
    assert binomial_tail(2, 3, 0.5) == pytest.approx(0.5)  # P(X >= 2) = (3 + 1) / 8
    assert binomial_tail(20, 20, 0.04) == pytest.approx(0.04**20, rel=1e-9)
    assert binomial_tail(0, 5, 0.3) == 1.0 and binomial_tail(1, 5, 0.0) == 0.0
    brute = sum(math.comb(10, i) * 0.2**i * 0.8 ** (10 - i) for i in range(4, 11))
    assert binomial_tail(4, 10, 0.2) == pytest.approx(brute, rel=1e-12)
    assert uniform_share(2) == pytest.approx((1 + 1 / 2) / 2)


def test_the_reading_names_the_planted_token_and_its_chance_share(atlas):
    entry = atlas.neuron(1, 5)
    sentences = read_neuron_entry(entry, views.decode_token, atlas.token_count)
    first = sentences[0]
    assert first.startswith(f"L1N5's {PLANTED_WINDOWS} top examples all sit on '.', which is 4.0% of the corpus")
    assert "would hold 0.8 of it on average" in first  # 20 x 4%
    assert f"chance {0.04**20:.2e}" in first and "far beyond chance" in first
    density = sentences[1]
    assert "2.0% of 10,000 positions" in density and "25x sparser than a Gaussian pre-activation" in density
    assert "50.0%" in density
    assert "excess kurtosis 20, where a Gaussian has 0 and 0: heavy-tailed" in sentences[2]
    assert "promotes ' rocks'" in sentences[3] and "suppresses '.'" in sentences[3]


def test_the_chance_share_comes_from_the_token_means_when_the_atlas_did_not_count_the_token(atlas):
    entry = atlas.neuron(0, 3)  # its examples sit on '<', which only its token means count (400 of 10,000)
    assert atlas.token_count(TAG) is None
    first = read_neuron_entry(entry, views.decode_token, atlas.token_count)[0]
    assert "all sit on '<', which is 4.0% of the corpus's tokens" in first
    uncounted = replace(entry, token_means=())
    assert "no chance baseline" in read_neuron_entry(uncounted, views.decode_token)[0]


def test_some_examples_on_a_common_token_are_within_chance(atlas):
    entry = atlas.neuron(1, 5)
    others = tuple(
        e if i < 3 else replace(e, tokens=e.tokens[: e.offset] + (1000 + i,) + e.tokens[e.offset + 1 :])
        for i, e in enumerate(entry.examples)
    )  # 3 on '.', the 17 others each on a token of its own
    sentence = read_neuron_entry(replace(entry, examples=others), views.decode_token, lambda t: 2_000)[0]
    assert "3 sit on '.', which is 20.0%" in sentence and "3 or more with chance" in sentence
    assert "(within chance)" in sentence  # P(X >= 3) for Binomial(20, 0.2) is 0.79


def test_dead_and_dense_neurons_are_said_so(atlas):
    entry = atlas.neuron(1, 5)
    dead = replace(entry, stats=replace(entry.stats, active_share=0.0, dead=True, maximum=0.0))
    assert any("never active" in s and "dead" in s for s in read_neuron_entry(dead, views.decode_token))
    silent = replace(entry, stats=replace(entry.stats, active_share=0.0, kurtosis=float("nan")))
    assert [s for s in read_neuron_entry(silent, views.decode_token) if "never active" in s or "kurtosis" in s] == [
        "L1N5 is never active over 10,000 positions: a dead neuron."
    ]
    dense = replace(entry, stats=replace(entry.stats, active_share=0.9))
    assert any("1.8x denser than a Gaussian" in s for s in read_neuron_entry(dense, views.decode_token))


def test_a_tiny_share_is_never_read_as_zero(atlas):
    assert [pct(v) for v in (0.0, 0.25, 4e-4, 3.14e-5, 1.5e-6, 1e-9)] == [
        "0.0%", "25.0%", "0.04%", "0.0031%", "0.00015%", "<0.0001%",
    ]  # fmt: skip
    entry = atlas.neuron(1, 5)
    rare = replace(
        entry,
        stats=replace(entry.stats, count=10_000_000, active_share=3e-6),  # active on 30 of 10 million positions
        bands=(replace(entry.bands[0], count=20), *entry.bands[1:]),  # 20 of them in the lowest band
    )
    sentences = read_neuron_entry(rare, views.decode_token, lambda token: 150)  # '.' on 150 of the positions
    assert "all sit on '.', which is 0.0015% of the corpus's tokens" in sentences[0]
    assert "active (GELU output > 0) on 0.0003% of 10,000,000 positions" in sentences[1]
    assert "20 positions (0.0002%)" in views.bands_html(rare, views.decode_token)
    head = atlas.head(1, 2)
    faint = replace(head, stats=replace(head.stats, previous_token=2e-4 / 100, induction=1e-9))
    table = " ".join(" ".join(row) for row in views.head_stats_table(faint).rows)
    assert "0.0002%" in table and "<0.0001%" in table
    everything = [
        *sentences,
        *read_head_entry(faint, views.decode_token, 64),
        views.bands_html(rare, views.decode_token),
    ]
    assert not any(re.search(r"(?<![\d.])0\.0%", text) for text in everything)  # '50.0%' is fine


def test_the_head_reading_states_its_baselines_and_key(atlas):
    sentences = read_head_entry(atlas.head(1, 2), views.decode_token, 64)
    assert "5.0% of its attention on the previous token, 30.0% on the window's first" in sentences[0]
    assert f"gives each {100 * uniform_share(64):.1f}% on average" in sentences[0]
    assert "45.0% on the token after an earlier copy, induction (3,000 queries)" in sentences[1]
    assert "look most often at ' rocks' (5 of 5)" in sentences[2]


# ----- HTML: shading, outlines, escaping ---------------------------------------------------------------------------
def hostile_pieces(atlas: MemoryAtlas) -> dict[str, str]:
    """Every HTML piece viz.atlas draws, for the neuron and the head whose tokens include '<script>...'."""
    entry, head = atlas.neuron(0, 3), atlas.head(1, 2)
    decode = views.decode_token
    return {
        "example": views.example_html(entry.examples[0], decode, 2.0, atlas.window(0)),
        "examples": views.examples_html(entry, decode, atlas),
        "bands": views.bands_html(entry, decode),
        "head": views.head_examples_html(head, decode, atlas),
        "logit table": _table(views.logit_table(entry, decode)),
        "token means": _table(views.token_means_table(entry, decode)),
        **{f"view {b.name}": b.html for b in views.neuron_view(atlas, 0, 3).blocks},
        **{f"head view {b.name}": b.html for b in views.head_view(atlas, 1, 2).blocks},
    }


def test_every_html_piece_escapes_hostile_tokens(atlas):
    for name, html in hostile_pieces(atlas).items():
        page = Tags(html)
        assert not page.names() & {"script", "img", "iframe"}, name
        assert "<script" not in html and "&lt;" in html, name
        text = "".join(page.text).replace("·", " ")
        assert "<" in text, name  # the token is shown, as text
        for _, attrs in page.tags:  # no attribute that runs code
            assert not any(key.startswith("on") for key in attrs), name


def test_an_example_shades_its_tokens_outlines_its_own_and_opens_its_window(atlas):
    entry = atlas.neuron(1, 5)
    page = Tags(views.example_html(entry.examples[0], views.decode_token, entry.stats.maximum, atlas.window(0)))
    tokens = page.with_class("atlas-tok")
    own = page.with_class("atlas-own")
    shown = len(entry.examples[0].tokens)
    assert len(tokens) == 2 * shown  # the example, then in <details> its whole window, shaded where it was kept
    whole = views._tokenizer().decode(fake_window(0).tolist()).replace(" ", "·").replace("<|endoftext|>", "")
    assert whole in "".join(page.text)  # every token of the window, past the example's 41 too
    assert len(own) == 2
    assert "'.'" in (own[0]["title"] or "") and "activation 3" in (own[0]["title"] or "")
    assert "rgba(230, 110, 20, 0.85)" in (own[0]["style"] or "")  # the maximum: the darkest shade
    assert "details" in page.names() and "summary" in page.names()
    assert entry.examples[0].offset == 32  # 32 tokens before, 8 after
    assert len(entry.examples[0].tokens) == 32 + 1 + 8


def test_whitespace_is_made_visible():
    assert views.visible(" a\nb") == '<span class="atlas-ws">·</span>a<span class="atlas-ws">↵</span>b'
    assert views.visible('"<') == "&quot;&lt;" and "∅" in views.visible("")


def test_a_head_example_outlines_its_query_and_dashes_its_key(atlas):
    head = atlas.head(1, 2)
    page = Tags(views.head_example_html(head.examples[0], views.decode_token))
    tokens = page.with_class("atlas-tok")
    first = head.examples[0]
    assert "atlas-own" in (tokens[first.offset]["class"] or "")
    key = tokens[first.key - first.start]
    assert "atlas-key" in (key["class"] or "") and "' rocks'" in (key["title"] or "")
    assert ".atlas-own { outline: 2px solid" in views.CSS and ".atlas-key { outline: 2px dashed" in views.CSS
    assert first.tokens[first.key - first.start] == ROCKS


def test_the_histogram_is_log_count_and_the_logit_table_pairs_both_sides(atlas):
    entry = atlas.neuron(1, 5)
    fig = views.histogram_figure(entry)
    assert fig.layout.yaxis.type == "log" and list(fig.data[0].y) == list(entry.histogram.counts)
    held = [i for i, c in enumerate(entry.histogram.counts) if c]  # the x axis spans the bins that hold something
    assert list(fig.layout.xaxis.range) == [entry.histogram.edges[held[0]], entry.histogram.edges[held[-1] + 1]]
    table = views.logit_table(entry, views.decode_token)
    assert table.rows[0] == ["1", "' rocks'", "1.5", "'.'", "-1.1"]


# ----- the report -------------------------------------------------------------------------------------------------
def other_sections() -> list[str]:
    from gpt2atlas.report.sections import SECTION_KEYS

    return [k for k in SECTION_KEYS if k != "neurons"]


def test_the_report_shows_the_strongest_neurons_across_the_corpus(tiny_model, tmp_path):
    atlas = fake_atlas(tiny_model.cfg.d_mlp)
    out, report = build_report(
        tiny_model, tmp_path / "r.html", prompts=[HOSTILE_TEXT + " The end."], skip=other_sections(), progress=False,
        atlas=atlas,
    )  # fmt: skip
    section = report.sections[0]
    assert section.skipped is None
    strongest = section.parts[0].findings.strongest_neurons[:3]
    atlas_parts = section.parts[1:]
    assert [p.title for p in atlas_parts] == [f"L{n.layer}N{n.neuron} across the corpus" for n in strongest]
    html = out.read_text()
    page = Tags(html)
    units = [a["data-unit"] for a in page.with_class("atlas-examples")]
    assert units == [f"L{n.layer}N{n.neuron}" for n in strongest]
    examples = page.with_class("atlas-example")
    first = atlas.neuron(strongest[0].layer, strongest[0].neuron).examples[0]
    assert len(examples) >= 3 * 6 and examples[0]["data-window"] == "0"
    assert examples[0]["data-position"] == str(first.position)
    assert len(page.with_class("atlas-own")) >= 3 * 6
    assert "<script>alert(1)" not in html  # the hostile corpus tokens are escaped
    markdown = render_markdown(report, "r_files")
    assert f"- `{first.activation:.3g}` (window 0, token {first.position}):" in markdown
    assert "**" in markdown and "&lt;script&gt;" in markdown and "<script>" not in markdown
    findings = report.findings_data()["sections"]["neurons"]["parts"]
    assert findings[1]["examples"][0]["window"] == 0 and report.provenance["atlas"]["model"] == "fake-mini"


def test_without_an_atlas_the_neurons_section_is_as_before(tiny_model, tmp_path):
    _, report = build_report(tiny_model, tmp_path / "r.html", skip=other_sections(), progress=False)
    assert len(report.sections[0].parts) == 1 and not report.sections[0].parts[0].blocks


def test_an_atlas_of_another_shape_is_refused(tiny_model, tmp_path, atlas):
    with pytest.raises(InputError, match="has 2 layers of 8 neurons and 4 heads; this model has 2 layers of 256"):
        build_report(tiny_model, tmp_path / "r.html", skip=other_sections(), progress=False, atlas=atlas)
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(InputError):
        check_model(atlas, tiny_model.cfg)


def test_the_report_command_refuses_a_missing_atlas_in_one_line(tiny_checkpoint, tmp_path, capsys):
    code = main(
        ["report", "--model", str(tiny_checkpoint), "--atlas", str(tmp_path / "none"), "-o", str(tmp_path / "r.html")]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and "none" in err
    assert not (tmp_path / "r.html").exists()


# ----- memory reader ----------------------------------------------------------------------------------------------
def test_search_finds_the_planted_units(atlas):
    hits = atlas.search(token=DOT)
    assert (hits[0].unit, hits[0].layer, hits[0].index, hits[0].reason) == ("neuron", 1, 5, "example")
    assert {(h.layer, h.index) for h in atlas.search(max_density=0.05)} == {(1, 5)}
    # text is searched as GPT-2 reads it: ' sat' is every planted head's query (at 50), ' rocks' a token mean
    sat = {(h.unit, h.layer, h.index, h.reason) for h in atlas.search(text=" sat", limit=500)}
    assert ("head", 1, 2, "example") in sat and all(unit == "head" for unit, *_ in sat)
    rocks = atlas.search(text=" rocks", limit=500)
    assert {(h.unit, h.reason) for h in rocks} == {("neuron", "token_mean")} and len(rocks) == 16
    assert atlas.search(text="rocks") == []  # 'ro' 'cks': not the token ' rocks'
    with pytest.raises(InputError, match="no neuron L2N0"):
        atlas.neuron(2, 0)
    both = atlas.search(token=DOT, max_density=0.05)  # a density bound keeps neurons within it and no heads
    assert {(h.unit, h.layer, h.index) for h in both} == {("neuron", 1, 5)}
    assert atlas.search(token=DOT, min_density=0.05) == []
    with pytest.raises(InputError, match="give a token, a text or a density bound"):
        atlas.search()
    with pytest.raises(InputError, match="limit=0 must be at least 1"):
        atlas.search(token=DOT, limit=0)


# ----- the dashboard ----------------------------------------------------------------------------------------------
@pytest.fixture()
def app(tiny_checkpoint, tiny_model, monkeypatch) -> AppTest:
    from gpt2atlas.app.views import atlas as view

    made = fake_atlas(tiny_model.cfg.d_mlp)
    monkeypatch.setenv(MODEL_ENV, str(tiny_checkpoint))
    original = view.open_atlas
    monkeypatch.setattr(view, "open_atlas", lambda path: made if path == "fake-atlas" else original(path))
    at = AppTest.from_file(str(APP), default_timeout=90).run()
    at.radio(key="view").set_value("Neuron atlas").run()
    return at


def errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


def html_of(at: AppTest) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def test_the_view_without_an_atlas_says_how_to_make_one(app):
    assert errors(app) == [] and any("gpt2atlas atlas --model" in i.value for i in app.info)


def test_the_view_shows_a_neuron_and_a_head_from_the_atlas(app):
    app.text_input(key="atlas_path").input("fake-atlas").run()
    assert errors(app) == []
    app.selectbox(key="atlas_layer").set_value(1)
    app.number_input(key="atlas_neuron").set_value(5).run()
    assert errors(app) == []
    assert any("L1N5's 20 top examples all sit on '.'" in m.value for m in app.markdown)
    page = Tags(html_of(app))
    assert len(page.with_class("atlas-example")) >= 10 and "details" in page.names()
    assert "<script" not in html_of(app)
    assert len(app.get("plotly_chart")) == 1 and len(app.dataframe) == 2  # histogram; logit effect, token means
    app.radio(key="atlas_mode").set_value("head").run()
    app.number_input(key="atlas_head").set_value(2).run()
    assert errors(app) == [] and any("induction" in m.value for m in app.markdown)
    assert Tags(html_of(app)).with_class("atlas-head-example")


def test_the_view_searches_by_token_and_text(app):
    app.text_input(key="atlas_path").input("fake-atlas").run()
    app.radio(key="atlas_mode").set_value("search").run()
    app.text_input(key="atlas_search").input(f"#{DOT}").run()
    assert errors(app) == [] and app.selectbox(key="atlas_hit").value == "neuron L1N5"
    assert any("L1N5's 20 top examples" in m.value for m in app.markdown)
    app.text_input(key="atlas_search").input("no-such-token-text-anywhere").run()
    assert errors(app) == [] and any("Nothing in the atlas matches" in i.value for i in app.info)


def test_the_view_refuses_an_atlas_of_another_model(app, monkeypatch, atlas):
    from gpt2atlas.app.views import atlas as view

    monkeypatch.setattr(view, "open_atlas", lambda path: atlas)
    app.text_input(key="atlas_path").input("other-atlas").run()
    shown = errors(app)
    assert len(shown) == 1 and "give the atlas of this model" in shown[0]


# ----- where the atlas comes from ---------------------------------------------------------------------------------
def test_the_report_reads_the_given_atlas_else_the_shipped_models_own(monkeypatch, tmp_path, atlas):
    from gpt2atlas import shipped
    from gpt2atlas.atlas import reader
    from gpt2atlas.cli.commands.report import report_atlas

    assert shipped.shipped_atlas("gpt2") is None
    assert shipped.shipped_atlas("mini") in (None, Path(shipped.__file__).parent / "mini_atlas" / "atlas.sqlite")
    opened = []
    monkeypatch.setattr(reader, "open_atlas", lambda path: opened.append(Path(path)) or atlas)
    monkeypatch.setattr(shipped, "shipped_atlas", lambda name: tmp_path / "shipped" if name == "mini" else None)
    assert report_atlas("gpt2", None) is None and opened == []
    assert report_atlas("mini", None) is atlas and opened == [tmp_path / "shipped"]
    assert report_atlas("gpt2", tmp_path / "mine") is atlas and opened[-1] == tmp_path / "mine"


def test_the_dashboard_command_passes_its_atlas_on():
    from gpt2atlas.app.state import app_argument
    from gpt2atlas.cli.commands.report import app_command

    command = app_command(APP, "mini", 8765, atlas=Path("/data/atlas"))
    assert command[-2:] == ["--atlas", "/data/atlas"]
    assert app_argument("atlas", command[command.index("--") + 1 :]) == "/data/atlas"
    assert "--atlas" not in app_command(APP, "mini", 8765)
