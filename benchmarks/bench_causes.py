"""Activation patching, batched (gpt2atlas.causes) against TransformerLens 3's `patching.get_act_patch_*`.

GPT-2 small's shape with random weights (the real weights are not needed for speed), a 20-token clean prompt
and a corrupted one, the normalised logit-difference metric. Each contender runs once per round in its own
process (so peak memory is its own), the contenders taking turns; values are checked equal (1e-4) before any
time is printed.

    python benchmarks/bench_causes.py [--threads 2] [--rounds 1] [--seq 20] [--sweeps resid_pre,head_out,...]

Contenders per sweep: TransformerLens (one forward pass per patch, from the embedding, `.item()` after each),
ours (`gpt2atlas.causes.patch`), and for head_out_by_pos also ours `attribution_patch` (one clean and one
corrupted forward pass and one backward pass). Peak memory is the process's resident-set high-water mark
(VmHWM), reset after the model is loaded, so it is the sweep's own peak with the model already in memory.

Measured once (one round) on a 2-core AMD EPYC shared with other jobs (load average 10-14, so wall times are
inflated and CPU times are the steadier ratio), torch 2.13, 2 threads:
    resid_pre (12, 20)        TransformerLens 1805 s wall / 397 s CPU, ours 18.8 s / 8.4 s: 96x wall, 47x CPU;
                              peak RSS 2109 MB (1217 loaded + 892) vs 1030 MB (778 loaded + 253)
    head_out (12, 12)         TransformerLens 558 s / 222 s, ours 18.7 s / 6.6 s: 30x wall, 34x CPU;
                              peak RSS 2114 MB (1222 + 892) vs 968 MB (778 + 191)
    head_out_by_pos (12,20,12) ours 215 s / 73 s; attribution patching 6.5 s / 2.7 s: 33x wall, 28x CPU,
                              correlation 0.994; TransformerLens not timed (2,880 passes; --tl-by-pos)
Values: max |ours - TransformerLens| 1.4e-05 (resid_pre), 1.0e-05 (head_out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TL_FUNCTIONS = {
    "resid_pre": "get_act_patch_resid_pre",
    "attn_out": "get_act_patch_attn_out",
    "mlp_out": "get_act_patch_mlp_out",
    "head_out": "get_act_patch_attn_head_out_all_pos",
    "head_out_by_pos": "get_act_patch_attn_head_out_by_pos",
    "head_pattern": "get_act_patch_attn_head_pattern_all_pos",
}


def _kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:  # "5" resets VmHWM to the current RSS (Linux)
        refs.write("5")


def make_checkpoint(folder: Path, seq: int) -> dict:
    """A GPT-2-small-shaped random checkpoint and a clean/corrupted pair with a clear logit difference."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # 12 layers, 12 heads, d_model 768, context 1024
    with torch.no_grad():  # larger weights than the initialisation, so that the logits move with the prompt
        for name, p in hf.named_parameters():
            if p.ndim == 2:
                p.mul_(10.0 if "wte" in name or "wpe" in name else 2.0)
    hf.save_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50257, (1, seq), generator=generator)
    corrupted = clean.clone()
    corrupted[0, : seq // 2] = torch.randint(0, 50257, (seq // 2,), generator=generator)
    with torch.no_grad():
        lc, lk = hf(clean).logits[0, -1], hf(corrupted).logits[0, -1]
    answer = int(lc.argmax())
    other = int(lk.argmax()) if int(lk.argmax()) != answer else int(lc.topk(2).indices[1])
    return {"clean": clean.tolist(), "corrupted": corrupted.tolist(), "answer": answer, "other": other}


def worker(folder: Path, pair: dict, contender: str, sweep: str, threads: int, out: Path) -> None:
    """Load the model, reset the memory peak, run one sweep, write its time, memory and values."""
    torch.set_num_threads(threads)
    clean, corrupted = torch.tensor(pair["clean"]), torch.tensor(pair["corrupted"])
    answer, other = pair["answer"], pair["other"]
    if contender == "transformer_lens":
        import transformer_lens.patching as tl_patching
        from transformers import GPT2LMHeadModel

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from causes_cases import transformer_lens_twin

        hf = GPT2LMHeadModel.from_pretrained(folder).eval()
        tl = transformer_lens_twin(hf)
        del hf
        with torch.no_grad():
            ends = [float(tl(t)[0, -1, answer] - tl(t)[0, -1, other]) for t in (clean, corrupted)]

        def metric(logits):
            return (logits[0, -1, answer] - logits[0, -1, other] - ends[1]) / (ends[0] - ends[1])

        def run():
            _, clean_cache = tl.run_with_cache(clean)
            return getattr(tl_patching, TL_FUNCTIONS[sweep])(tl, corrupted, clean_cache, metric)
    else:
        from gpt2atlas import load_model
        from gpt2atlas.causes import attribution_patch, patch

        model = load_model(folder).requires_grad_(False)
        fn = attribution_patch if contender == "ours_attribution" else patch

        def run():
            return fn(model, clean, corrupted, sweep, answer=answer, other=other)

    import gc

    gc.collect()
    weights = model.parameters() if contender != "transformer_lens" else tl.parameters()
    float(sum(p.double().sum() for p in weights))  # every weight resident before the peak is reset
    rss = _kib("VmRSS")
    _reset_peak()
    start, cpu_start = time.perf_counter(), time.process_time()
    values = run()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _kib("VmHWM")
    torch.save(values.detach().cpu(), out.with_suffix(".pt"))
    record = {"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_mb": rss / 1024, "peak_mb": peak / 1024}
    out.write_text(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seq", type=int, default=20)
    parser.add_argument("--sweeps", default="resid_pre,head_out,head_out_by_pos")
    parser.add_argument(
        "--tl-by-pos", action="store_true", help="also time TransformerLens's per-(layer, pos, head) sweep (slow)"
    )
    parser.add_argument("--worker", nargs=4, metavar=("FOLDER", "CONTENDER", "SWEEP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        folder, contender, sweep, out = args.worker
        worker(
            Path(folder),
            json.loads(Path(out).with_suffix(".json.in").read_text()),
            contender,
            sweep,
            args.threads,
            Path(out),
        )
        return

    print(
        f"torch {torch.__version__}, {args.threads} threads, GPT-2 small shape (random weights), "
        f"{args.seq}-token prompts, {args.rounds} round(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gpt2-small-random"
        pair = make_checkpoint(folder, args.seq)
        for sweep in args.sweeps.split(","):
            contenders = ["ours", "ours_attribution"] if sweep == "head_out_by_pos" else ["transformer_lens", "ours"]
            if sweep == "head_out_by_pos" and args.tl_by_pos:
                contenders.insert(0, "transformer_lens")
            results: dict[str, list[dict]] = {c: [] for c in contenders}
            values: dict[str, torch.Tensor] = {}
            for round_ in range(args.rounds):
                order = contenders if round_ % 2 == 0 else contenders[::-1]  # taking turns
                for contender in order:
                    out = Path(tmp) / f"{sweep}-{contender}-{round_}"
                    out.with_suffix(".json.in").write_text(json.dumps(pair))
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--threads",
                            str(args.threads),
                            "--worker",
                            str(folder),
                            contender,
                            sweep,
                            str(out),
                        ],
                        check=True,
                    )
                    results[contender].append(json.loads(out.read_text()))
                    values[contender] = torch.load(out.with_suffix(".pt"))
            print(f"\n{sweep}: result shape {tuple(values['ours'].shape)}")
            if "transformer_lens" in values:
                difference = float((values["ours"] - values["transformer_lens"]).abs().max())
                assert difference < 1e-4, f"{sweep}: ours and TransformerLens differ by {difference}"
                print(f"  max |ours - TransformerLens| = {difference:.1e}")
            reference = "transformer_lens" if "transformer_lens" in results else "ours"
            ref_best = min(r["seconds"] for r in results[reference])
            ref_cpu = min(r["cpu_seconds"] for r in results[reference])
            for contender, runs in results.items():
                best = min(r["seconds"] for r in runs)
                cpu = min(r["cpu_seconds"] for r in runs)
                peak = max(r["peak_mb"] - r["rss_mb"] for r in runs)
                rss = max(r["rss_mb"] for r in runs)
                times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
                print(
                    f"  {contender:17s} wall {best:8.2f} s (runs: {times}) {ref_best / best:6.1f}x {reference}; "
                    f"CPU {cpu:8.2f} s {ref_cpu / cpu:6.1f}x; peak RSS {rss + peak:6.0f} MB = {rss:.0f} loaded "
                    f"+ {peak:.0f} during the sweep"
                )
            if "ours_attribution" in values:
                a, p = values["ours_attribution"].flatten(), values["ours"].flatten()
                correlation = float(torch.corrcoef(torch.stack([a, p]))[0, 1])
                ours_best = min(r["seconds"] for r in results["ours"])
                attribution_best = min(r["seconds"] for r in results["ours_attribution"])
                print(
                    f"  attribution patching vs our real sweep: {ours_best / attribution_best:.1f}x faster (wall), "
                    f"correlation {correlation:.3f}"
                )


if __name__ == "__main__":
    main()
