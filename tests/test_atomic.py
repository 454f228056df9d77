"""Atomic writes: a file or folder is the old one or the whole new one, whatever happens to the writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gpt2atlas.atomic as atomic
from gpt2atlas.report import SECTION_KEYS

SRC = Path(__file__).resolve().parents[1] / "src"


def test_a_file_is_replaced_whole_and_an_error_keeps_the_old_one(tmp_path):
    path = tmp_path / "findings.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("the writer broke")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]
    atomic.write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]
    assert path in atomic.kept()


def test_the_temporary_file_keeps_the_extension_and_the_usual_permissions(tmp_path):
    with atomic.replacing(tmp_path / "figure.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "figure.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_folder_is_swapped_whole_even_over_an_existing_one(tmp_path):
    final = tmp_path / "attention"
    final.mkdir()
    (final / "old.html").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic.replacing_folder(final) as staging:
        (staging / "findings.json").write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in final.iterdir()] == ["old.html"]
    with atomic.replacing_folder(final) as staging:
        (staging / "findings.json").write_text("new")
    assert [p.name for p in final.iterdir()] == ["findings.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["attention"]


def test_two_writers_of_one_folder_leave_one_of_them_whole(tmp_path):
    final = tmp_path / "area"
    start = threading.Barrier(2)

    def write(name: str) -> None:
        with atomic.replacing_folder(final) as staging:
            for i in range(20):
                (staging / f"{i}.txt").write_text(name)
            start.wait()  # both staged: the second swap lands on the first's folder

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = {p.read_text() for p in final.iterdir()}
    assert len(list(final.iterdir())) == 20 and contents in ({"a"}, {"b"})
    assert [p.name for p in tmp_path.iterdir()] == ["area"]


def report_command(out: Path, prompt: str) -> list[str]:
    skip = [arg for key in SECTION_KEYS if key != "summary" for arg in ("--skip", key)]
    return [
        sys.executable,
        "-m",
        "gpt2atlas",
        "report",
        "--model",
        "mini",
        "--prompt",
        prompt,
        *skip,
        "--out",
        str(out),
    ]


def start_report(out: Path, prompt: str, go_on: Path) -> subprocess.Popen:
    """`report` with a pause half-way through writing its file, until `go_on` exists."""
    env = {**os.environ, "PYTHONPATH": str(SRC), atomic.PAUSE_ENV: str(go_on)}
    return subprocess.Popen(
        report_command(out, prompt), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_line(process: subprocess.Popen, marker: str, timeout: float = 120) -> str:
    """Read the process's stderr until a line holding `marker`; return that line."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if marker in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line with {marker!r} (exit {process.poll()})")


def test_kill_9_in_the_middle_of_writing_a_report_leaves_the_previous_one(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("the previous report")
    writer = start_report(out, "A river.", go_on=tmp_path / "never")
    line = wait_for_line(writer, "pausing mid-write")
    temporary = Path(line.split("pausing mid-write ", 1)[1].strip())
    assert temporary.parent == tmp_path and temporary.stat().st_size > 0  # half of the new report is on disk
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert out.read_text() == "the previous report"


def test_two_reports_writing_one_out_at_once_leave_one_whole_report(tmp_path):
    out = tmp_path / "report.html"
    prompts = ("Prompt of the first writer.", "Prompt of the second writer.")
    go_on = tmp_path.parent / f"{tmp_path.name}-go"
    writers = [start_report(out, prompt, go_on) for prompt in prompts]
    for writer in writers:
        wait_for_line(writer, "pausing mid-write")
    go_on.touch()  # both are half-way through writing the same --out: let both finish
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr[-2000:]
    text = out.read_text()
    assert text.rstrip().endswith("</html>")
    assert sum(prompt in text for prompt in prompts) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_png_the_renderer_dropped_is_one_error_and_nothing_written(tmp_path, monkeypatch):
    """kaleido's batch deletes a figure's file when its render fails (a timeout under load) and returns normally:
    that is an AtlasError naming the figure, and no PNG is left half-made (found by 20 browser runs under -n 2)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from gpt2atlas.errors import AtlasError
    from gpt2atlas.viz.export import write_pngs

    def drop_the_second(figures, files, **_):
        for i, file in enumerate(files):
            Path(file).write_bytes(b"\x89PNG") if i != 1 else Path(file).unlink()

    monkeypatch.setattr(pio, "write_images", drop_the_second)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(AtlasError, match="b.png"):
        write_pngs([go.Figure(), go.Figure()], paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
