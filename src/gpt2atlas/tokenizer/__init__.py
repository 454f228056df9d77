"""GPT-2's byte-level BPE tokenizer, offline.

OpenAI's vocabulary (encoder.json) and merge list (vocab.bpe) ship inside this package; tiktoken does the
encoding from them, with the same pre-tokenizing pattern and ranks as its `gpt2` encoding (which it would
otherwise download). The files are checked against the sha256 that tiktoken pins for that encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str as GPT2_SPLIT_PATTERN  # GPT-2's pre-tokenizer

from gpt2atlas.errors import InputError

ENDOFTEXT = "<|endoftext|>"
ENDOFTEXT_ID = 50256
VOCAB_SIZE = 50257

# sha256 of OpenAI's files, as pinned by tiktoken_ext.openai_public.gpt2.
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"


def data_dir() -> Path:
    """Folder holding encoder.json, vocab.bpe and their licence."""
    return Path(str(resources.files("gpt2atlas.tokenizer") / "data"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    folder = data_dir()
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(folder / "vocab.bpe"),
        encoder_json_file=str(folder / "encoder.json"),
        vocab_bpe_hash=VOCAB_BPE_SHA256,
        encoder_json_hash=ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2atlas-gpt2",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: ENDOFTEXT_ID},
        explicit_n_vocab=VOCAB_SIZE,
    )


class Tokenizer:
    """Text <-> GPT-2 token ids. `<|endoftext|>` in text becomes id 50256 unless `allow_special=False`."""

    eot_token_id = ENDOFTEXT_ID
    eot_token = ENDOFTEXT
    vocab_size = VOCAB_SIZE

    @cached_property
    def _enc(self) -> tiktoken.Encoding:
        return _encoding()

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Token ids of `text`. With `allow_special=False`, `<|endoftext|>` is encoded as plain text."""
        if allow_special:
            return self._enc.encode(text, allowed_special="all")
        return self._enc.encode(text, disallowed_special=())

    def encode_batch(self, texts: Sequence[str], *, allow_special: bool = True) -> list[list[int]]:
        special: Literal["all"] | set[str] = "all" if allow_special else set()
        return self._enc.encode_batch(list(texts), allowed_special=special, disallowed_special=())

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids; bytes that are not valid UTF-8 on their own become U+FFFD."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < VOCAB_SIZE]
        if bad:
            raise InputError(f"token id {bad[0]} is outside GPT-2's vocabulary: ids are 0..{VOCAB_SIZE - 1}")
        return self._enc.decode(ids, errors="replace")

    def decode_token(self, token_id: int) -> str:
        return self.decode([token_id])

    def token_bytes(self, token_id: int) -> bytes:
        return self._enc.decode_single_token_bytes(int(token_id))

    def to_str_tokens(self, text_or_ids: str | Iterable[int]) -> list[str]:
        """One string per token (partial UTF-8 characters show as U+FFFD)."""
        ids = self.encode(text_or_ids) if isinstance(text_or_ids, str) else list(text_or_ids)
        return [self.decode_token(i) for i in ids]

    @cached_property
    def vocab(self) -> list[str]:
        """The string of every token id, 0..50256 (for labelling figures)."""
        return [self.decode_token(i) for i in range(VOCAB_SIZE)]


def verify_files() -> dict[str, str]:
    """sha256 of the shipped files; raises if they differ from what tiktoken expects."""
    found = {
        "encoder.json": _sha256(data_dir() / "encoder.json"),
        "vocab.bpe": _sha256(data_dir() / "vocab.bpe"),
    }
    expected = {"encoder.json": ENCODER_JSON_SHA256, "vocab.bpe": VOCAB_BPE_SHA256}
    for name, digest in found.items():
        if digest != expected[name]:
            raise RuntimeError(f"{name} is corrupt: sha256 {digest}, expected {expected[name]}")
    return found
