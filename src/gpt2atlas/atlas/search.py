"""The one rule of an atlas search, which `Atlas.search` (in the database) and `MemoryAtlas.search` (in memory)
both follow, so that they give the same hits for the same question.

- `token`: a token id; `text`: the tokens GPT-2 reads it as (` rocks` and `rocks` are different tokens, as they
  are to the model), each searched; both may be given.
- A neuron is hit when one of its top examples is centred on a wanted token (reason 'example', scored by the best
  such activation) and when its token means include one ('token_mean', scored by that mean); a head when one of
  its top examples' queries is a wanted token ('example', scored by the attention weight).
- `min_density` / `max_density` keep the neurons whose active share lies within them and leave heads out; without
  a token or text they list those neurons ('density', scored by the share).
- Highest score first (ties: unit, layer, index, reason), at most `limit` hits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gpt2atlas.atlas.entries import SearchHit
from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import VOCAB_SIZE, Tokenizer


@dataclass(frozen=True)
class SearchQuery:
    """A checked question: the wanted token ids (empty: search by density only) and the density bounds."""

    tokens: tuple[int, ...]
    low: float
    high: float
    dense: bool  # a density bound was given
    limit: int


def search_query(
    token: int | None, text: str | None, min_density: float | None, max_density: float | None, limit: int
) -> SearchQuery:
    """The question `search(token=, text=, min_density=, max_density=, limit=)` asks, or an InputError naming the
    argument at fault."""
    if limit < 1:
        raise InputError(f"limit={limit} must be at least 1", arguments=("limit",))
    found: list[int] = []
    if token is not None:
        if isinstance(token, bool) or not isinstance(token, int | np.integer) or not 0 <= token < VOCAB_SIZE:
            raise InputError(
                f"token={token!r} is not a token id: give a whole number in [0, {VOCAB_SIZE})", arguments=("token",)
            )
        found.append(int(token))
    if text is not None:
        ids = Tokenizer().encode(text, allow_special=False)
        if not ids:
            raise InputError("text='' has no tokens: give at least one character", arguments=("text",))
        found.extend(ids)
    dense = min_density is not None or max_density is not None
    if not found and not dense:
        raise InputError("give a token, a text or a density bound to search for")
    low = -1.0 if min_density is None else float(min_density)
    high = 2.0 if max_density is None else float(max_density)
    return SearchQuery(tuple(dict.fromkeys(found)), low, high, dense, limit)


def ranked(hits: Iterable[SearchHit], limit: int) -> list[SearchHit]:
    """The hits in the order a search gives them: highest score first, at most `limit`."""
    return sorted(hits, key=lambda h: (-h.score, h.unit, h.layer, h.index, h.reason))[:limit]
