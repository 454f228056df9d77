"""Our GPT-2 against Hugging Face transformers and TransformerLens, side by side in one process.

Builds a GPT-2-small-shaped random checkpoint (the real weights are not needed for speed), then prints
tokens/s and peak memory for: the plain forward pass, capturing every activation, and generation.

    python benchmarks/bench_model.py [--threads 2] [--batch 8] [--seq 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import psutil
import torch


def release_freed_memory() -> None:
    """Hand memory freed by earlier runs back to the OS, so it is not silently reused below the baseline."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def cache_megabytes(cache) -> float:
    """What the returned activations themselves occupy."""
    return sum(t.numel() * t.element_size() for t in cache.values()) / 2**20


class PeakRSS:
    """Samples this process's RSS in a thread; `.peak` is the highest value above the starting one."""

    def __init__(self, every: float = 0.005) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self) -> "PeakRSS":
        release_freed_memory()
        self._process = psutil.Process()
        self._base = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss - self._base)
            time.sleep(self.every)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, int]:
    """Fastest wall time of `repeats` runs after one warm-up, and the peak extra RSS seen."""
    fn()
    times, peak = [], 0
    for _ in range(repeats):
        with PeakRSS() as rss:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        peak = max(peak, rss.peak)
    return min(times), peak


@contextmanager
def section(title: str):
    print(f"\n{title}")
    print(f"  {'':<44}{'tokens/s':>10}{'ratio':>9}{'peak MB':>10}")
    yield


def row(label: str, tokens_per_s: float, reference: float, peak_bytes: int | None = None) -> None:
    peak = f"{peak_bytes / 2**20:>10.0f}" if peak_bytes is not None else f"{'':>10}"
    print(f"  {label:<44}{tokens_per_s:>10.1f}{tokens_per_s / reference:>8.2f}x{peak}")


def transformer_lens_model(hf_model):
    """TransformerLens 3's HookedTransformer on the same weights, without weight processing (None if absent)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    except ImportError:
        return None
    c = hf_model.config
    cfg = HookedTransformerConfig(n_layers=c.n_layer, d_model=c.n_embd, n_ctx=c.n_positions, d_head=c.n_embd // c.n_head,
                                  n_heads=c.n_head, d_mlp=4 * c.n_embd, d_vocab=c.vocab_size, act_fn="gelu_new",
                                  normalization_type="LN", original_architecture="GPT2LMHeadModel")
    model = HookedTransformer(cfg)
    model.load_and_process_state_dict(convert_gpt2_weights(hf_model, cfg), fold_ln=False, center_writing_weights=False,
                                      center_unembed=False, refactor_factored_attn_matrices=False)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2atlas import load_model

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 small shape, sdpa attention
    hf_eager = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()
    hf_eager.load_state_dict(hf.state_dict())
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_model(Path(folder))
    tokens = torch.randint(0, 50257, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    n_tokens = tokens.numel()
    print(f"GPT-2 small shape (124M), fp32, batch {args.batch} x {args.seq}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")

    with torch.inference_mode():
        with section("forward pass (logits)"):
            t_hf, m_hf = best_time(lambda: hf(tokens).logits, args.repeats)
            t_ours, m_ours = best_time(lambda: ours(tokens), args.repeats)
            row("Hugging Face GPT2LMHeadModel (sdpa)", n_tokens / t_hf, n_tokens / t_hf, m_hf)
            row("gpt2atlas", n_tokens / t_ours, n_tokens / t_hf, m_ours)

        with section("every activation (hidden states + attention patterns)"):
            t_hf, m_hf = best_time(lambda: hf_eager(tokens, output_hidden_states=True, output_attentions=True),
                                   args.repeats)
            t_ours, m_ours = best_time(lambda: ours.run_with_cache(tokens), args.repeats)
            row("HF output_hidden_states+output_attentions", n_tokens / t_hf, n_tokens / t_hf, m_hf)
            row("gpt2atlas run_with_cache (every hook)", n_tokens / t_ours, n_tokens / t_hf, m_ours)
            tl = transformer_lens_model(hf)
            if tl is None:
                print("  TransformerLens not installed: skipped")
            else:
                t_tl, m_tl = best_time(lambda: tl.run_with_cache(tokens), args.repeats)
                row("TransformerLens 3 run_with_cache", n_tokens / t_tl, n_tokens / t_hf, m_tl)
                print(f"  gpt2atlas vs TransformerLens: {t_tl / t_ours:.2f}x faster, "
                      f"{m_ours / max(m_tl, 1):.2f}x its peak memory")
                ours_mb = cache_megabytes(ours.run_with_cache(tokens)[1])
                tl_mb = cache_megabytes(tl.run_with_cache(tokens)[1])
                print(f"  activations returned: gpt2atlas {ours_mb:.0f} MB, TransformerLens {tl_mb:.0f} MB")
                del tl

    prompt = tokens[:1, :16]
    new = args.new_tokens
    with section(f"generation ({new} new tokens after a 16-token prompt, greedy, KV cache)"):
        t_hf, _ = best_time(lambda: hf.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                                pad_token_id=50256), args.repeats)
        t_ours, _ = best_time(lambda: ours.generate(prompt, new, temperature=0, stop_at_eos=False), args.repeats)
        row("Hugging Face generate", new / t_hf, new / t_hf)
        row("gpt2atlas generate", new / t_ours, new / t_hf)
        t_five, _ = best_time(lambda: ours.generate(prompt, new, temperature=1.0, num_samples=5, seed=0,
                                                    stop_at_eos=False), args.repeats)
        row("gpt2atlas generate, 5 samples in one batch", 5 * new / t_five, new / t_hf)
        print(f"  5 samples in one batch: {5 * t_ours / t_five:.2f}x the tokens/s of one sample")


if __name__ == "__main__":
    main()
