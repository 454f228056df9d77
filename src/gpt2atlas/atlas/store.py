"""The atlas's database: one SQLite file, `DIR/atlas.sqlite`, and the run's description, `DIR/run.json`.

During a scan the file is in WAL mode and every shard of windows is committed in one transaction (the running
state, the windows done and the shard's window tokens together), so a scan killed at any moment resumes from
its last commit. Once the entries are written the running state is dropped (a finished scan has nothing to
resume), the file is compacted and switched to a plain rollback journal, so a finished atlas is one small
self-contained file that any SQLite reader can open, read-only media included. Examples keep no tokens of their
own (the `windows` table has them all) and their context activations as int8 (steps of the example's `scale`); histograms share one set of
edges. The tables and indexes are documented in README ("The atlas"); `SCHEMA_VERSION` is kept in
`PRAGMA user_version`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gpt2atlas.atlas.entries import Example, HeadEntry, HeadExample, NeuronEntry
from gpt2atlas.atomic import write_text
from gpt2atlas.errors import InputError

SCHEMA_VERSION = 2
DATABASE = "atlas.sqlite"
RUN_FILE = "run.json"
FORMAT = "gpt2atlas atlas"  # atlas_meta's `format`: marks a SQLite file as ours

TOKENS = "<u2"  # token ids: every GPT-2 id fits in 16 bits
VALUES = "i1"  # activations along an example's tokens, in steps of its `scale` (the views only shade by them)
STEPS = 127  # int8 steps from 0 to the largest |activation| of an example's context
COUNTS = "<i4"  # histogram counts, from the first to the last bin that is not empty
EDGES_KEY = "histogram_edges"  # atlas_meta's key for the edges every histogram shares (a JSON list)

Setting = str | int | float | bool | None
S = TypeVar("S")
E = TypeVar("E", Example, HeadExample)

_SCHEMA = """
CREATE TABLE atlas_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE progress (id INTEGER PRIMARY KEY CHECK (id = 0), windows_done INTEGER NOT NULL,
    windows INTEGER NOT NULL);
CREATE TABLE windows (w INTEGER PRIMARY KEY, tokens BLOB NOT NULL);
CREATE TABLE token_counts (token INTEGER PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE scan_state (name TEXT PRIMARY KEY, dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE neurons (layer INTEGER NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL, mean REAL,
    std REAL, skewness REAL, kurtosis REAL, minimum REAL, maximum REAL, active_share REAL NOT NULL,
    dead INTEGER NOT NULL, PRIMARY KEY (layer, idx)) WITHOUT ROWID;
CREATE TABLE neuron_examples (layer INTEGER NOT NULL, idx INTEGER NOT NULL, rank INTEGER NOT NULL,
    window INTEGER NOT NULL, position INTEGER NOT NULL, token INTEGER NOT NULL, activation REAL NOT NULL,
    start INTEGER NOT NULL, scale REAL NOT NULL, activations BLOB NOT NULL, PRIMARY KEY (layer, idx, rank)) WITHOUT ROWID;
CREATE TABLE histograms (layer INTEGER NOT NULL, idx INTEGER NOT NULL, first INTEGER NOT NULL,
    counts BLOB NOT NULL, PRIMARY KEY (layer, idx)) WITHOUT ROWID;
CREATE TABLE bands (layer INTEGER NOT NULL, idx INTEGER NOT NULL, band INTEGER NOT NULL, low REAL NOT NULL,
    high REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (layer, idx, band)) WITHOUT ROWID;
CREATE TABLE band_examples (layer INTEGER NOT NULL, idx INTEGER NOT NULL, band INTEGER NOT NULL,
    rank INTEGER NOT NULL, window INTEGER NOT NULL, position INTEGER NOT NULL, token INTEGER NOT NULL,
    activation REAL NOT NULL, start INTEGER NOT NULL, scale REAL NOT NULL, activations BLOB NOT NULL,
    PRIMARY KEY (layer, idx, band, rank)) WITHOUT ROWID;
CREATE TABLE token_means (layer INTEGER NOT NULL, idx INTEGER NOT NULL, rank INTEGER NOT NULL,
    token INTEGER NOT NULL, mean REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (layer, idx, rank))
    WITHOUT ROWID;
CREATE TABLE logit_effect (layer INTEGER NOT NULL, idx INTEGER NOT NULL, sign INTEGER NOT NULL,
    rank INTEGER NOT NULL, token INTEGER NOT NULL, logit REAL NOT NULL, PRIMARY KEY (layer, idx, sign, rank))
    WITHOUT ROWID;
CREATE TABLE heads (layer INTEGER NOT NULL, idx INTEGER NOT NULL, queries INTEGER NOT NULL,
    previous_token REAL, first_token REAL, duplicate_token REAL, duplicate_queries INTEGER NOT NULL,
    induction REAL, induction_queries INTEGER NOT NULL, entropy REAL, PRIMARY KEY (layer, idx)) WITHOUT ROWID;
CREATE TABLE head_examples (layer INTEGER NOT NULL, idx INTEGER NOT NULL, rank INTEGER NOT NULL,
    window INTEGER NOT NULL, position INTEGER NOT NULL, key INTEGER NOT NULL, token INTEGER NOT NULL,
    activation REAL NOT NULL, start INTEGER NOT NULL, scale REAL NOT NULL, activations BLOB NOT NULL,
    PRIMARY KEY (layer, idx, rank)) WITHOUT ROWID;
CREATE INDEX neuron_examples_by_token ON neuron_examples (token, activation DESC);
CREATE INDEX head_examples_by_token ON head_examples (token, activation DESC);
CREATE INDEX token_means_by_token ON token_means (token, mean DESC);
CREATE INDEX neurons_by_density ON neurons (active_share);
"""


@dataclass(frozen=True)
class RunInfo:
    """What an atlas was scanned from and how; kept in the database and, readable without SQLite, in run.json.

    `model_digest` and `data_digest` identify the weights and the tokens (a hash of the token manifest), so a
    resumed scan can refuse other inputs; `tokens` counts the stream tokens the `windows` cover."""

    model: str
    model_digest: str
    data: str
    data_digest: str
    manifest: str  # the token manifest (JSON) of `data`, as training.data.prepare_tokens wrote it
    split: str
    context: int
    windows: int
    tokens: int
    settings: tuple[tuple[str, Setting], ...]
    versions: tuple[tuple[str, str], ...]
    schema: int = SCHEMA_VERSION
    complete: bool = False

    @property
    def top_k(self) -> int:
        """The top examples kept per unit (from the settings; 0 where they do not say)."""
        value = dict(self.settings).get("top_k", 0)
        return value if isinstance(value, int) else 0

    def to_json(self) -> str:
        values = asdict(self)
        values.update(manifest=json.loads(self.manifest), settings=dict(self.settings), versions=dict(self.versions))
        return json.dumps(values, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunInfo:
        values = json.loads(text)
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in names}
        values.update(
            manifest=json.dumps(values["manifest"], sort_keys=True),
            settings=tuple(values["settings"].items()),
            versions=tuple(values["versions"].items()),
        )
        return cls(**values)

    def differences(self, other: RunInfo) -> list[str]:
        """What makes `other` another scan than this one: `name (this vs other)` for each input that differs."""
        said = {"model_digest": "model", "data_digest": "data"}
        shown = {"model_digest": (self.model, other.model), "data_digest": (self.data, other.data)}
        found = []
        for name in ("model_digest", "data_digest", "split", "context", "windows"):
            if getattr(self, name) != getattr(other, name):
                mine, theirs = shown.get(name, (getattr(self, name), getattr(other, name)))
                found.append(f"{said.get(name, name)} ({mine} vs {theirs})")
        mine_settings, their_settings = dict(self.settings), dict(other.settings)
        for key in sorted(set(mine_settings) | set(their_settings)):
            if key != "context" and mine_settings.get(key) != their_settings.get(key):
                found.append(f"{key} ({mine_settings.get(key)} vs {their_settings.get(key)})")
        return found


def settings_of(settings: Any) -> tuple[tuple[str, Setting], ...]:
    """A settings dataclass as (name, value) pairs, in field order (its values must be plain JSON scalars)."""
    pairs = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if not isinstance(value, str | int | float | bool | type(None)):
            value = str(value)
        pairs.append((f.name, value))
    return tuple(pairs)


def versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    import torch

    return (
        ("gpt2atlas", metadata.version("gpt2atlas")),
        ("torch", torch.__version__),
        ("python", sys.version.split()[0]),
    )


# ----- encoding --------------------------------------------------------------------------------------------------
def pack(values: Sequence[float] | np.ndarray, dtype: str) -> bytes:
    return np.asarray(values).astype(dtype).tobytes()


def unpack(blob: bytes, dtype: str) -> np.ndarray:
    return np.frombuffer(blob, dtype=dtype)


def context_scale(values: Sequence[float]) -> float:
    """One int8 step of an example's context activations: their largest |value| / 127 (1 when all are 0)."""
    top = float(np.max(np.abs(values))) if len(values) else 0.0
    return top / STEPS if np.isfinite(top) and top > 0 else 1.0


def pack_context(values: Sequence[float], scale: float) -> bytes:
    return np.clip(np.rint(np.asarray(values, np.float64) / scale), -STEPS, STEPS).astype(VALUES).tobytes()


def unpack_context(blob: bytes, scale: float, at: int, activation: float) -> np.ndarray:
    """Context activations from int8 steps of `scale`, with the example's own `activation` (kept in full) put back
    at index `at` (a neuron's position, a head's key; ignored outside the context)."""
    values = unpack(blob, VALUES).astype(np.float64) * scale
    if 0 <= at < len(values):
        values[at] = activation
    return values


def _at(example: Example | HeadExample) -> int:
    """Where in its context an example's `activation` is: a neuron's own position, a head's key."""
    return (example.key if isinstance(example, HeadExample) else example.position) - example.start


def _example_row(example: Example | HeadExample) -> tuple:
    scale = context_scale(example.activations)
    return (
        example.window,
        example.position,
        example.tokens[example.offset],
        example.activation,
        example.start,
        scale,
        pack_context(example.activations, scale),
    )


def trim(counts: Sequence[int]) -> tuple[int, np.ndarray]:
    """A histogram's counts as (first bin not empty, counts from it to the last bin not empty)."""
    full = np.asarray(counts, dtype=np.int64)
    kept = np.flatnonzero(full)
    if not len(kept):
        return 0, full[:0]
    return int(kept[0]), full[kept[0] : kept[-1] + 1]


def untrim(first: int, blob: bytes, bins: int) -> tuple[int, ...]:
    """The counts of all `bins` bins from `trim`'s (first, packed counts)."""
    full = np.zeros(bins, np.int64)
    kept = unpack(blob, COUNTS)
    full[first : first + len(kept)] = kept
    return tuple(full.tolist())


def _stored_example(example: E) -> E:
    scale = context_scale(example.activations)
    blob = pack_context(example.activations, scale)
    values = unpack_context(blob, scale, _at(example), example.activation)
    return replace(example, activations=tuple(values.tolist()))


def stored_neuron(entry: NeuronEntry) -> NeuronEntry:
    """`entry` as the database gives it back: its examples' context activations rounded to int8 steps of
    `context_scale` (each example's own `activation` is kept in full, in its column and at its place)."""
    bands = tuple(replace(b, examples=tuple(_stored_example(e) for e in b.examples)) for b in entry.bands)
    return replace(entry, examples=tuple(_stored_example(e) for e in entry.examples), bands=bands)


def stored_head(entry: HeadEntry) -> HeadEntry:
    """`entry` as the database gives it back (see `stored_neuron`)."""
    return replace(entry, examples=tuple(_stored_example(e) for e in entry.examples))


# ----- the writer ------------------------------------------------------------------------------------------------
class Store:
    """The database of one scan, open for writing (by the driver)."""

    def __init__(self, folder: Path, connection: sqlite3.Connection, run: RunInfo) -> None:
        self.folder = folder
        self.connection = connection
        self.run = run

    @classmethod
    def create(cls, folder: str | Path, run: RunInfo, total_windows: int) -> Store:
        """A new, empty atlas in `folder` (created; it must not hold an atlas yet)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        connection = _connect(folder / DATABASE)
        with transaction(connection):  # all or nothing: a file without atlas_meta is not taken for an atlas
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.executemany(
                "INSERT INTO atlas_meta VALUES (?, ?)",
                [("format", FORMAT), ("schema", str(SCHEMA_VERSION)), ("run", run.to_json())],
            )
            connection.execute("INSERT INTO progress VALUES (0, 0, ?)", (total_windows,))
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        write_text(folder / RUN_FILE, run.to_json())
        return cls(folder, connection, run)

    @classmethod
    def reopen(cls, folder: str | Path) -> Store:
        """The atlas in `folder`, to resume its scan (refused when it is not one of ours)."""
        folder = Path(folder)
        path = folder / DATABASE
        check_database(path, read_only=False)
        connection = _connect(path)
        return cls(folder, connection, read_run(connection, path))

    def windows_done(self) -> int:
        return int(self.connection.execute("SELECT windows_done FROM progress").fetchone()[0])

    def load_state(self, kind: type[S]) -> S:
        """The running state saved with the last commit, as a `kind` (a dataclass whose fields are arrays)."""
        rows = {
            name: (dtype, json.loads(shape), data)
            for name, dtype, shape, data in self.connection.execute("SELECT * FROM scan_state")
        }
        arrays = {}
        for f in fields(kind):  # type: ignore[arg-type]
            if f.name not in rows:
                raise InputError(f"{self.folder}: its saved scan state has no {f.name!r}: it was made by another scan")
            dtype, shape, data = rows[f.name]
            arrays[f.name] = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return kind(**arrays)

    def commit(self, state: Any, windows_done: int, windows: Mapping[int, np.ndarray]) -> None:
        """Save the running state, how many windows it covers and those windows' tokens, in one transaction."""
        rows = []
        for f in fields(state):
            array = np.ascontiguousarray(getattr(state, f.name))
            rows.append((f.name, array.dtype.str, json.dumps(list(array.shape)), array.tobytes()))
        with transaction(self.connection):
            self.connection.execute("DELETE FROM scan_state")
            self.connection.executemany("INSERT INTO scan_state VALUES (?, ?, ?, ?)", rows)
            self.connection.executemany(
                "INSERT OR REPLACE INTO windows VALUES (?, ?)",
                [(int(w), pack(ids, TOKENS)) for w, ids in windows.items()],
            )
            self.connection.execute("UPDATE progress SET windows_done = ?", (windows_done,))

    def complete(self, neurons: Iterable[NeuronEntry], heads: Iterable[HeadEntry]) -> None:
        """Write the entries and mark the scan complete (one transaction), then leave WAL mode and update
        run.json."""
        self.run = replace(self.run, complete=True)
        with transaction(self.connection):
            for table in ("neurons", "neuron_examples", "histograms", "bands", "band_examples", "token_means"):
                self.connection.execute(f"DELETE FROM {table}")
            self.connection.execute("DELETE FROM logit_effect")
            self.connection.execute("DELETE FROM heads")
            self.connection.execute("DELETE FROM head_examples")
            self.connection.execute("DELETE FROM token_counts")
            self.connection.executemany("INSERT INTO token_counts VALUES (?, ?)", self._token_counts())
            edges: tuple[float, ...] | None = None
            for neuron in neurons:
                if edges is None:
                    edges = neuron.histogram.edges
                    self.connection.execute(
                        "INSERT OR REPLACE INTO atlas_meta VALUES (?, ?)", (EDGES_KEY, json.dumps(list(edges)))
                    )
                elif neuron.histogram.edges != edges:
                    raise ValueError(f"neuron L{neuron.layer}N{neuron.index}'s histogram has edges of its own")
                _write_neuron(self.connection, neuron)
            for head in heads:
                _write_head(self.connection, head)
            self.connection.execute("DELETE FROM scan_state")  # a finished scan is not resumed
            self.connection.execute("UPDATE atlas_meta SET value = ? WHERE key = 'run'", (self.run.to_json(),))
        try:  # one small self-contained file from now on; a reader that has it open keeps it in WAL mode: fine
            self.connection.execute("PRAGMA journal_mode = DELETE")
            self.connection.execute("VACUUM")
        except sqlite3.OperationalError:
            pass
        write_text(self.folder / RUN_FILE, self.run.to_json())

    def _token_counts(self) -> list[tuple[int, int]]:
        """How often each token sits at positions 1.. of the stored windows (the scanned positions after each
        window's leading end-of-text), for the tokens seen at all."""
        counts = np.zeros(1 << 16, np.int64)
        rows = self.connection.execute("SELECT tokens FROM windows")
        while chunk := rows.fetchmany(4096):
            ids = np.concatenate([unpack(blob, TOKENS)[1:] for (blob,) in chunk])
            counts += np.bincount(ids, minlength=1 << 16)
        seen = np.flatnonzero(counts)
        return list(zip(seen.tolist(), counts[seen].tolist(), strict=True))

    def close(self) -> None:
        self.connection.close()


def _write_neuron(connection: sqlite3.Connection, entry: NeuronEntry) -> None:
    key = (entry.layer, entry.index)
    s = entry.stats
    first, counts = trim(entry.histogram.counts)
    connection.execute(
        "INSERT INTO neurons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, s.count, s.mean, s.std, s.skewness, s.kurtosis, s.minimum, s.maximum, s.active_share, int(s.dead)),
    )
    connection.executemany(
        "INSERT INTO neuron_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*key, rank, *_example_row(e)) for rank, e in enumerate(entry.examples)],
    )
    connection.execute("INSERT INTO histograms VALUES (?, ?, ?, ?)", (*key, first, pack(counts, COUNTS)))
    for b, band in enumerate(entry.bands):
        connection.execute("INSERT INTO bands VALUES (?, ?, ?, ?, ?, ?)", (*key, b, band.low, band.high, band.count))
        connection.executemany(
            "INSERT INTO band_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*key, b, rank, *_example_row(e)) for rank, e in enumerate(band.examples)],
        )
    connection.executemany(
        "INSERT INTO token_means VALUES (?, ?, ?, ?, ?, ?)",
        [(*key, rank, t.token, t.mean, t.count) for rank, t in enumerate(entry.token_means)],
    )
    effect = entry.logit_effect
    connection.executemany(
        "INSERT INTO logit_effect VALUES (?, ?, ?, ?, ?, ?)",
        [(*key, 1, rank, t.token, t.logit) for rank, t in enumerate(effect.promoted)]
        + [(*key, -1, rank, t.token, t.logit) for rank, t in enumerate(effect.suppressed)],
    )


def _write_head(connection: sqlite3.Connection, entry: HeadEntry) -> None:
    key = (entry.layer, entry.index)
    s = entry.stats
    connection.execute(
        "INSERT INTO heads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *key,
            s.queries,
            s.previous_token,
            s.first_token,
            s.duplicate_token,
            s.duplicate_queries,
            s.induction,
            s.induction_queries,
            s.entropy,
        ),
    )
    connection.executemany(
        "INSERT INTO head_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*key, rank, e.window, e.position, e.key, *_example_row(e)[2:]) for rank, e in enumerate(entry.examples)],
    )


# ----- shared by the writer and the reader -----------------------------------------------------------------------
def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)  # transactions are ours: see `transaction`
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any error (or interrupt) inside the block."""
    if not connection.in_transaction:
        connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def check_database(path: Path, *, read_only: bool = True) -> None:
    """Refuse, naming `path`, anything but an atlas database of this schema version."""
    if not os.path.isfile(path):  # the path quoted: it may be blank or odd (' ')
        where = f"{path.parent} holds no {DATABASE}" if path.name == DATABASE else "no such folder or file"
        raise InputError(
            f"no atlas at {str(path)!r} ({where}): give an atlas folder (gpt2atlas atlas --out DIR makes one) "
            f"or its {DATABASE}"
        )
    with open(path, "rb") as head:
        if head.read(16) != b"SQLite format 3\x00":
            raise InputError(f"{path} is not an atlas: it is not a SQLite database")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True) if read_only else sqlite3.connect(path)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        marked = "atlas_meta" in tables and connection.execute(
            "SELECT value FROM atlas_meta WHERE key = 'format'"
        ).fetchone() == (FORMAT,)
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path} is not an atlas: {err}") from None
    finally:
        connection.close()
    if not marked:
        raise InputError(f"{path} is not an atlas: a SQLite database without gpt2atlas's atlas_meta table")
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path} is an atlas of schema version {version}; this gpt2atlas reads up to version {SCHEMA_VERSION}: "
            "upgrade gpt2atlas"
        )
    if version < SCHEMA_VERSION:
        raise InputError(
            f"{path} is an atlas of schema version {version}, older than this gpt2atlas's {SCHEMA_VERSION}: "
            "scan it again (gpt2atlas atlas --overwrite)"
        )


def read_run(connection: sqlite3.Connection, path: Path) -> RunInfo:
    row = connection.execute("SELECT value FROM atlas_meta WHERE key = 'run'").fetchone()
    if row is None:
        raise InputError(f"{path} is not an atlas: its atlas_meta has no run")
    return RunInfo.from_json(row[0])
