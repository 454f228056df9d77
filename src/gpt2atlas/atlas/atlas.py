"""`Atlas.open(path)`: a finished atlas, read-only, answering by neuron, head, window or search.

Every answer is a few indexed lookups in the SQLite file (see store.py), so it takes milliseconds on a
GPT-2-small-sized atlas and needs neither the model nor the corpus.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from gpt2atlas.atlas.entries import (
    Band,
    Example,
    HeadEntry,
    HeadExample,
    HeadStats,
    Histogram,
    LogitEffect,
    NeuronEntry,
    NeuronStats,
    SearchHit,
    TokenLogit,
    TokenMean,
)
from gpt2atlas.atlas.search import ranked, search_query
from gpt2atlas.atlas.store import (
    DATABASE,
    EDGES_KEY,
    TOKENS,
    RunInfo,
    check_database,
    read_run,
    unpack,
    unpack_context,
    untrim,
)
from gpt2atlas.errors import InputError

# an example's columns, with its window's tokens (examples keep none of their own)
_EXAMPLE = "e.window, e.position, e.activation, e.start, e.scale, e.activations, w.tokens"
_WINDOW = "JOIN windows w ON w.w = e.window"


def _context(
    start: int, blob: bytes, window: bytes, scale: float, at: int, activation: float
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """An example's tokens (sliced from its window's) and its context activations (see store.unpack_context)."""
    values = unpack_context(blob, scale, at - start, activation)
    tokens = unpack(window, TOKENS)[start : start + len(values)]
    return tuple(tokens.tolist()), tuple(values.tolist())


def _example(row: tuple) -> Example:
    window, position, activation, start, scale, activations, tokens = row
    return Example(
        window, position, activation, start, *_context(start, activations, tokens, scale, position, activation)
    )


class Atlas:
    """A finished atlas (see `open`); `.neuron`, `.head`, `.window`, `.search`, and `.run`, how it was made."""

    def __init__(self, path: Path, connection: sqlite3.Connection, run: RunInfo) -> None:
        self.path = path
        self._db = connection
        self.run = run
        self.layers, self.neurons_per_layer = self._shape("neurons")
        heads = self._shape("heads")
        self.heads_per_layer = heads[1]
        edges = connection.execute("SELECT value FROM atlas_meta WHERE key = ?", (EDGES_KEY,)).fetchone()
        self._edges: tuple[float, ...] = tuple(json.loads(edges[0])) if edges else ()

    @classmethod
    def open(cls, path: str | Path) -> Atlas:
        """The atlas in folder `path` (or its atlas.sqlite), read-only; InputError naming the path when it is
        missing, not an atlas, of a newer schema, or a scan that has not finished."""
        path = Path(path)
        database = path / DATABASE if os.path.isdir(path) else path
        check_database(database)
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)
        run = read_run(connection, database)
        if not run.complete:
            connection.close()
            folder = database.parent
            raise InputError(f"{database}: its scan has not finished: resume it with gpt2atlas atlas --resume {folder}")
        return cls(database, connection, run)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shape(self, table: str) -> tuple[int, int]:
        layers, per_layer = self._db.execute(f"SELECT COUNT(DISTINCT layer), MAX(idx) + 1 FROM {table}").fetchone()
        return int(layers), int(per_layer or 0)

    def _check(self, layer: int, index: int, per_layer: int, what: str) -> None:
        if not 0 <= layer < self.layers:
            raise InputError(f"layer={layer} is out of range: the atlas has layers 0..{self.layers - 1}")
        if not 0 <= index < per_layer:
            raise InputError(f"index={index} is out of range: the atlas has {what} 0..{per_layer - 1} per layer")

    # ----- entries ---------------------------------------------------------------------------------------------
    def neuron(self, layer: int, index: int) -> NeuronEntry:
        self._check(layer, index, self.neurons_per_layer, "neurons")
        key = (layer, index)
        db = self._db
        row = db.execute("SELECT * FROM neurons WHERE layer = ? AND idx = ?", key).fetchone()
        count, mean, std, skewness, kurtosis, minimum, maximum, active_share, dead = row[2:]
        stats = NeuronStats(count, mean, std, skewness, kurtosis, minimum, maximum, active_share, bool(dead))
        examples = tuple(
            _example(r)
            for r in db.execute(
                f"SELECT {_EXAMPLE} FROM neuron_examples e {_WINDOW} WHERE layer = ? AND idx = ? ORDER BY rank", key
            )
        )
        first, counts = db.execute("SELECT first, counts FROM histograms WHERE layer = ? AND idx = ?", key).fetchone()
        histogram = Histogram(self._edges, untrim(first, counts, len(self._edges) - 1))
        drawn: dict[int, list[Example]] = {}
        for band, *rest in db.execute(
            f"SELECT band, {_EXAMPLE} FROM band_examples e {_WINDOW} WHERE layer = ? AND idx = ? ORDER BY band, rank",
            key,
        ):
            drawn.setdefault(band, []).append(_example(tuple(rest)))
        bands = tuple(
            Band(low, high, count, tuple(drawn.get(band, ())))
            for band, low, high, count in db.execute(
                "SELECT band, low, high, count FROM bands WHERE layer = ? AND idx = ? ORDER BY band", key
            )
        )
        means = tuple(
            TokenMean(*r)
            for r in db.execute(
                "SELECT token, mean, count FROM token_means WHERE layer = ? AND idx = ? ORDER BY rank", key
            )
        )
        logits: dict[int, list[TokenLogit]] = {1: [], -1: []}
        for sign, token, logit in db.execute(
            "SELECT sign, token, logit FROM logit_effect WHERE layer = ? AND idx = ? ORDER BY sign DESC, rank", key
        ):
            logits[sign].append(TokenLogit(token, logit))
        effect = LogitEffect(tuple(logits[1]), tuple(logits[-1]))
        return NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)

    def head(self, layer: int, index: int) -> HeadEntry:
        if self.heads_per_layer == 0:
            raise InputError(f"{self.path} holds no heads: it was scanned without them")
        self._check(layer, index, self.heads_per_layer, "heads")
        key = (layer, index)
        row = self._db.execute("SELECT * FROM heads WHERE layer = ? AND idx = ?", key).fetchone()
        examples = tuple(
            HeadExample(
                window, position, k, activation, start, *_context(start, activations, tokens, scale, k, activation)
            )
            for window, position, k, activation, start, scale, activations, tokens in self._db.execute(
                f"SELECT e.window, e.position, e.key, e.activation, e.start, e.scale, e.activations, w.tokens "
                f"FROM head_examples e {_WINDOW} WHERE layer = ? AND idx = ? ORDER BY rank",
                key,
            )
        )
        return HeadEntry(layer, index, examples, HeadStats(*row[2:]))

    def window(self, w: int) -> np.ndarray:
        """Window `w`'s token ids (int64), `<|endoftext|>` first."""
        if not 0 <= w < self.run.windows:
            raise InputError(f"window={w} is out of range: the atlas has windows 0..{self.run.windows - 1}")
        (blob,) = self._db.execute("SELECT tokens FROM windows WHERE w = ?", (w,)).fetchone()
        return unpack(blob, TOKENS).astype(np.int64)

    def token_count(self, token: int) -> int | None:
        """How many scanned positions (after each window's leading end-of-text) held `token`."""
        row = self._db.execute("SELECT count FROM token_counts WHERE token = ?", (int(token),)).fetchone()
        return int(row[0]) if row else 0

    # ----- search ----------------------------------------------------------------------------------------------
    def search(
        self,
        token: int | None = None,
        text: str | None = None,
        min_density: float | None = None,
        max_density: float | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """Neurons and heads with a top example centred on `token` or on a token of `text`, neurons whose token
        means include one, or, by density alone, the neurons whose active share lies within the bounds: the rule
        of atlas/search.py, answered by indexed lookups."""
        query = search_query(token, text, min_density, max_density, limit)
        bounds = (query.low, query.high)
        if not query.tokens:
            rows = self._db.execute(
                "SELECT layer, idx, active_share FROM neurons WHERE active_share BETWEEN ? AND ? "
                "ORDER BY active_share DESC, layer, idx LIMIT ?",
                (*bounds, limit),
            )
            return [SearchHit("neuron", layer, idx, "density", share) for layer, idx, share in rows]
        marks = ",".join("?" * len(query.tokens))
        in_density = (
            "SELECT 1 FROM neurons n WHERE n.layer = t.layer AND n.idx = t.idx AND n.active_share BETWEEN ? AND ?"
        )
        queries = [
            (
                "neuron",
                "example",
                f"SELECT layer, idx, MAX(activation) FROM neuron_examples t WHERE token IN ({marks})",
            ),
            ("neuron", "token_mean", f"SELECT layer, idx, MAX(mean) FROM token_means t WHERE token IN ({marks})"),
        ]
        if not query.dense:
            queries.append(
                ("head", "example", f"SELECT layer, idx, MAX(activation) FROM head_examples t WHERE token IN ({marks})")
            )
        hits = []
        for unit, reason, sql in queries:
            where = f" AND EXISTS ({in_density})" if query.dense and unit == "neuron" else ""
            arguments = [*query.tokens, *(bounds if where else ())]
            for layer, idx, score in self._db.execute(f"{sql}{where} GROUP BY layer, idx", arguments):
                hits.append(SearchHit(unit, layer, idx, reason, float(score)))
        return ranked(hits, limit)
