"""Make the corpus atlas shipped with `--model mini`: src/gpt2atlas/shipped/mini_atlas/{atlas.sqlite,run.json}.

    python scripts/make_mini_atlas.py [--tokens 60000] [--out src/gpt2atlas/shipped/mini_atlas]

It scans held-out text: the val split (the last 5% of each document, never trained on) of mini's training data,
`python-docs,python-stdlib` (see shipped/mini/history/run.json). The package's budget for it is 3 MB (atlas.sqlite
and run.json together). At the scan's defaults (top_k 20, 4 examples per band, 10 token means and logits each way)
an atlas of mini is 4.7 MB at 100k tokens, nearly all of it fixed by those settings rather than the token count
(the windows cost 2 bytes a token). Measured at 100k tokens (atlas.sqlite, with a per-neuron context scale; the
per-example `scale` column now stored adds about 8 bytes an example): top_k 10 with 2 band examples and 10 tokens
3.5 MB, with 1 and 10 3.2 MB, with 1 and 5 2.8 MB (2.9 MB with the scale column; 3.1 MB with run.json). So the
shipped one keeps what the views show of the top examples (the dashboard shows 10, the report 6), one example per
band, 5 token means and 5 promoted/suppressed tokens, over 60k tokens: 2.78 MB + 0.20 MB run.json. run.json
records the settings. The script refuses to write an atlas over the budget.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from gpt2atlas.atlas.job import AtlasRequest, run_atlas
from gpt2atlas.atlas.store import DATABASE, RUN_FILE
from gpt2atlas.cli.commands.atlas import real_recipe

DATA = "python-docs,python-stdlib"  # mini's training data
BUDGET = 3_000_000  # bytes, atlas.sqlite and run.json together
TOP_K, BAND_EXAMPLES, TOP_TOKENS = 10, 1, 5


def make(out: Path, tokens: int) -> int:
    recipe = real_recipe()
    base = recipe.settings
    compact = replace(
        recipe, settings=lambda options: replace(base(options), band_examples=BAND_EXAMPLES, top_tokens=TOP_TOKENS)
    )
    with tempfile.TemporaryDirectory() as scratch:
        request = AtlasRequest(
            out=Path(scratch) / "atlas", model="mini", data=DATA, tokens=tokens, top_k=TOP_K, split="val"
        )
        folder = run_atlas(request, compact)
        size = sum((folder / name).stat().st_size for name in (DATABASE, RUN_FILE))
        print(
            f"{DATABASE} {(folder / DATABASE).stat().st_size:,} bytes, {RUN_FILE} {(folder / RUN_FILE).stat().st_size:,}"
        )
        if size > BUDGET:
            print(f"error: the atlas takes {size:,} bytes, over the budget of {BUDGET:,}: scan fewer tokens")
            return 1
        out.mkdir(parents=True, exist_ok=True)
        for name in (DATABASE, RUN_FILE):
            shutil.copyfile(folder / name, out / name)
    print(f"wrote {out / DATABASE} and {out / RUN_FILE}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=60_000, help="stream tokens to scan (default 60,000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "src/gpt2atlas/shipped/mini_atlas")
    args = parser.parse_args()
    return make(args.out, args.tokens)


if __name__ == "__main__":
    sys.exit(main())
