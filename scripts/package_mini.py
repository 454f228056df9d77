"""Turn the two training phases of `scripts/train_mini.py` into the files shipped as `--model mini`.

    python scripts/package_mini.py runs/mini-phase1 runs/mini-phase2 --out src/gpt2atlas/shipped/mini

What ships (<= 25 MB, see src/gpt2atlas/shipped/__init__.py):
- config.json + model.safetensors: the final weights in float16 (a Hugging Face GPT-2 folder);
- history/: the whole metrics history (phase 2's steps and tokens continue phase 1's), both phases' recipes,
  the position-embedding table of every checkpoint, one midway checkpoint whose token embedding is stored
  as int8 rows with a float16 scale per row (a full float16 checkpoint is 13.7 MB: only the final one fits),
  the 2,000 tokens most frequent in the training data (the head-score probes), and the seed and sha256 from
  which the initial weights are regenerated exactly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gpt2atlas.model.loading import save_checkpoint
from gpt2atlas.shipped import HISTORY, INIT_FILE, METRICS_FILE, POSITIONS_FILE, PROBES_FILE, RUN_FILE
from gpt2atlas.training.data import frequent_tokens, prepare_tokens
from gpt2atlas.training.history import PROBE_TOKENS, WPE, WTE, init_sha256, quantize_rows
from gpt2atlas.training.recipe import TrainConfig, initial_model


def _steps(run: Path) -> list[tuple[int, Path]]:
    return sorted((int(p.name.split("-")[1]), p) for p in (run / "checkpoints").glob("step-*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase1", type=Path)
    parser.add_argument("phase2", type=Path)
    parser.add_argument("--out", type=Path, default=Path("src/gpt2atlas/shipped/mini"))
    parser.add_argument("--midway", type=int, default=1024, help="phase-1 step of the midway checkpoint")
    args = parser.parse_args()

    phase1 = json.loads((args.phase1 / "run.json").read_text())
    phase2 = json.loads((args.phase2 / "run.json").read_text())
    config1 = TrainConfig.from_dict(phase1["config"])
    steps1, steps2 = _steps(args.phase1), _steps(args.phase2)
    offset_steps = steps1[-1][0]
    offset_tokens = offset_steps * config1.batch_tokens

    if args.out.exists():
        shutil.rmtree(args.out)
    history = args.out / HISTORY
    history.mkdir(parents=True)

    # the final weights, float16
    final = load_file(str(steps2[-1][1] / "model.safetensors"))
    shutil.copy(steps2[-1][1] / "config.json", args.out / "config.json")
    save_file(
        {k: v.half().contiguous() for k, v in final.items()},
        str(args.out / "model.safetensors"),
        metadata={"format": "pt"},
    )

    # metrics: one history, phase 2 continuing phase 1's step and token counts
    lines = []
    for run, step_offset, token_offset, phase in (
        (args.phase1, 0, 0, 1),
        (args.phase2, offset_steps, offset_tokens, 2),
    ):
        for line in (run / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            if phase == 2 and row["step"] == 0:
                continue  # phase 1's last step
            row["step"] += step_offset
            row["tokens"] += token_offset
            row["phase"] = phase
            lines.append(json.dumps(row))
    (history / METRICS_FILE).write_text("\n".join(lines) + "\n")

    # position embeddings of every checkpoint, by global step
    positions = {}
    for run, step_offset in ((args.phase1, 0), (args.phase2, offset_steps)):
        for step, folder in _steps(run):
            if run == args.phase2 and step == 0:
                continue
            positions[f"step-{step + step_offset:06d}"] = load_file(str(folder / "model.safetensors"))[WPE].half()
    save_file(positions, str(history / POSITIONS_FILE))

    # the midway checkpoint: int8 token embedding rows, everything else float16
    midway = load_file(str(args.phase1 / "checkpoints" / f"step-{args.midway:06d}" / "model.safetensors"))
    rows, scale = quantize_rows(midway.pop(WTE))
    save_file(
        {**{k: v.half().contiguous() for k, v in midway.items()}, f"{WTE}.int8": rows, f"{WTE}.scale": scale},
        str(history / f"step-{args.midway:06d}.safetensors"),
    )

    # the initial weights: regenerated from the recipe's seed, checked against this hash
    init = initial_model(config1)
    reference = load_file(str(steps1[0][1] / "model.safetensors"))
    regenerated = _hf_tensors(init)
    # (compared at float16, the precision in which a checkpoint may have travelled)
    worst = max(float((regenerated[k].half().float() - reference[k].half().float()).abs().max()) for k in reference)
    if worst > 0:
        print(f"error: the regenerated initial weights differ from step 0 by up to {worst}", file=sys.stderr)
        return 1
    (history / INIT_FILE).write_text(json.dumps({"seed": config1.seed, "sha256": init_sha256(init)}, indent=1) + "\n")

    # head-score probes: the tokens most frequent in the training split
    tokens = prepare_tokens(
        config1.data if Path(config1.data).exists() else phase1["tokens"]["spec"], val_fraction=config1.val_fraction
    )
    ids, share = frequent_tokens(tokens.train, PROBE_TOKENS)
    (history / PROBES_FILE).write_text(
        json.dumps(
            {
                "description": f"the {PROBE_TOKENS} tokens most frequent in the training split, most frequent first",
                "share_of_training_tokens": round(share, 4),
                "ids": ids,
            }
        )
        + "\n"
    )

    # the recipe as the data's name, not the path of the token folder the run may have read it from
    for phase in (phase1, phase2):
        phase["config"]["data"] = phase["tokens"]["spec"]
    phase2["config"]["init_from"] = "phase 1's final weights"
    (history / RUN_FILE).write_text(
        json.dumps(
            {
                "recipe": "scripts/train_mini.py",
                "phases": [
                    {"config": phase1["config"], "steps": offset_steps, "tokens": offset_tokens},
                    {
                        "config": phase2["config"],
                        "steps": steps2[-1][0],
                        "tokens": steps2[-1][0] * config1.batch_tokens,
                    },
                ],
                "data": phase1["tokens"],
                "midway_step": args.midway,
            },
            indent=1,
        )
        + "\n"
    )
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out}: {total / 1e6:.1f} MB")
    return 0


def _hf_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under their Hugging Face names (as save_checkpoint writes them)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(model, folder)  # type: ignore[arg-type]
        return {k: v.float() for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}


if __name__ == "__main__":
    sys.exit(main())
