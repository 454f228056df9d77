"""A token stream cut into the atlas's windows: window `w` is `<|endoftext|>` followed by the stream's tokens
w*(n-1) .. (w+1)*(n-1)-1, so that any example can be recomputed from its window index alone.

Only whole windows are scanned: the stream's last len(stream) mod (n-1) tokens are left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from gpt2atlas.analysis.corpus import BATCH_TOKENS, Batch
from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import ENDOFTEXT_ID


class Windows(Sequence[np.ndarray]):
    """The windows of `stream` (1-D token ids, e.g. a training token file's uint16 memmap) for context `context`."""

    def __init__(self, stream: np.ndarray, context: int) -> None:
        if context < 2:
            raise InputError(f"context={context} is too short: a window needs <|endoftext|> and at least one token")
        if stream.ndim != 1:
            raise InputError(f"the token stream must be 1-D, got shape {stream.shape}")
        step = context - 1
        if len(stream) < step:
            raise InputError(
                f"the data holds {len(stream)} tokens, fewer than one window of {context} "
                f"(<|endoftext|> and {step} tokens): give more data or a shorter context"
            )
        self.stream = stream
        self.context = context
        self.step = step
        self._count = len(stream) // step

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[w] for w in range(self._count))

    @overload
    def __getitem__(self, w: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, w: slice) -> list[np.ndarray]: ...

    def __getitem__(self, w: int | slice) -> np.ndarray | list[np.ndarray]:
        """Window `w`'s `context` token ids as int64 (a slice gives a list of windows)."""
        if isinstance(w, slice):
            return [self[i] for i in range(*w.indices(self._count))]
        w = int(w)
        if not 0 <= w < self._count:
            raise InputError(f"window={w} is out of range: the corpus has {self._count} windows (0..{self._count - 1})")
        out = np.empty(self.context, dtype=np.int64)
        out[0] = ENDOFTEXT_ID
        out[1:] = self.stream[w * self.step : (w + 1) * self.step]
        return out

    def ids(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The windows `indices` as one (len(indices), context) int64 array."""
        rows = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(rows), self.context), dtype=np.int64)
        for row, w in enumerate(rows):
            out[row] = self[int(w)]
        return out

    @property
    def tokens(self) -> int:
        """Stream tokens the windows cover (each window's positions 1..n-1; position 0 is the added separator)."""
        return self._count * self.step

    def count_tokens(self, vocab: int = ENDOFTEXT_ID + 1, chunk: int = 1 << 22) -> np.ndarray:
        """How often each token id occurs at positions 1..n-1 of the windows: (vocab,) int64 (ids >= vocab dropped)."""
        counts = np.zeros(vocab, dtype=np.int64)
        covered = self.stream[: self.tokens]
        for start in range(0, len(covered), chunk):
            part = np.asarray(covered[start : start + chunk], dtype=np.int64)
            counts += np.bincount(part[part < vocab], minlength=vocab)
        return counts

    def batches(self, indices: Sequence[int] | np.ndarray, batch_tokens: int = BATCH_TOKENS) -> Iterator[Batch]:
        """The windows `indices`, in order, as the corpus runner's batches (unpadded: every window is full)."""
        rows = np.asarray(indices, dtype=np.int64)
        size = max(1, batch_tokens // self.context)
        lengths = np.full(size, self.context, dtype=np.int64)
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            yield Batch(self.ids(part), part, lengths[: len(part)])
