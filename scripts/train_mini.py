"""Train the `mini` model that gpt2atlas ships: the whole recipe, pinned.

    python scripts/train_mini.py --out runs/mini                 # on 2 CPU cores: several sittings
    python scripts/train_mini.py --out runs/mini --resume        # the next sitting
    python scripts/train_mini.py --out runs/mini --device cuda --micro-batch 128   # one GPU

Everything that decides the weights is fixed below (data, shape, schedule, seed); the flags only decide where
and how the run executes (device, micro-batch, sittings), which do not change the result beyond float
rounding. `--data` may point at a token folder prepared from the same corpora on another machine (its
manifest records the original inputs and their hashes), for machines without Debian's python3.11-doc.
`scripts/package_mini.py` then turns the run into the files under src/gpt2atlas/data/mini/.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from gpt2atlas.errors import AtlasError
from gpt2atlas.training import TrainConfig, train
from gpt2atlas.training.recipe import preset_shape
from gpt2atlas.training.run_folder import RunFolder

# English prose (the Python documentation) mixed with Python source; see README "Training".
DATA = "python-docs,python-stdlib"
MAX_STEPS = 9900  # 9,900 steps x 32,768 tokens = 324M tokens, ~37 passes over the 8.8M training tokens

RECIPE = TrainConfig(
    data=DATA,
    **preset_shape("mini"),  # 2 layers, 4 heads, d_model 128, context 256, GPT-2's 50,257-token vocabulary
    max_steps=MAX_STEPS,
    batch_tokens=128 * 256,
    lr=3e-3,
    min_lr_ratio=0.1,
    warmup_steps=300,
    weight_decay=0.1,
    seed=0,
    val_fraction=0.05,
    precision="bfloat16",
    eval_every=250,
    eval_tokens=1 << 20,  # the whole validation split (~0.5M tokens)
    save_every=500,
)


# Phase 2: the same recipe again from phase 1's final weights (a warm restart of the schedule), because
# after phase 1 the induction head was still forming (score 0.01 -> 0.04 -> 0.08 at steps 1,024 / 4,096 / 9,900).
PHASE2 = replace(RECIPE, max_steps=8500, warmup_steps=200, seed=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/mini")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--micro-batch", type=int, default=16, help="sequences per forward pass (memory only)")
    parser.add_argument("--data", default=DATA, help="the corpora, or a token folder prepared from them")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--time-limit", type=float, help="end this sitting after MIN minutes (state saved)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--phase2-from", help="run phase 2 from this phase-1 model (folder or safetensors)")
    args = parser.parse_args()
    try:
        recipe = replace(PHASE2, init_from=args.phase2_from) if args.phase2_from else RECIPE
        base = RunFolder(args.out).read_config() if args.resume else recipe.with_overrides(data=args.data)
        config = base.with_overrides(device=args.device, micro_batch=args.micro_batch, max_steps=args.max_steps)
        result = train(
            config,
            args.out,
            resume=args.resume,
            time_limit_s=args.time_limit * 60 if args.time_limit else None,
            threads=args.threads,
        )
    except AtlasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"step {result.step}: {result.tokens:,} tokens, validation loss {result.val_loss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
