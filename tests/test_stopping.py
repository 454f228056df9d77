"""SIGTERM (like Ctrl-C) stops each long-running command: exit 130, one `stopped:` line, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import gpt2atlas.atomic as atomic
from gpt2atlas.cli.main import main
from gpt2atlas.cli.stopping import stopped_line
from gpt2atlas.training.run_folder import RunFolder
from gpt2atlas.viz.export import write_result_folder

SRC = Path(__file__).resolve().parents[1] / "src"


class Running:
    """A `gpt2atlas` command in a subprocess, its stderr collected as it comes (progress bars end lines with \\r)."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpt2atlas", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := self.process.stderr.read1(4096):  # type: ignore[attr-defined]
            self.stderr += chunk

    def wait_for(self, marker: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while marker.encode() not in self.stderr:
            assert self.process.poll() is None, f"ended (exit {self.process.returncode}) before {marker!r}"
            assert time.monotonic() < deadline, f"no {marker!r} on stderr after {timeout} s"
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send `signum`; the exit code and the last line on stderr."""
        self.process.send_signal(signum)
        self.process.wait(timeout=120)  # (not communicate: the reader thread owns stderr)
        self._reader.join(timeout=10)
        text = self.stderr.decode(errors="replace")
        assert "Traceback" not in text, text[-2000:]
        last = text.replace("\r", "\n").strip().splitlines()[-1]
        return self.process.returncode, last


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of an atomic write, anywhere below `folder`."""
    return [str(p) for p in folder.rglob(".*")]


def test_report_stopped_keeps_the_previous_report(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("the previous report")
    running = Running("report", "--model", "mini", "--out", str(out))
    running.wait_for("embeddings")  # the summary is done, the embeddings section is running
    code, line = running.stop()
    assert (code, line) == (130, "stopped: nothing written")
    assert out.read_text() == "the previous report"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_geometry_stopped_writes_nothing(tmp_path, signum):
    texts = tmp_path / "texts.txt"  # quicker to read than the default corpus, as long to extract
    texts.write_text(
        "\n".join(f"Text {i}: " + "the lamp by the river and the stone in the garden " * 6 for i in range(2000))
    )
    running = Running("geometry", "--model", "mini", "--texts", str(texts), "--out", str(tmp_path / "out"), "--no-png")
    running.wait_for("extracting")
    code, line = running.stop(signum)
    assert (code, line) == (130, "stopped: nothing written")
    assert not (tmp_path / "out" / "geometry").exists()
    assert leftovers(tmp_path / "out") == [] if (tmp_path / "out").exists() else True


def test_dynamics_stopped_by_sigterm_writes_nothing(tmp_path):
    running = Running("dynamics", "--model", "mini", "--out", str(tmp_path / "out"), "--no-png")
    running.wait_for("measuring checkpoints")
    code, line = running.stop()
    assert (code, line) == (130, "stopped: nothing written")
    assert not (tmp_path / "out" / "dynamics").exists()


def test_train_stopped_saves_its_state_and_says_how_to_resume(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7}" for i in range(400)))
    out = tmp_path / "run"
    running = Running(
        "train", "--preset", "tiny", "--data", str(corpus), "--batch-tokens", "512", "--micro-batch", "4",
        "--precision", "float32", "--eval-tokens", "512", "--max-steps", "100000", "--out", str(out),
        "--log-every", "1",
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while len(RunFolder(out).read_metrics()) < 3:  # step 0 and two steps of the loop: it is training
        assert running.process.poll() is None and time.monotonic() < deadline, running.stderr[-2000:]
        time.sleep(0.1)
    code, line = running.stop()
    assert code == 130
    assert line.startswith("stopped: interrupted at step ") and f"gpt2atlas train --resume {out}" in line
    step = int(line.split("interrupted at step ")[1].split(":")[0])
    assert torch.load(out / "state" / "trainer.pt", weights_only=True)["step"] == step
    assert leftovers(out) == []


def test_the_stop_line_names_what_was_written_whole_before_the_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_written", [])
    assert stopped_line() == "stopped: nothing written"
    folder = write_result_folder(tmp_path, "attention", "{}", {}, png=False)
    report = atomic.write_text(tmp_path / "report.html", "<html></html>")
    assert stopped_line() == f"stopped: kept {folder}, {report} (each written whole); nothing half-written"


def test_the_signal_handlers_are_restored_after_the_command(capsys):
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    assert main(["info", "--model", "mini", "--json"]) == 0
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before
