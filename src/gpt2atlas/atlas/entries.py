"""What the atlas knows about one MLP neuron or one attention head, as typed values.

The scan (atlas/scan.py) makes these at the end of a pass over a corpus, the database (atlas/store.py) keeps
them, and `Atlas` (atlas/atlas.py) gives them back; viz, the report and the dashboard read nothing else.
Tokens are kept as ids: window `w` of the corpus is `<|endoftext|>` followed by the stream's tokens
w*(n-1) .. (w+1)*(n-1)-1, so every example can be recomputed from (window, position) alone.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTEXT_BEFORE = 32  # tokens kept before an example's position
CONTEXT_AFTER = 8  # and after it (the whole window is a `.window(w)` away)


@dataclass(frozen=True)
class Example:
    """One place in the corpus: token `position` of window `window`, where the neuron reached `activation`.

    `tokens` are the window's ids from `start` (at most CONTEXT_BEFORE before `position`) to at most
    CONTEXT_AFTER after it; `activations` the neuron's value on each of them (float32 recomputation)."""

    window: int
    position: int
    activation: float
    start: int
    tokens: tuple[int, ...]
    activations: tuple[float, ...]

    @property
    def offset(self) -> int:
        """Where the example's own token sits in `tokens`."""
        return self.position - self.start


@dataclass(frozen=True)
class HeadExample:
    """A query at `position` of window `window` putting `activation` (its attention weight) on the key at `key`,
    the largest weight it gives to any token other than the window's first; `tokens` as in `Example`, and
    `activations` the query's attention over those tokens (0 after the query)."""

    window: int
    position: int
    key: int
    activation: float
    start: int
    tokens: tuple[int, ...]
    activations: tuple[float, ...]

    @property
    def offset(self) -> int:
        return self.position - self.start


@dataclass(frozen=True)
class NeuronStats:
    """A neuron's activation over every scanned position: the four moments OpenAI's neuron records keep, its
    range, the share of positions where it is active (> 0), and whether it never was (`dead`)."""

    count: int
    mean: float
    std: float
    skewness: float
    kurtosis: float  # excess kurtosis: 0 for a Gaussian
    minimum: float
    maximum: float
    active_share: float
    dead: bool


@dataclass(frozen=True)
class Histogram:
    """Counts of activations between consecutive `edges` (len(edges) == len(counts) + 1); values outside the
    edges are counted in the first or last bin."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class Band:
    """Activations in [low, high) (a share of the neuron's maximum), how many positions fell there, and
    examples drawn from them at random (the same draw on every run: chosen by a hash of window and position)."""

    low: float
    high: float
    count: int
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class TokenMean:
    """A neuron's mean activation on one token, over the `count` times the token was seen."""

    token: int
    mean: float
    count: int


@dataclass(frozen=True)
class TokenLogit:
    """How much a unit of the neuron's output moves one token's logit (through ln_final's gain and W_U)."""

    token: int
    logit: float


@dataclass(frozen=True)
class LogitEffect:
    """The tokens a neuron's output pushes up most and down most."""

    promoted: tuple[TokenLogit, ...]
    suppressed: tuple[TokenLogit, ...]


@dataclass(frozen=True)
class NeuronEntry:
    layer: int
    index: int
    examples: tuple[Example, ...]  # top-k, highest first; ties by window, then position
    stats: NeuronStats
    histogram: Histogram
    bands: tuple[Band, ...]
    token_means: tuple[TokenMean, ...]  # highest mean first, among tokens seen at least the minimum count
    logit_effect: LogitEffect

    @property
    def name(self) -> str:
        return f"L{self.layer}N{self.index}"


@dataclass(frozen=True)
class HeadStats:
    """A head's scores averaged over the corpus's queries: mean attention on the previous token, on the window's
    first token, on earlier copies of the query's token (over queries that have one), on the token after an
    earlier copy (induction, over queries that have one), and the mean entropy of its pattern in nats."""

    queries: int
    previous_token: float
    first_token: float
    duplicate_token: float
    duplicate_queries: int
    induction: float
    induction_queries: int
    entropy: float


@dataclass(frozen=True)
class HeadEntry:
    layer: int
    index: int
    examples: tuple[HeadExample, ...]  # top-k by weight, highest first; ties by window, then position
    stats: HeadStats

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.index}"


@dataclass(frozen=True)
class SearchHit:
    """A neuron or head found by `Atlas.search`, and why: 'example' (the token is at the centre of one of its
    top examples), 'token_mean' (among its highest token means) or 'density'."""

    unit: str  # "neuron" or "head"
    layer: int
    index: int
    reason: str
    score: float  # the activation, mean or density that put it in the list; hits are sorted by it
