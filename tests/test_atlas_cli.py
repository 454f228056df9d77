"""`gpt2atlas atlas` and `atlas-export` on bad input: one `error:` line, exit 1, and nothing created or changed.
The scan is the toy one of tests/atlas_toy.py (the command takes its scan from `RECIPE`)."""

from __future__ import annotations

import os

import pytest

from atlas_toy import TOY
from conftest import random_model
from gpt2atlas.cli.commands import atlas as command
from gpt2atlas.cli.main import main
from gpt2atlas.model import GPT2Config, save_checkpoint

SHAPE = GPT2Config(n_layer=1, n_head=2, d_model=32, n_ctx=32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    os.environ["GPT2ATLAS_CACHE"] = str(folder / "cache")
    text = " ".join(f"Line {i} of a short text about {i % 7} owls." for i in range(40))
    (folder / "data.txt").write_text(text)
    (folder / "other.txt").write_text(text.replace("owls", "bats"))
    (folder / "short.txt").write_text("two words")
    (folder / "blank.txt").write_text("   \n")
    return {
        "model": str(save_checkpoint(random_model(SHAPE, seed=1), folder / "tiny")),
        "other_model": str(save_checkpoint(random_model(SHAPE, seed=2), folder / "tiny2")),
        **{name: str(folder / f"{name}.txt") for name in ("data", "other", "short", "blank")},
    }


@pytest.fixture(autouse=True)
def toy_scan(monkeypatch):
    monkeypatch.setattr(command, "RECIPE", lambda: TOY)


def scan(inputs, out, *extra: str, data: str | None = None) -> list[str]:
    return ["atlas", "--model", inputs["model"], "--data", data or inputs["data"], "--out", str(out), *extra]


def refused(argv: list[str], capsys, *expected: str) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = [
        line for line in err.strip().splitlines() if line.strip() and "tokenizing" not in line
    ]  # the tokenizer's progress bar
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "extra, data, expected",
    [
        ((), "blank", ["--data", "0 tokens", "fewer than one window"]),
        ((), "short", ["3 tokens", "fewer than one window of 15 tokens"]),
        (("--split", "val"), "data", ["val split", "fewer than one window"]),
        (("--tokens", "10"), "data", ["10 tokens", "fewer than one window"]),
        (("--top-k", "0"), "data", ["--top-k 0 must be between 1 and 1000"]),
        (("--top-k", "2147483648"), "data", ["--top-k 2147483648 must be between 1 and 1000"]),  # 8 TiB asked
        (("--context", "33"), "data", ["--context 33", "the model's context of 32"]),
        (("--context", "1"), "data", ["--context 1"]),
        (("--save-every", "0"), "data", ["--save-every 0"]),
        (("--dtype", "float16"), "data", ["--dtype 'float16' is unknown"]),
        (("--engine", "spark"), "data", ["--engine 'spark' is unknown"]),
        (("--workers", "2"), "data", ["--address and --workers go with --engine ray"]),
    ],
)
def test_bad_input_creates_nothing(inputs, tmp_path, capsys, extra, data, expected):
    out = tmp_path / "atlas"
    refused(scan(inputs, out, "--context", "16", *extra, data=inputs[data]), capsys, *expected)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_or_resume_and_not_both(inputs, tmp_path, capsys):
    refused(["atlas", "--model", inputs["model"], "--data", inputs["data"]], capsys, "pass --out DIR")
    refused([*scan(inputs, tmp_path / "a"), "--resume", str(tmp_path / "a")], capsys, "pass --out DIR")
    refused(["atlas", "--resume", str(tmp_path / "none")], capsys, f"--resume {tmp_path / 'none'} holds no atlas")


def test_an_existing_folder_is_kept_unless_asked(inputs, tmp_path, capsys):
    out = tmp_path / "atlas"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused(scan(inputs, out, "--context", "16"), capsys, f"--out {out} already exists", "--resume", "--overwrite")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main(scan(inputs, out, "--context", "16", "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["atlas.sqlite", "run.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["atlas"]  # the staging folder is gone


def test_resume_refuses_other_inputs_and_a_finished_atlas(inputs, tmp_path, capsys):
    out = tmp_path / "atlas"
    # a scan stopped after its first commit: a test engine stops it there
    from gpt2atlas.atlas.driver import ScanInterrupted

    def stop_after_first(collect, model, work):
        yield next(iter(collect(model, batch) for batch in work))
        raise ScanInterrupted("stopped by the test")

    monkey = pytest.MonkeyPatch()
    monkey.setattr(command, "_engine", lambda *args: stop_after_first)
    try:
        assert main(scan(inputs, out, "--context", "16", "--save-every", "4")) == 130
    finally:
        monkey.undo()
    capsys.readouterr()
    before = (out / "atlas.sqlite").read_bytes()
    resume = ["atlas", "--resume", str(out)]
    refused([*resume, "--model", inputs["other_model"]], capsys, "scanned with another model", inputs["model"])
    refused([*resume, "--data", inputs["other"]], capsys, "another data", inputs["data"])
    refused([*resume, "--top-k", "7"], capsys, "another top_k (20 vs 7)")
    refused([*resume, "--context", "8"], capsys, "context (16 vs 8)")
    refused([*resume, "--tokens", "30"], capsys, "windows (")
    assert (out / "atlas.sqlite").read_bytes() == before
    assert main(resume) == 0
    capsys.readouterr()
    refused(resume, capsys, "holds a complete atlas: nothing to resume")


def test_export_refuses_what_is_not_an_atlas(tmp_path, capsys):
    refused(["atlas-export", str(tmp_path / "none"), "--out", str(tmp_path / "o")], capsys, str(tmp_path / "none"))
    assert not (tmp_path / "o").exists()


def test_engine_ray_without_ray_installed_is_one_line(inputs, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    out = tmp_path / "atlas"
    refused(scan(inputs, out, "--engine", "ray"), capsys, "--engine ray needs Ray")
    assert not out.exists()


def test_an_interrupted_overwrite_keeps_the_old_atlas_and_resumes_into_its_place(inputs, tmp_path, capsys, monkeypatch):
    from gpt2atlas.atlas.driver import ScanInterrupted

    out = tmp_path / "atlas"
    assert main(scan(inputs, out, "--context", "16")) == 0
    old = (out / "atlas.sqlite").read_bytes()

    def stop_after_first(collect, model, work):
        yield next(iter(collect(model, batch) for batch in work))
        raise ScanInterrupted("stopped by the test")

    with monkeypatch.context() as patch:
        patch.setattr(command, "_engine", lambda *args: stop_after_first)
        assert main(scan(inputs, out, "--context", "12", "--overwrite", "--save-every", "4")) == 130
    assert (out / "atlas.sqlite").read_bytes() == old  # the old atlas, untouched
    assert (tmp_path / ".atlas.next" / "atlas.sqlite").is_file()
    capsys.readouterr()
    assert main(["atlas", "--resume", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas"]
    from gpt2atlas.atlas.atlas import Atlas

    with Atlas.open(out) as atlas:
        assert atlas.run.context == 12 and atlas.run.complete
