"""Training text -> GPT-2 tokens on disk -> batches of windows.

`--data` names text files, folders or built-in corpora (comma-separated to mix them), or one token folder
made earlier (below). Every document is
tokenized once with our GPT-2 tokenizer, followed by `<|endoftext|>`, into two uint16 memory-mapped files
(`train.bin`, `val.bin`) with a `manifest.json` that records the inputs and their hashes, the tokenizer's hash
and the token counts; a later run with the same inputs reuses them. Documents go to the validation split by a
hash of their name, so the split does not depend on file order or on the other inputs.

Built-in corpora exist on every machine without network and ship no text of their own:
- `python-stdlib`: the running interpreter's standard library sources (code, comments and docstrings).
- `python-docs`: the Python documentation's reStructuredText sources, English prose, as Debian's
  `python3.X-doc` package installs them (`apt-get install python3.11-doc`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import ENDOFTEXT_ID, Tokenizer, verify_files

MANIFEST_VERSION = 1
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".text", ".tex", ".html", ".json", ".csv"}


_SKIPPED_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def stdlib_source_files(root: Path | None = None) -> list[Path]:
    """The standard library's .py files, without test suites and third-party packages, in sorted order."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _SKIPPED_DIRS.intersection(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


@dataclass(frozen=True)
class Document:
    """One training document: a stable name (decides its split) and where its text is."""

    name: str
    path: Path


@dataclass(frozen=True)
class BuiltinCorpus:
    name: str
    description: str
    licence: str
    documents: Callable[[], list[Document]]


def _stdlib_documents() -> list[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [Document(f"python-stdlib/{p.relative_to(root).as_posix()}", p) for p in stdlib_source_files(root)]


def python_docs_root() -> Path | None:
    """Debian's python3.X-doc reStructuredText sources, preferring the running interpreter's version."""
    mine = Path(f"/usr/share/doc/python{sys.version_info.major}.{sys.version_info.minor}/html/_sources")
    if mine.is_dir():
        return mine
    others = sorted(Path("/usr/share/doc").glob("python3*/html/_sources"))
    return others[-1] if others else None


def _python_docs_documents() -> list[Document]:
    root = python_docs_root()
    if root is None:
        raise InputError(
            "data=python-docs needs the Python documentation sources, which are not installed: "
            "apt-get install python3.11-doc (Debian/Ubuntu), or give data= a text file or folder",
            arguments=("data",),
        )
    files = sorted(root.rglob("*.rst.txt"), key=lambda p: p.relative_to(root).as_posix())
    return [Document(f"python-docs/{p.relative_to(root).as_posix()}", p) for p in files]


BUILTIN_CORPORA: dict[str, BuiltinCorpus] = {
    "python-stdlib": BuiltinCorpus(
        "python-stdlib",
        "Python's standard library source files (code, comments, docstrings), read from the running interpreter",
        "Python Software Foundation License Version 2",
        _stdlib_documents,
    ),
    "python-docs": BuiltinCorpus(
        "python-docs",
        "the Python documentation's reStructuredText sources (English prose), from Debian's python3.X-doc",
        "Python Software Foundation License Version 2 (see /usr/share/doc/python3.X-doc/copyright)",
        _python_docs_documents,
    ),
}


def resolve_documents(spec: str) -> tuple[list[Document], list[str]]:
    """The documents that `--data` names, and the licences of the built-in corpora among them.

    `spec`: comma-separated text files, folders (every text file below, one document each) and built-in
    corpus names.
    """
    documents: list[Document] = []
    licences: list[str] = []
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if not parts:
        raise InputError(
            "no training data given: pass data= with a text file, a folder or "
            f"a built-in corpus ({', '.join(BUILTIN_CORPORA)})",
            arguments=("data",),
        )
    for part in parts:
        if part in BUILTIN_CORPORA:
            corpus = BUILTIN_CORPORA[part]
            documents += corpus.documents()
            licences.append(f"{corpus.name}: {corpus.licence}")
            continue
        path = Path(part).expanduser()
        if os.path.isdir(path):  # os.path's checks: False, not OSError, for a name too long to be a path
            files = sorted(
                (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            if not files:
                raise InputError(
                    f"data={path} is a folder with no text files: it needs files ending in "
                    f"{', '.join(sorted(TEXT_SUFFIXES))}",
                    arguments=("data",),
                )
            documents += [Document(f"{path.name}/{p.relative_to(path).as_posix()}", p) for p in files]
        elif os.path.isfile(path):
            documents.append(Document(path.name, path))
        else:
            raise InputError(
                f"data={part}: neither a file, a folder nor a built-in corpus ({', '.join(BUILTIN_CORPORA)})",
                arguments=("data",),
            )
    return documents, licences


def is_validation(document_name: str, val_fraction: float) -> bool:
    """Whether a document is held out: a hash of its name, so the split is the same on every machine."""
    digest = hashlib.blake2b(document_name.encode(errors="surrogateescape"), digest_size=8).digest()  # a non-UTF-8 name
    return int.from_bytes(digest, "big") / 2.0**64 < val_fraction


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tokenizer_sha256() -> str:
    files = verify_files()
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class TokenData:
    """The tokenized training and validation streams of one `--data`, memory-mapped."""

    folder: Path
    manifest: dict

    @cached_property
    def train(self) -> np.ndarray:
        return np.memmap(self.folder / "train.bin", dtype=np.uint16, mode="r")

    @cached_property
    def val(self) -> np.ndarray:
        path = self.folder / "val.bin"
        return np.memmap(path, dtype=np.uint16, mode="r") if path.stat().st_size else np.zeros(0, np.uint16)


def default_cache_dir() -> Path:
    """$GPT2ATLAS_CACHE/tokens, else ~/.cache/gpt2atlas/tokens (or under $XDG_CACHE_HOME)."""
    if os.environ.get("GPT2ATLAS_CACHE"):
        return Path(os.environ["GPT2ATLAS_CACHE"]) / "tokens"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt2atlas" / "tokens"


def prepare_tokens(
    spec: str,
    *,
    val_fraction: float = 0.05,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TokenData:
    """Tokenize what `spec` names into train/val token files (reused when the inputs are unchanged)."""
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction={val_fraction} must be a number in [0, 1)", arguments=("val_fraction",))
    prepared = _prepared_folder(spec, val_fraction)
    if prepared is not None:
        return prepared
    documents, licences = resolve_documents(spec)
    inputs = [{"name": d.name, "bytes": d.path.stat().st_size, "sha256": _file_sha256(d.path)} for d in documents]
    key_source = {
        "version": MANIFEST_VERSION,
        "inputs": inputs,
        "tokenizer": _tokenizer_sha256(),
        "val_fraction": val_fraction,
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    folder = (cache_dir or default_cache_dir()) / key
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        return TokenData(folder, json.loads(manifest_path.read_text()))

    held_out = {d.name for d in documents if is_validation(d.name, val_fraction)}
    if len(held_out) == len(documents):  # too few documents to hold any out: train on all, validate on none
        held_out = set()
    tokenizer = Tokenizer()
    counts = {"train": 0, "val": 0}
    docs = {"train": 0, "val": 0}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        with open(staging / "train.bin", "wb") as train_out, open(staging / "val.bin", "wb") as val_out:
            for document, ids in _tokenized(documents, tokenizer, progress):
                split = "val" if document.name in held_out else "train"
                if not ids:
                    continue
                ids.append(ENDOFTEXT_ID)  # uint16 holds every id: VOCAB_SIZE = 50,257 < 65,536
                (val_out if split == "val" else train_out).write(np.asarray(ids, dtype=np.uint16).tobytes())
                counts[split] += len(ids)
                docs[split] += 1
        manifest = {
            **key_source,
            "spec": spec,
            "licences": licences,
            "train_tokens": counts["train"],
            "val_tokens": counts["val"],
            "train_documents": docs["train"],
            "val_documents": docs["val"],
            "dtype": "uint16",
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            staging.rename(folder)
        except OSError:  # another process finished the same tokens first
            if not manifest_path.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TokenData(folder, json.loads(manifest_path.read_text()))


def _prepared_folder(spec: str, val_fraction: float) -> TokenData | None:
    """A token folder that an earlier run prepared (manifest.json, train.bin, val.bin), used as it is.

    This is how a run moves to another machine (a GPU box without the corpora, say) with exactly the same
    tokens: its manifest keeps the original `--data` and the hash of every input file.
    """
    folder = Path(spec.strip()).expanduser()
    if "," in spec or not os.path.isfile(folder / "manifest.json"):  # False for a name too long to be a path
        return None
    missing = [name for name in ("train.bin", "val.bin") if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"data={folder}: a token folder needs {' and '.join(missing)} beside its manifest.json", arguments=("data",)
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("version") != MANIFEST_VERSION or manifest.get("tokenizer") != _tokenizer_sha256():
        raise InputError(
            f"data={folder}: its tokens were made by another tokenizer or manifest version", arguments=("data",)
        )
    sizes = {name: (folder / f"{name}.bin").stat().st_size // 2 for name in ("train", "val")}
    if sizes["train"] != manifest.get("train_tokens") or sizes["val"] != manifest.get("val_tokens"):
        raise InputError(
            f"data={folder}: train.bin/val.bin do not hold the token counts its manifest records", arguments=("data",)
        )
    if manifest.get("val_fraction") != val_fraction:
        raise InputError(
            f"data={folder}: its tokens were split with val_fraction={manifest.get('val_fraction')}, "
            f"not {val_fraction}",
            arguments=("data", "val_fraction"),
        )
    return TokenData(folder, manifest)


def _tokenized(
    documents: Sequence[Document], tokenizer: Tokenizer, progress: bool
) -> Iterator[tuple[Document, list[int]]]:
    """(document, token ids) in order, tokenized in batches on tiktoken's threads, with a progress bar."""
    from tqdm import tqdm

    total = sum(d.path.stat().st_size for d in documents)
    with tqdm(total=total, unit="B", unit_scale=True, desc="tokenizing", disable=not progress, leave=False) as bar:
        for start in range(0, len(documents), 64):
            batch = documents[start : start + 64]
            texts = [d.path.read_text(encoding="utf-8", errors="replace") for d in batch]
            for document, text, ids in zip(
                batch, texts, tokenizer.encode_batch(texts, allow_special=False), strict=True
            ):
                if text.strip():  # a blank file is no document
                    yield document, ids
            bar.update(sum(d.path.stat().st_size for d in batch))


def frequent_tokens(tokens: np.ndarray, count: int) -> tuple[list[int], float]:
    """The `count` tokens most frequent in a token stream (<|endoftext|> aside), most frequent first, and the
    share of the stream's other tokens they make up."""
    counts = np.bincount(np.asarray(tokens), minlength=ENDOFTEXT_ID + 1)
    counts[ENDOFTEXT_ID] = 0  # it separates documents
    top = np.argsort(-counts, kind="stable")[:count]
    return [int(i) for i in top], float(counts[top].sum() / max(counts.sum(), 1))


class WindowSampler:
    """Training windows of n_ctx + 1 tokens, in a seeded order that covers every window once per epoch.

    The stream is cut into non-overlapping windows at multiples of n_ctx (a window's last token is the next
    window's first); window number k of the whole run is fixed by (seed, k) alone, so any process can fetch
    its share of any step's batch, and resuming needs only the step.
    """

    def __init__(self, tokens: np.ndarray, n_ctx: int, seed: int) -> None:
        self.tokens, self.n_ctx, self.seed = tokens, n_ctx, seed
        self.n_windows = (len(tokens) - 1) // n_ctx
        if self.n_windows < 1:
            raise InputError(
                f"the training data has {len(tokens):,} tokens, fewer than one context of "
                f"{n_ctx + 1} (n_ctx + 1): give more text or a smaller n_ctx=",
                arguments=("n_ctx",),
            )
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def _order_of(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.n_windows, generator=generator)
            self._epoch = epoch
        return self._order

    def windows(self, first: int, count: int) -> torch.Tensor:
        """Windows number first .. first + count - 1 of the run, as a (count, n_ctx + 1) int64 tensor."""
        rows = []
        for k in range(first, first + count):
            epoch, i = divmod(k, self.n_windows)
            start = int(self._order_of(epoch)[i]) * self.n_ctx
            rows.append(torch.from_numpy(self.tokens[start : start + self.n_ctx + 1].astype(np.int64)))
        return torch.stack(rows)


def validation_windows(tokens: np.ndarray, n_ctx: int, max_tokens: int) -> torch.Tensor:
    """The first ~max_tokens of the validation stream as consecutive (n, n_ctx + 1) windows (a shorter stream
    gives one shorter window; an empty one none)."""
    usable = min(len(tokens) - 1, max(max_tokens, n_ctx))
    if usable < 1:
        return torch.zeros(0, n_ctx + 1, dtype=torch.long)
    n_windows = usable // n_ctx
    if n_windows == 0:  # less than one context of validation text
        return torch.from_numpy(tokens[: usable + 1].astype(np.int64))[None]
    starts = np.arange(n_windows) * n_ctx
    return torch.from_numpy(np.stack([tokens[s : s + n_ctx + 1] for s in starts]).astype(np.int64))
