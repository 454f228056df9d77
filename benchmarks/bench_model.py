"""Our GPT-2 against Hugging Face transformers and TransformerLens, side by side in one process.

Builds a GPT-2-small-shaped random checkpoint (the real weights are not needed for speed), then prints
tokens/s and peak memory for: the plain forward pass, capturing every activation, and generation.

    python benchmarks/bench_model.py [--threads 2] [--batch 8] [--seq 128] [--repeats 5] [--retain-freed-memory]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch


def _libc():
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def release_freed_memory() -> None:
    """Hand memory freed by earlier runs back to the OS, so it is not silently reused below the baseline."""
    import gc

    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS (process-wide; False if refused).

    By default glibc serves blocks over 32 MB with their own mmap and trims the heap's free top, so memory a call
    frees is handed back and its next call page-faults it in afresh (the kernel zeroes every page).
    """
    libc = _libc()
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return libc is not None and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**30) and libc.mallopt(M_MMAP_THRESHOLD, 2**30))


def cache_megabytes(cache) -> float:
    """What the returned activations themselves occupy."""
    return sum(t.numel() * t.element_size() for t in cache.values()) / 2**20


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def peak_extra_rss(fn: Callable[[], object]) -> int | None:
    """Bytes of resident memory `fn` adds at its peak above what the process held before (None off Linux).

    Reads the kernel's high-water mark after resetting it, so no sampling thread competes with the 2 compute
    threads (one did, and slowed the timed runs unevenly).
    """
    release_freed_memory()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset VmHWM to the current RSS
        base = _status_kib("VmRSS")
    except OSError:
        return None
    fn()
    return (_status_kib("VmHWM") - base) * 1024


def best_times(fns: list[Callable[[], object]], repeats: int, retained: bool) -> list[tuple[float, int | None]]:
    """Fastest wall time of each function over `repeats` rounds after one warm-up each, then its peak extra RSS.

    The functions take turns within each round, so a slow spell of a shared machine falls on all of them.
    Each timed call starts with the memory freed by earlier calls handed back to the OS, as in a fresh process:
    otherwise a call reuses, without page faults, whatever the contender before it freed, and the order of the
    contenders decides part of the result. If `retained` (--retain-freed-memory), every call may reuse it instead.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if not retained:
                release_freed_memory()
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [(min(t), peak_extra_rss(fn)) for t, fn in zip(times, fns)]


def inference(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` run inside torch.inference_mode."""

    def run() -> object:
        with torch.inference_mode():
            return fn()

    return run


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
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer,
        d_model=c.n_embd,
        n_ctx=c.n_positions,
        d_head=c.n_embd // c.n_head,
        n_heads=c.n_head,
        d_mlp=4 * c.n_embd,
        d_vocab=c.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        original_architecture="GPT2LMHeadModel",
    )
    model = HookedTransformer(cfg)
    model.load_and_process_state_dict(
        convert_gpt2_weights(hf_model, cfg),
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        refactor_factored_attn_matrices=False,
    )
    return model.eval()


def generation_section(hf, ours, prompt: torch.Tensor, new: int, repeats: int, retained: bool) -> None:
    """Greedy tokens/s against HF generate, and what 5 samples in one batch gain over one, for both."""

    def hf_generate(**kwargs):
        return hf.generate(prompt, max_new_tokens=new, min_new_tokens=new, pad_token_id=50256, **kwargs)

    with section(f"generation ({new} new tokens after a {prompt.shape[1]}-token prompt, KV cache)"):
        (t_hf, _), (t_ours, _), (t_hf5, _), (t_five, _) = best_times(
            [
                lambda: hf_generate(do_sample=False),
                lambda: ours.generate(prompt, new, temperature=0, stop_at_eos=False),
                lambda: hf_generate(do_sample=True, top_k=0, num_return_sequences=5),
                lambda: ours.generate(prompt, new, temperature=1.0, num_samples=5, seed=0, stop_at_eos=False),
            ],
            repeats,
            retained,
        )
        row("Hugging Face generate, greedy", new / t_hf, new / t_hf)
        row("gpt2atlas generate, greedy", new / t_ours, new / t_hf)
        row("Hugging Face generate, 5 samples in one batch", 5 * new / t_hf5, new / t_hf)
        row("gpt2atlas generate, 5 samples in one batch", 5 * new / t_five, new / t_hf)
        print(
            f"  5 samples in one batch give {5 * t_ours / t_five:.2f}x the tokens/s of one sample "
            f"(Hugging Face: {5 * t_hf / t_hf5:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="let glibc keep freed memory for reuse (all contenders), instead of starting each "
        "timed call with it handed back to the OS",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        parser.error("--retain-freed-memory needs glibc, and a glibc whose mallopt accepts 1 GiB thresholds")
    retained = args.retain_freed_memory

    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2atlas import load_model

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 small shape, sdpa attention
    hf_eager = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()  # sdpa returns no attentions
    hf_eager.load_state_dict(hf.state_dict())
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_model(Path(folder))
    tl = transformer_lens_model(hf)
    tokens = torch.randint(0, 50257, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    n_tokens = tokens.numel()
    print(
        f"GPT-2 small shape (124M), fp32, batch {args.batch} x {args.seq}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; best of {args.repeats} interleaved rounds; freed memory "
        f"{'retained for reuse' if retained else 'handed back to the OS before each timed call'}"
    )

    with section("forward pass (logits)"):
        forward = [inference(lambda: hf(tokens).logits), inference(lambda: ours(tokens))]
        (t_hf, m_hf), (t_ours, m_ours) = best_times(forward, args.repeats, retained)
        row("Hugging Face GPT2LMHeadModel (sdpa)", n_tokens / t_hf, n_tokens / t_hf, m_hf)
        row("gpt2atlas", n_tokens / t_ours, n_tokens / t_hf, m_ours)

    with section("every activation (hidden states + attention patterns)"):
        # TransformerLens's run_with_cache is usually called as is, with autograd on: its forward then also keeps
        # what backward would need. Ours enters inference mode itself, so the same call costs the same either way.
        n_layer = ours.cfg.n_layer  # what HF returns: the stream entering each block, ln_final's output, patterns
        as_hf = {
            "blocks.0.hook_resid_pre",
            "unembed.hook_in",
            *(f"blocks.{layer}.hook_resid_post" for layer in range(n_layer - 1)),
            *(f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layer)),
        }
        fns = [
            inference(lambda: hf_eager(tokens, output_hidden_states=True, output_attentions=True)),
            lambda: ours.run_with_cache(tokens),
            lambda: ours.run_with_cache(tokens, names=sorted(as_hf)),
        ]
        if tl is not None:
            fns += [lambda: tl.run_with_cache(tokens), inference(lambda: tl.run_with_cache(tokens))]
        results = best_times(fns, args.repeats, retained)
        (t_hf, m_hf), (t_ours, m_ours), (t_same, m_same) = results[:3]
        row("HF output_hidden_states+output_attentions", n_tokens / t_hf, n_tokens / t_hf, m_hf)
        row("gpt2atlas run_with_cache (every hook)", n_tokens / t_ours, n_tokens / t_hf, m_ours)
        row("gpt2atlas run_with_cache (the same as HF)", n_tokens / t_same, n_tokens / t_hf, m_same)
        if tl is None:
            print("  TransformerLens not installed: skipped")
        else:
            (t_tl, m_tl), (t_tl_inf, m_tl_inf) = results[3:]
            row("TransformerLens 3 run_with_cache (as called)", n_tokens / t_tl, n_tokens / t_hf, m_tl)
            row("TransformerLens 3, inside inference_mode", n_tokens / t_tl_inf, n_tokens / t_hf, m_tl_inf)
            for how, t, m in (("as called", t_tl, m_tl), ("in inference mode", t_tl_inf, m_tl_inf)):
                memory = f", {m_ours / m:.2f}x its peak memory" if m and m_ours is not None else ""
                print(f"  gpt2atlas vs TransformerLens {how}: {t / t_ours:.2f}x faster{memory}")
            with torch.inference_mode():
                ours_mb = cache_megabytes(ours.run_with_cache(tokens)[1])
                tl_mb = cache_megabytes(tl.run_with_cache(tokens)[1])
            print(f"  activations returned: gpt2atlas {ours_mb:.0f} MB, TransformerLens {tl_mb:.0f} MB")

    generation_section(hf, ours, tokens[:1, :16], args.new_tokens, args.repeats, retained)


if __name__ == "__main__":
    main()
