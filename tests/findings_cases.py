"""The findings whose JSON key tree must never change (users' scripts read findings.json): every area run on the
shipped mini model with option sets that switch each optional key on and off.

`python tests/findings_cases.py --write` records the tree in tests/data/findings_key_tree.json; do that only when
a key is added on purpose (a removed or renamed key breaks users' scripts).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt2atlas import load_model
from gpt2atlas.analysis.base import to_jsonable

TREE_FILE = Path(__file__).parent / "data" / "findings_key_tree.json"
REPEATING = "The cat sat on the mat. The cat sat on the mat because it was warm."
PLAIN = "Once upon a time there was a small village by the sea"
LEAF = "."


def key_tree(value: Any) -> Any:
    """The keys of nested JSON data: dicts keep their keys, a list is the union of its items' trees, leaves are '.'."""
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _union(merged, key_tree(item))
        return [merged] if merged is not None else []
    return LEAF


def _union(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _union(a.get(k), b.get(k)) for k in sorted(set(a) | set(b))}
    if isinstance(a, list) and isinstance(b, list):
        return [_union(a[0] if a else None, b[0] if b else None)] if (a or b) else []
    return a if a != LEAF else b  # a structure beats a leaf (lists of numbers or lists of dicts stay one shape)


def _findings(module: str, *args: Any, **options: Any) -> Callable[[Any], Any]:
    def run(model: Any) -> Any:
        import importlib

        return to_jsonable(importlib.import_module(module).analyze(model, *args, **options).findings)

    return run


def _causes(model: Any) -> Any:
    from gpt2atlas.areas.causes import ANSWER, CLEAN, CORRUPTED, OTHER
    from gpt2atlas.causes import analyze

    return to_jsonable(analyze(model, CLEAN, CORRUPTED, ANSWER, OTHER, sites=("head_out",)))


GEOMETRY = {"max_texts": 40, "all_tokens_budget": 400, "gride_max_rank": 16}
CASES: dict[str, Callable[[Any], Any]] = {
    "embeddings": _findings(
        "gpt2atlas.analysis.embeddings", REPEATING, projections=("pca",), sample_size=300, progress=False
    ),
    "embeddings_no_prompt": _findings(
        "gpt2atlas.analysis.embeddings", projections=("pca",), sample_size=300, progress=False
    ),
    "embeddings_all_maps": _findings(
        "gpt2atlas.analysis.embeddings",
        PLAIN,
        projections=("pca", "tsne", "umap"),
        sample_size=200,
        manifold_size=150,
        progress=False,
    ),
    "weights": _findings("gpt2atlas.analysis.weights"),
    "weights_block": _findings("gpt2atlas.analysis.weights", "blocks.1.mlp.W_in", rows="0:8", cols="0:16"),
    "weights_vector": _findings("gpt2atlas.analysis.weights", "blocks.0.ln1.w"),
    "attention": _findings("gpt2atlas.analysis.attention", REPEATING),
    "attention_plain_chosen": _findings("gpt2atlas.analysis.attention", PLAIN, layer=1, head=2),
    "attention_one_token": _findings("gpt2atlas.analysis.attention", "Hello"),
    "neurons": _findings("gpt2atlas.analysis.neurons", REPEATING),
    "neurons_chosen": _findings("gpt2atlas.analysis.neurons", PLAIN, layer=1, neuron=5, extra_prompts=[REPEATING]),
    "layernorm": _findings("gpt2atlas.analysis.layernorm", REPEATING, superposition_steps=10),
    "layernorm_layer": _findings(
        "gpt2atlas.analysis.layernorm", PLAIN, layer=1, include_first=True, superposition_steps=10
    ),
    "residual": _findings("gpt2atlas.analysis.residual", REPEATING),
    "residual_first": _findings("gpt2atlas.analysis.residual", PLAIN, include_first=True),
    "journey": _findings("gpt2atlas.analysis.journey", REPEATING, projections=("pca",)),
    "journey_umap": _findings("gpt2atlas.analysis.journey", PLAIN, projections=("pca", "umap"), position=3),
    "saliency": _findings("gpt2atlas.analysis.saliency", REPEATING, steps=4),
    "saliency_target": _findings("gpt2atlas.analysis.saliency", PLAIN, target=" sea", steps=4),
    "geometry": _findings("gpt2atlas.geometry.analysis", progress=False, **GEOMETRY),
    "geometry_prompt_layer": _findings(
        "gpt2atlas.geometry.analysis", PLAIN, layer=1, substeps=True, include_first=True, progress=False, **GEOMETRY
    ),
    "causes": _causes,
}


def report_tree(model: Any, folder: Path) -> Any:
    """The key tree of a whole report's findings.json (two prompts, the mini's training history)."""
    from gpt2atlas.report.builder import build_report
    from gpt2atlas.training.history import history_of_shipped

    _, report = build_report(
        model,
        folder / "report.html",
        model_id="mini",
        prompts=[REPEATING, PLAIN],
        max_texts=40,
        history=history_of_shipped("mini"),
        progress=False,
    )
    return key_tree(json.loads(json.dumps(report.findings_data(), default=str)))


def all_trees(folder: Path) -> dict[str, Any]:
    model = load_model("mini")
    trees = {name: key_tree(run(model)) for name, run in CASES.items()}
    trees["report"] = report_tree(model, folder)
    return trees


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/findings_cases.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        TREE_FILE.write_text(json.dumps(all_trees(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {TREE_FILE}")
