"""The texts whose representations we measure.

The default corpus exists on every machine with Python and needs no network and no copied text: the
paragraphs of the docstrings in Python's own standard library, read from its source files at run time with
`ast` (nothing is imported), in sorted file order, whitespace-normalised, filtered to prose of reasonable length
and deduplicated. Users can instead give a file (one text per line), a folder of .txt files (one text each),
or a dataset of the `datasets` library.
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import os
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path

from gpt2atlas.errors import InputError
from gpt2atlas.geometry.findings import CorpusInfo
from gpt2atlas.model.loading import hub_reachable
from gpt2atlas.training.data import stdlib_source_files

DEFAULT_CORPUS = "python-stdlib-docstrings"
_MIN_CHARS, _MAX_CHARS, _MIN_WORDS = 80, 1200, 12


@dataclass
class Corpus:
    """Texts plus a description of where they came from (goes into findings.json)."""

    texts: list[str]
    info: CorpusInfo
    read_s: float = 0.0  # seconds spent reading it before the analysis (counted in the findings' timing)


def sample_texts(texts: Iterable[str], k: int, seed: int = 0) -> tuple[list[str], int]:
    """A seeded uniform sample of at most k distinct non-empty texts, in their original order, and how many
    distinct texts there were.

    Every text gets a pseudo-random key, a hash keyed by the seed, and the k smallest keys are kept (bottom-k
    sampling): a duplicate has its original's key, so it is dropped for free, and memory holds k texts however
    long the stream. The count is exact while every distinct text fits in the sample; beyond that it is the
    k-minimum-values estimate (k - 1) / (k-th smallest key), within about 1/sqrt(k) (2% at k = 2,000).
    """
    if k < 1:
        raise InputError(f"max_texts={k} must be at least 1", arguments=("max_texts",))
    salt = seed.to_bytes(8, "little", signed=True)
    kept: list[tuple[int, int, str]] = []  # (-key, position, text): a max-heap on the key
    kept_keys: set[int] = set()
    overflowed = False
    for position, text in enumerate(texts):
        if not text.strip():
            continue
        key = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8, key=salt).digest(), "big")
        if key in kept_keys:
            continue
        if len(kept) < k:
            heapq.heappush(kept, (-key, position, text))
            kept_keys.add(key)
        else:
            overflowed = True
            if key < -kept[0][0]:
                dropped = heapq.heapreplace(kept, (-key, position, text))
                kept_keys.discard(-dropped[0])
                kept_keys.add(key)
    if overflowed:
        kth_smallest = -kept[0][0] / 2.0**64
        n_distinct = max(len(kept), round((k - 1) / kth_smallest)) if k > 1 else len(kept)
    else:
        n_distinct = len(kept)
    return [text for _, _, text in sorted(kept, key=lambda entry: entry[1])], n_distinct


# ----- the default corpus ------------------------------------------------------------------------------------
def docstring_paragraphs(source: str | bytes) -> list[str]:
    """Prose paragraphs of every docstring in one module (module, classes, functions), in `ast.walk` order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    paragraphs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                paragraphs += [" ".join(p.split()) for p in doc.split("\n\n")]
    return [p for p in paragraphs if _is_prose(p)]


def _is_prose(paragraph: str) -> bool:
    """Reasonably long running text: not a doctest, a table or a code listing."""
    if not _MIN_CHARS <= len(paragraph) <= _MAX_CHARS or len(paragraph.split()) < _MIN_WORDS:
        return False
    if ">>>" in paragraph or "..." in paragraph[:4]:
        return False
    letters = sum(c.isalpha() or c == " " for c in paragraph)
    return letters / len(paragraph) >= 0.8


@lru_cache(maxsize=2)
def stdlib_docstring_paragraphs(root: str | None = None) -> tuple[tuple[str, ...], int]:
    """Every distinct prose docstring paragraph of the standard library, and the number of files read."""
    files = stdlib_source_files(Path(root) if root else None)
    seen: dict[str, None] = {}
    for path in files:
        try:
            source = path.read_bytes()
        except OSError:
            continue
        for paragraph in docstring_paragraphs(source):
            seen.setdefault(paragraph, None)
    return tuple(seen), len(files)


def default_corpus(max_texts: int, seed: int = 0) -> Corpus:
    """A seeded sample of the standard library's docstring paragraphs."""
    root = sysconfig.get_paths()["stdlib"]
    paragraphs, n_files = stdlib_docstring_paragraphs(root)
    if not paragraphs:
        raise InputError(
            f"no docstrings found in Python's standard library at {root}; give texts= of your own", arguments=("texts",)
        )
    texts, n = sample_texts(paragraphs, max_texts, seed)
    return Corpus(
        texts,
        CorpusInfo(
            name=DEFAULT_CORPUS,
            description="paragraphs of the docstrings of Python's standard library (read with ast at run time)",
            source=root,
            python=sys.version.split()[0],
            n_files=n_files,
            n_available=n,
            n_texts=len(texts),
        ),
    )


# ----- the user's texts --------------------------------------------------------------------------------------
def texts_from_path(path: str | Path, max_texts: int, seed: int = 0) -> Corpus:
    """One text per non-empty line of a file, or one text per .txt file of a folder (sorted by name)."""
    path = Path(path)
    if os.path.isdir(path):
        files = sorted(path.glob("*.txt"))
        if not files:
            raise InputError(
                f"texts={path} is a folder with no .txt files: give a file (one text per line) or a folder of .txt "
                "files",
                arguments=("texts",),
            )
        stream: Iterable[str] = (f.read_text(encoding="utf-8", errors="replace").strip() for f in files)
        kind = "folder of .txt files, one text per file"
    elif os.path.isfile(path):
        stream = _lines(path)
        kind = "file, one text per line"
    else:
        raise InputError(f"texts={path}: no such file or folder", arguments=("texts",))
    texts, n = sample_texts(stream, max_texts, seed)
    if not texts:
        raise InputError(f"texts={path}: no non-empty text found", arguments=("texts",))
    return Corpus(
        texts,
        CorpusInfo(
            name=path.name,
            description=kind,
            source=str(path.resolve()),
            n_available=n,
            n_texts=len(texts),
        ),
    )


def _lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            yield line.strip()


def texts_from_dataset(name: str, max_texts: int, seed: int = 0) -> Corpus:
    """A seeded sample of the first 4 x max_texts non-empty rows of a `datasets` dataset, `NAME` or
    `NAME:CONFIG` (train split, column 'text', streamed: nothing else is downloaded)."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"dataset={name} needs the `datasets` library: pip install datasets", arguments=("dataset",)
        ) from None
    path, _, config = name.partition(":")
    if not os.path.exists(path) and not hub_reachable():  # else the datasets library retries for ~20 s first
        raise InputError(
            f"dataset={name} cannot be loaded: the Hugging Face hub is unreachable; "
            "give a local corpus with texts= (a file or a folder)",
            arguments=("dataset", "texts"),
        )
    try:
        data = datasets.load_dataset(path, config or None, split="train", streaming=True)
        rows = list(islice((row for row in data if str(row.get("text", "")).strip()), 4 * max_texts))
    except Exception as err:  # no network, unknown name, no 'text' column ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"dataset={name} cannot be loaded ({first}): give a dataset NAME or NAME:CONFIG with a 'text' column",
            arguments=("dataset",),
        ) from None
    texts, n = sample_texts((str(row["text"]).strip() for row in rows), max_texts, seed)
    if not texts:
        raise InputError(
            f"dataset={name} has no non-empty 'text' rows: give a dataset with a 'text' column",
            arguments=("dataset",),
        )
    return Corpus(
        texts,
        CorpusInfo(
            name=name,
            description="datasets library, train split, column 'text', "
            f"sampled from its first {4 * max_texts} non-empty rows",
            source=name,
            n_available=n,
            n_texts=len(texts),
        ),
    )
