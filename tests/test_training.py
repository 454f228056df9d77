"""Training from scratch: the fused loss, the recipe, token files, checkpoints, resume, DDP, Ctrl-C, bad input."""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2atlas import load_model
from gpt2atlas.errors import InputError
from gpt2atlas.model import GPT2, GPT2Config
from gpt2atlas.tokenizer import ENDOFTEXT_ID, Tokenizer
from gpt2atlas.training import TrainConfig, config_for, train
from gpt2atlas.training.data import WindowSampler, is_validation, prepare_tokens, validation_windows
from gpt2atlas.training.loss import linear_cross_entropy
from gpt2atlas.training.recipe import learning_rate, optimizer_for
from gpt2atlas.training.run_folder import RunFolder, is_checkpoint_step
from test_loading_and_cli import assert_one_line_error

WORDS = (
    "the cat sat on a mat and looked at the small dog which ran to the old red house near a river "
    "where children played every day after school while birds sang in tall green trees"
).split()


def write_corpus(folder: Path, n_files: int = 40, seed: int = 0) -> Path:
    """Files of simple, repetitive English: a small model learns it within a few steps."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "." for _ in range(40)
        ]
        (folder / f"doc{i:03d}.txt").write_text(" ".join(sentences))
    return folder


def tiny_config(data: Path, **overrides) -> TrainConfig:
    base = dict(
        data=str(data),
        max_steps=8,
        batch_tokens=8 * 64,
        micro_batch=4,
        warmup_steps=2,
        lr=3e-3,
        precision="float32",
        eval_tokens=1024,
        eval_every=4,
        log_every=1,
        save_every=100,
    )
    return config_for("tiny", **{**base, **overrides})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "texts")


@pytest.fixture(autouse=True)
def _token_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GPT2ATLAS_CACHE", str(tmp_path_factory.getbasetemp() / "gpt2atlas-cache"))


@pytest.fixture(scope="module")
def trained_run(corpus, tmp_path_factory) -> Path:
    """8 steps of the tiny shape on the corpus (float32), with checkpoints at 0, 1, 2, 4, 8."""
    out = tmp_path_factory.mktemp("runs") / "run"
    os.environ.setdefault("GPT2ATLAS_CACHE", str(tmp_path_factory.getbasetemp() / "gpt2atlas-cache"))
    train(tiny_config(corpus), out, progress=False, log=lambda msg: None)
    return out


# ----- the fused loss ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows,chunk", [(300, 64), (300, 1000), (257, 256)])
def test_fused_cross_entropy_equals_cross_entropy_on_the_logits(rows, chunk):
    torch.manual_seed(0)
    hidden = torch.randn(rows, 32, requires_grad=True)
    weight = (torch.randn(1000, 32) * 0.3).requires_grad_()
    targets = torch.randint(0, 1000, (rows,))
    reference = F.cross_entropy(hidden @ weight.T, targets)
    reference.backward()
    grad_h, grad_w = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    loss = linear_cross_entropy(hidden, weight, targets, chunk_rows=chunk)
    (3 * loss).backward()  # the backward pass scales by the incoming gradient
    assert abs(float(loss.detach()) - float(reference.detach())) < 1e-5
    torch.testing.assert_close(hidden.grad, 3 * grad_h, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(weight.grad, 3 * grad_w, rtol=1e-4, atol=1e-7)


def test_fused_cross_entropy_in_bfloat16_is_as_close_as_autocast():
    torch.manual_seed(0)
    hidden = torch.randn(512, 64, requires_grad=True)
    weight = (torch.randn(50257, 64) * 0.1).requires_grad_()
    targets = torch.randint(0, 50257, (512,))
    reference = F.cross_entropy(hidden @ weight.T, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_error = abs(float(F.cross_entropy(hidden @ weight.T, targets)) - float(reference))
    reference.backward()
    grad_h = hidden.grad.clone()
    hidden.grad = None
    loss = linear_cross_entropy(hidden, weight, targets, compute_dtype=torch.bfloat16)
    loss.backward()
    assert abs(float(loss.detach()) - float(reference.detach())) < max(3 * autocast_error, 2e-3)
    cosine = F.cosine_similarity(hidden.grad.flatten(), grad_h.flatten(), dim=0)
    assert cosine > 0.999


def test_fused_cross_entropy_without_grad_computes_no_gradient():
    hidden, weight = torch.randn(10, 8), torch.randn(50, 8)
    targets = torch.randint(0, 50, (10,))
    with torch.no_grad():
        loss = linear_cross_entropy(hidden, weight, targets)
    assert loss.grad_fn is None
    assert abs(float(loss) - float(F.cross_entropy(hidden @ weight.T, targets))) < 1e-5


# ----- the recipe -------------------------------------------------------------------------------------------------
def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_a_tenth():
    config = TrainConfig(max_steps=1000, warmup_steps=100, lr=6e-4)
    assert learning_rate(config, 0) == pytest.approx(6e-6)
    assert learning_rate(config, 49) == pytest.approx(3e-4)
    assert learning_rate(config, 100) == pytest.approx(6e-4)
    assert learning_rate(config, 550) == pytest.approx(0.5 * (6e-4 + 6e-5))
    assert learning_rate(config, 1000) == pytest.approx(6e-5)
    rates = [learning_rate(config, s) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_weight_decay_applies_to_matrices_only_and_adamw_uses_gpt2_betas():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, d_model=16, n_ctx=8))
    optimizer = optimizer_for(model, TrainConfig(n_layer=1, n_head=2, d_model=16, n_ctx=8, batch_tokens=8))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert decayed["betas"] == (0.9, 0.95) and decayed["eps"] == 1e-8


def test_initialisation_scales_the_residual_writers_by_depth():
    model = GPT2(GPT2Config(n_layer=8, n_head=4, d_model=256, n_ctx=64)).init_weights(seed=0, scale_residual=True)
    assert float(model.blocks[0].attn.W_QKV.std()) == pytest.approx(0.02, rel=0.02)
    for block in model.blocks:
        assert float(block.attn.W_O.std()) == pytest.approx(0.02 / math.sqrt(16), rel=0.03)
        assert float(block.mlp.W_out.std()) == pytest.approx(0.02 / math.sqrt(16), rel=0.03)
    assert float(model.blocks[0].ln1.w.min()) == 1.0 and float(model.blocks[0].attn.b_O.abs().max()) == 0.0


def test_batch_must_split_into_processes_and_micro_batches():
    config = TrainConfig(n_ctx=64, batch_tokens=64 * 12, micro_batch=4)
    assert config.accumulation_steps(1) == 3
    with pytest.raises(InputError, match="does not split"):
        config.accumulation_steps(2)
    with pytest.raises(InputError, match="multiple of n_ctx"):
        TrainConfig(n_ctx=64, batch_tokens=100)


# ----- data -------------------------------------------------------------------------------------------------------
def test_tokens_are_written_once_split_by_document_and_decode_back(corpus, tmp_path):
    data = prepare_tokens(str(corpus), val_fraction=0.2, cache_dir=tmp_path, progress=False)
    tokenizer = Tokenizer()
    files = sorted(corpus.glob("*.txt"))
    val_names = [f for f in files if is_validation(f"{corpus.name}/{f.name}", 0.2)]
    assert 0 < len(val_names) < len(files)
    assert data.manifest["val_documents"] == len(val_names)
    expected_val = [t for f in val_names for t in tokenizer.encode(f.read_text(), allow_special=False) + [ENDOFTEXT_ID]]
    assert data.val.tolist() == expected_val
    assert data.manifest["train_tokens"] + data.manifest["val_tokens"] == sum(
        len(tokenizer.encode(f.read_text())) + 1 for f in files
    )
    assert data.manifest["tokenizer"] and all(len(i["sha256"]) == 64 for i in data.manifest["inputs"])
    written = (data.folder / "train.bin").stat().st_mtime_ns
    again = prepare_tokens(str(corpus), val_fraction=0.2, cache_dir=tmp_path, progress=False)
    assert again.folder == data.folder and (again.folder / "train.bin").stat().st_mtime_ns == written
    (corpus / "doc000.txt").write_text((corpus / "doc000.txt").read_text() + " More.")
    try:
        assert prepare_tokens(str(corpus), val_fraction=0.2, cache_dir=tmp_path, progress=False).folder != data.folder
    finally:
        write_corpus(corpus)


def test_a_prepared_token_folder_travels_as_data(corpus, tmp_path):
    """How a run moves to a machine without the corpora (a GPU box): the token folder itself is --data."""
    import shutil

    data = prepare_tokens(str(corpus), val_fraction=0.2, cache_dir=tmp_path / "cache", progress=False)
    moved = shutil.copytree(data.folder, tmp_path / "moved")
    again = prepare_tokens(str(moved), val_fraction=0.2, cache_dir=tmp_path / "elsewhere", progress=False)
    assert again.folder == moved and again.manifest == data.manifest
    assert again.train.tolist() == data.train.tolist() and not (tmp_path / "elsewhere").exists()
    with pytest.raises(InputError, match="val_fraction=0.2"):
        prepare_tokens(str(moved), val_fraction=0.05, cache_dir=tmp_path, progress=False)
    with open(moved / "train.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(InputError, match="token counts"):
        prepare_tokens(str(moved), val_fraction=0.2, cache_dir=tmp_path, progress=False)


def test_windows_cover_the_stream_once_per_epoch_in_a_seeded_order():
    tokens = np.arange(1001, dtype=np.uint16)
    sampler = WindowSampler(tokens, n_ctx=100, seed=3)
    epoch = sampler.windows(0, 10)
    assert sorted(int(w[0]) for w in epoch) == list(range(0, 1000, 100))
    assert all(torch.equal(w, torch.arange(int(w[0]), int(w[0]) + 101)) for w in epoch)
    assert not torch.equal(epoch, sampler.windows(10, 10))  # a new order next epoch
    assert torch.equal(WindowSampler(tokens, 100, seed=3).windows(4, 3), epoch[4:7])  # any share, any time
    assert not torch.equal(WindowSampler(tokens, 100, seed=4).windows(0, 10), epoch)
    assert validation_windows(tokens, 100, 350).shape == (3, 101)


# ----- a run ------------------------------------------------------------------------------------------------------
def test_a_run_learns_and_checkpoints_at_log_spaced_steps(trained_run):
    folder = RunFolder(trained_run)
    steps = [int(p.name.split("-")[1]) for p in folder.checkpoints()]
    assert steps == [0, 1, 2, 4, 8] and all(is_checkpoint_step(s) for s in steps)
    metrics = folder.read_metrics()
    assert [m.step for m in metrics] == list(range(9))
    assert metrics[0].val_loss == pytest.approx(math.log(50257), abs=0.1)  # initialisation: near uniform
    assert metrics[-1].val_loss < metrics[0].val_loss - 1.0  # the repetitive corpus is learned quickly
    assert all(m.grad_norm is not None and m.tokens_per_s > 0 for m in metrics[1:])
    assert metrics[-1].tokens == 8 * 512
    info = json.loads((folder.checkpoint_dir(8) / "training.json").read_text())
    assert info["step"] == 8 and info["val_loss"] == pytest.approx(metrics[-1].val_loss)
    run = json.loads((trained_run / "run.json").read_text())
    assert run["config"]["max_steps"] == 8 and run["tokens"]["train_tokens"] > 0


def test_checkpoints_load_in_gpt2atlas_transformers_and_transformer_lens(trained_run):
    pytest.importorskip("transformers")
    from transformers import GPT2LMHeadModel

    checkpoint = RunFolder(trained_run).checkpoint_dir(8)
    ours = load_model(checkpoint)
    tokens = torch.tensor([Tokenizer().encode("The cat sat on the mat near the river.")])
    logits = ours(tokens)
    hf = GPT2LMHeadModel.from_pretrained(checkpoint, attn_implementation="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(tokens).logits, logits, atol=1e-4, rtol=1e-4)
    pytest.importorskip("transformer_lens")
    from hf_utils import transformer_lens_model

    tl = transformer_lens_model(hf, ours.cfg.n_layer, ours.cfg.n_head, ours.cfg.d_model)
    with torch.no_grad():
        torch.testing.assert_close(tl(tokens), logits, atol=1e-4, rtol=1e-4)
    first, last = load_model(RunFolder(trained_run).checkpoint_dir(0)), ours
    assert not torch.equal(first.W_pos, last.W_pos)


def test_stopping_and_resuming_gives_bit_identical_weights(corpus, tmp_path):
    config = tiny_config(corpus, max_steps=6, eval_every=100, log_every=1)
    quiet = dict(progress=False, log=lambda msg: None)
    whole = train(config, tmp_path / "whole", **quiet)
    first = train(config, tmp_path / "split", stop_at_step=3, **quiet)
    assert first.step == 3 and first.stopped_early
    second = train(None, tmp_path / "split", resume=True, **quiet)
    assert second.step == whole.step == 6
    for name in ("model.safetensors",):
        assert (tmp_path / "whole/state" / name).read_bytes() == (tmp_path / "split/state" / name).read_bytes()
    assert (tmp_path / "whole/checkpoints/step-000006/model.safetensors").read_bytes() == (
        tmp_path / "split/checkpoints/step-000006/model.safetensors"
    ).read_bytes()
    losses = lambda run: [m.train_loss for m in RunFolder(tmp_path / run).read_metrics()]  # noqa: E731
    assert losses("whole") == losses("split")


def test_a_torn_last_metrics_line_is_left_out_and_repaired_on_resume(corpus, tmp_path):
    """A run killed in the middle of a metrics line (before each line was one write) leaves half a record without
    its newline: reading skips it, resuming rewrites the file whole, and a broken line before the last is named."""
    quiet = dict(progress=False, log=lambda msg: None)
    train(tiny_config(corpus, max_steps=4, eval_every=100, log_every=1), tmp_path / "run", stop_at_step=2, **quiet)
    folder = RunFolder(tmp_path / "run")
    whole = folder.metrics_path.read_text()
    assert [m.step for m in folder.read_metrics()] == [0, 1, 2] and whole.endswith("}\n")
    torn = whole.splitlines()[-1][:25]
    folder.metrics_path.write_text(whole + torn)  # step 3's line, cut by a kill
    assert [m.step for m in folder.read_metrics()] == [0, 1, 2]
    train(None, tmp_path / "run", resume=True, **quiet)
    lines = folder.metrics_path.read_text().splitlines(keepends=True)
    assert [json.loads(line)["step"] for line in lines] == [0, 1, 2, 3, 4] and all(x.endswith("}\n") for x in lines)
    folder.metrics_path.write_text(torn + "\n" + "".join(lines))
    with pytest.raises(InputError, match=r"metrics.jsonl line 1 is not a JSON record"):
        folder.read_metrics()


def test_a_time_limit_ends_the_sitting_cleanly_with_the_state_saved(corpus, tmp_path):
    messages: list[str] = []
    result = train(
        tiny_config(corpus, max_steps=50), tmp_path / "run", time_limit_s=0.0, progress=False, log=messages.append
    )
    assert result.stopped_early and result.step == 1
    state = torch.load(tmp_path / "run/state/trainer.pt", weights_only=True)
    assert state["step"] == 1 and state["windows_seen"] == 8 and state["optimizer"]["state"]
    assert f"gpt2atlas train --resume {tmp_path / 'run'}" in messages[-1]


@pytest.mark.parametrize(
    "limits, message",
    [
        (dict(threads=0), "threads=0 must be a whole number in [1, "),
        (dict(threads=10**6), "threads=1000000 must be a whole number in [1, "),
        (dict(time_limit_s=-1.0), "time_limit_s=-1.0 must be a number of seconds >= 0"),
        (dict(time_limit_s=math.nan), "time_limit_s=nan must be a number of seconds >= 0"),
        (dict(stop_at_step=-1), "stop_at_step=-1 must be a whole number >= 0"),
    ],
)
def test_run_limits_that_do_not_fit_are_refused_before_anything_starts(limits, message, corpus, tmp_path):
    with pytest.raises(InputError, match=re.escape(message)) as refused:
        train(tiny_config(corpus), tmp_path / "run", progress=False, **limits)
    assert refused.value.arguments == tuple(limits) and not (tmp_path / "run").exists()


def test_two_processes_under_torchrun_follow_the_one_process_loss_curve(corpus, tmp_path):
    common = [
        "train",
        "--preset",
        "tiny",
        "--data",
        str(corpus),
        "--max-steps",
        "4",
        "--batch-tokens",
        "512",
        "--micro-batch",
        "4",
        "--warmup-steps",
        "2",
        "--lr",
        "3e-3",
        "--precision",
        "float32",
        "--eval-tokens",
        "512",
        "--log-every",
        "1",
        "--threads",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "gpt2atlas", *common, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "gpt2atlas",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    curve = lambda run: [(m.step, m.train_loss, m.val_loss) for m in RunFolder(tmp_path / run).read_metrics()]  # noqa: E731
    one_curve, two_curve = curve("one"), curve("two")
    assert [s for s, *_ in one_curve] == [s for s, *_ in two_curve] == list(range(5))
    for (_, loss_1, val_1), (_, loss_2, val_2) in zip(one_curve, two_curve, strict=True):
        assert (loss_1 is None) == (loss_2 is None)
        if loss_1 is not None:
            assert loss_2 == pytest.approx(loss_1, abs=1e-4)
        assert val_2 == pytest.approx(val_1, abs=1e-4)
    assert loss_1 < one_curve[1][1]  # and it learned something
    assert sorted(p.name for p in (tmp_path / "two/checkpoints").iterdir()) == [
        "step-000000",
        "step-000001",
        "step-000002",
        "step-000004",
    ]


# ----- the command line: Ctrl-C, NaN, bad input ------------------------------------------------------------------
def gpt2atlas(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gpt2atlas", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def assert_error_ends_output(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1, no traceback, and the last line is one `error:` line (progress may come before it)."""
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, last


def tiny_cli(corpus: Path, *args: str) -> list[str]:
    return [
        "train",
        "--preset",
        "tiny",
        "--data",
        str(corpus),
        "--batch-tokens",
        "512",
        "--micro-batch",
        "4",
        "--precision",
        "float32",
        "--eval-tokens",
        "512",
        *args,
    ]


def test_ctrl_c_saves_the_state_says_how_to_resume_and_exits_130(corpus, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpt2atlas",
            *tiny_cli(corpus, "--max-steps", "100000", "--out", str(out), "--log-every", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(RunFolder(out).read_metrics()) < 4:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert "interrupted at step" in message and f"gpt2atlas train --resume {out}" in message
    stopped_at = int(message.split("interrupted at step ")[1].split(":")[0])
    assert stopped_at >= 3
    assert torch.load(out / "state/trainer.pt", weights_only=True)["step"] == stopped_at
    assert (out / "loss.html").is_file()
    resumed = gpt2atlas("train", "--resume", str(out), "--max-steps", str(stopped_at + 2))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert RunFolder(out).read_metrics()[-1].step == stopped_at + 2


def test_a_nan_loss_stops_with_one_line_naming_the_step_and_the_last_good_checkpoint(corpus, tmp_path):
    result = gpt2atlas(*tiny_cli(corpus, "--max-steps", "5", "--lr", "1e30", "--out", str(tmp_path / "run")))
    assert_error_ends_output(
        result, "the training loss became nan at step 1", str(tmp_path / "run/checkpoints/step-000000")
    )


def test_bad_inputs_are_one_line_errors_and_overwrite_nothing(corpus, trained_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   \n")
    assert_error_ends_output(gpt2atlas(*tiny_cli(empty, "--out", str(tmp_path / "a"))), "no text found")
    short = tmp_path / "short.txt"
    short.write_text("Too short to fill one context.")
    assert_error_ends_output(gpt2atlas(*tiny_cli(short, "--out", str(tmp_path / "b"))), "fewer than one context")
    assert_one_line_error(
        gpt2atlas(*tiny_cli(corpus, "--out", str(short / "run"))),
        f"--out {short / 'run'} is inside {short}, which is a file, not a folder",
    )
    assert_one_line_error(
        gpt2atlas(*tiny_cli(tmp_path / "missing", "--out", str(tmp_path / "c"))),
        "neither a file, a folder nor a built-in corpus",
    )
    assert not any((tmp_path / name).exists() for name in "abc")

    before = {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()}
    assert_one_line_error(gpt2atlas(*tiny_cli(corpus, "--out", str(trained_run))), "--resume", "--overwrite")
    assert_one_line_error(gpt2atlas("train", "--resume", str(trained_run), "--d-model", "128"), "d_model=64, not 128")
    assert_one_line_error(gpt2atlas("train", "--resume", str(trained_run), "--lr", "1"), "cannot change")
    assert_one_line_error(gpt2atlas("train", "--resume", str(tmp_path)), "not a gpt2atlas training run")
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()
    (not_a_run / "keep.txt").write_text("mine")
    assert_one_line_error(gpt2atlas(*tiny_cli(corpus, "--out", str(not_a_run), "--overwrite")), "not a gpt2atlas")
    assert (not_a_run / "keep.txt").read_text() == "mine"
    assert {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()} == before


def test_the_builtin_corpus_of_python_sources_needs_no_files_of_ours(tmp_path):
    from gpt2atlas.training.data import BUILTIN_CORPORA, resolve_documents

    documents, licences = resolve_documents("python-stdlib")
    assert len(documents) > 300 and all(d.path.is_file() for d in documents)
    assert any(d.name == "python-stdlib/os.py" for d in documents)
    assert "Python Software Foundation" in licences[0]
    assert set(BUILTIN_CORPORA) >= {"python-stdlib", "python-docs"}


def test_the_python_docs_corpus_is_english_prose_and_mixes_with_others():
    from gpt2atlas.training.data import python_docs_root, resolve_documents

    if python_docs_root() is None:
        pytest.skip("Debian's python3.11-doc is not installed (scripts/install.sh installs it where apt is at hand)")
    docs, licences = resolve_documents("python-docs")
    assert len(docs) > 400 and any(d.name.endswith("tutorial/introduction.rst.txt") for d in docs)
    text = next(d for d in docs if d.name.endswith("tutorial/introduction.rst.txt")).path.read_text()
    words = text.lower().split()
    assert words.count("the") / len(words) > 0.02  # running English text, not code
    mixed, mixed_licences = resolve_documents("python-docs, python-stdlib")
    assert len(mixed) == len(docs) + len(resolve_documents("python-stdlib")[0]) and len(mixed_licences) == 2
