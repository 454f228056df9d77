"""The reading of one neuron's or head's atlas entry, each sentence against what chance would give.

Chance for the top examples: if the k top examples were k positions drawn at random from the corpus, the number
sitting on a token of corpus share p would be Binomial(k, p); the reading gives that expectation and the chance of
seeing at least as many. Chance for the density: GELU(x) > 0 exactly when x > 0, so a pre-activation that is a
Gaussian centred on 0 (a neuron at initialisation) is active on half of the positions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from gpt2atlas.atlas.entries import HeadEntry, NeuronEntry
from gpt2atlas.viz.readings.words import num, pct, quoted, sentences_from

GAUSSIAN_ACTIVE_SHARE = 0.5  # P(GELU(x) > 0) = P(x > 0) for x ~ N(0, s^2)
SIGNIFICANT = 1e-3  # a chance below this is called "far beyond chance"


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space (n is a top-k: tens, not millions)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    terms = [
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p)
            + (n - i) * math.log1p(-p)
        )
        for i in range(k, n + 1)
    ]
    return min(1.0, math.fsum(terms))


def chance_words(chance: float) -> str:
    return "far beyond chance" if chance < SIGNIFICANT else ("beyond chance" if chance < 0.05 else "within chance")


def top_token(entry: NeuronEntry | HeadEntry) -> tuple[int, int] | None:
    """The token most of the top examples sit on, and on how many (None without examples)."""
    counts = Counter(e.tokens[e.offset] for e in entry.examples)
    if not counts:
        return None
    token, k = min(counts.items(), key=lambda item: (-item[1], item[0]))
    return token, k


def token_share(entry: NeuronEntry, token: int, corpus_count: int | None) -> float | None:
    """The token's share of the scanned positions: from the atlas's count of it, else from the neuron's token
    means (which count it too); None when neither counted it."""
    positions = entry.stats.count
    if positions <= 0:
        return None
    if corpus_count is None:
        corpus_count = next((m.count for m in entry.token_means if m.token == token), None)
    return None if corpus_count is None else corpus_count / positions


def read_neuron_entry(
    entry: NeuronEntry, decode: Callable[[int], str], token_count: Callable[[int], int | None] = lambda t: None
) -> list[str]:
    """Sentences on one neuron across the corpus: where its top examples sit (against the token's corpus share),
    how often it is active (against a Gaussian pre-activation's 50%), how it is shaped, what it writes."""
    stats, name = entry.stats, entry.name

    def examples() -> str | None:
        found = top_token(entry)
        if found is None:
            return None
        token, k = found
        n = len(entry.examples)
        share = token_share(entry, token, token_count(token))
        where = f"all sit on {quoted(decode(token))}" if k == n else f": {k} sit on {quoted(decode(token))}"
        head = f"{name}'s {n} top examples{' ' if k == n else ''}{where}"
        if share is None:
            return head + " (the atlas did not count that token in the corpus, so no chance baseline)."
        chance = binomial_tail(k, n, share)
        odds = f"all {n}" if k == n else f"{k} or more"
        return (
            f"{head}, which is {pct(share)} of the corpus's tokens: {n} positions drawn at random would hold "
            f"{num(n * share)} of it on average, and {odds} with chance {num(chance)} ({chance_words(chance)})."
        )

    def density() -> str | None:
        if stats.count <= 0:
            return None
        if stats.dead or stats.active_share <= 0:
            return f"{name} is never active over {num(stats.count)} positions: a dead neuron."
        share = stats.active_share
        ratio = share / GAUSSIAN_ACTIVE_SHARE
        how = (
            f"{num(1 / ratio)}x sparser than"
            if ratio < 0.8
            else (f"{num(ratio)}x denser than" if ratio > 1.2 else "close to")
        )
        return (
            f"It is active (GELU output > 0) on {pct(share)} of {num(stats.count)} positions, {how} a Gaussian "
            f"pre-activation centred on 0, which is active on {pct(GAUSSIAN_ACTIVE_SHARE)}."
        )

    def shape() -> str | None:
        if stats.count <= 1 or stats.dead or not math.isfinite(stats.kurtosis):
            return None
        tail = "heavy-tailed" if stats.kurtosis > 1 else ("light-tailed" if stats.kurtosis < -1 else "Gaussian-tailed")
        return (
            f"Mean {num(stats.mean)}, standard deviation {num(stats.std)}, maximum {num(stats.maximum)} "
            f"({num((stats.maximum - stats.mean) / stats.std) if stats.std > 0 else 'n/a'} standard deviations above "
            f"the mean); skewness {num(stats.skewness)} and excess kurtosis {num(stats.kurtosis)}, where a Gaussian "
            f"has 0 and 0: {tail}."
        )

    def writes() -> str | None:
        effect = entry.logit_effect
        if not effect.promoted and not effect.suppressed:
            return None
        up = ", ".join(quoted(decode(t.token)) for t in effect.promoted[:4]) or "nothing"
        down = ", ".join(quoted(decode(t.token)) for t in effect.suppressed[:4]) or "nothing"
        return f"Through the final LayerNorm's gain and the unembedding it promotes {up} and suppresses {down}."

    return sentences_from(examples, density, shape, writes)


def uniform_share(context: int) -> float:
    """The mean weight a uniform causal pattern gives one key, over the queries of a window: mean of 1/(q+1)."""
    return math.fsum(1.0 / q for q in range(1, context + 1)) / context


def read_head_entry(entry: HeadEntry, decode: Callable[[int], str], context: int | None = None) -> list[str]:
    """Sentences on one head across the corpus: its mean attention on the previous and first tokens against a
    uniform pattern's, its duplicate-token and induction scores, and where its top examples look."""
    s, name = entry.stats, entry.name

    def roles() -> str | None:
        if s.queries <= 0:
            return None
        uniform = (
            f"; a uniform pattern over the earlier tokens of a {context}-token window gives each "
            f"{pct(uniform_share(context))} on average"
            if context and context > 1
            else ""
        )
        return (
            f"{name} over {num(s.queries)} queries: {pct(s.previous_token)} of its attention on the previous token, "
            f"{pct(s.first_token)} on the window's first{uniform}; mean entropy {num(s.entropy)} nats."
        )

    def copies() -> str | None:
        parts = []
        if s.duplicate_queries:
            parts.append(
                f"{pct(s.duplicate_token)} on earlier copies of the query's token ({num(s.duplicate_queries)} queries have one)"
            )
        if s.induction_queries:
            parts.append(
                f"{pct(s.induction)} on the token after an earlier copy, induction ({num(s.induction_queries)} queries)"
            )
        return ("It puts " + ", and ".join(parts) + ".") if parts else None

    def examples() -> str | None:
        found = top_token(entry)
        if found is None:
            return None
        keys = Counter(e.tokens[e.key - e.start] for e in entry.examples if 0 <= e.key - e.start < len(e.tokens))
        key, k = min(keys.items(), key=lambda item: (-item[1], item[0])) if keys else (None, 0)
        n = len(entry.examples)
        weights = f"weights {num(entry.examples[-1].activation)} to {num(entry.examples[0].activation)}"
        return (
            f"Its {n} top examples ({weights}) look most often at {quoted(decode(key))} ({k} of {n})."
            if key is not None
            else None
        )

    return sentences_from(roles, copies, examples)
