"""The reading of the token and position embeddings."""

from __future__ import annotations

import statistics

from gpt2atlas.analysis.embedding_findings import EmbeddingFindings
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    quoted,
    sentences_from,
    versus_chance,
)


def read_embeddings(f: EmbeddingFindings) -> list[str]:
    d_model = f.model.d_model
    token, position = f.token_embedding, f.position_embedding

    def offsets() -> str:
        dims = token.offset_dims[:3]
        listed = "; ".join(f"dim {d.dim} (mean {num(d.mean)}, z = {num(d.z)})" for d in dims)
        said = f"Token embeddings: the dimensions whose mean over the vocabulary stands out most are {listed}."
        limit = token.offset_z_chance
        beyond = [d for d in token.offset_dims if abs(d.z) > limit]
        return (
            f"{said} In Gaussian tables with {d_model} dims the top |z| stays under {num(limit)} in 95% of draws: "
            + (f"{len(beyond)} dim(s) beyond chance." if beyond else versus_chance(False) + ".")
        )

    def norms() -> str:
        n = token.norm
        low = n.smallest[0].token if n.smallest else n.min_token
        high = n.largest[0].token if n.largest else n.max_token
        return (
            f"Token embedding norms: mean {num(n.mean)} ± {num(n.std)}, range {num(n.min)} – "
            f"{num(n.max)}, from {quoted(low)} to {quoted(high)}."
        )

    def token_pca() -> str:
        ratios = token.pca_explained_variance_ratio
        needed = token.pca_components_for_90pct
        said = (
            f"PCA of the token embeddings: the first component explains {pct(ratios[0])}, the first "
            f"{len(ratios)} together {pct(sum(ratios))}"
            + (f"; {needed} components hold 90% of the variance." if needed else ".")
        )
        noise = token.pca_first_share_chance
        return (
            f"{said} Isotropic Gaussian embeddings of this shape give the first component {pct(noise)}: "
            f"{versus_chance(ratios[0] > 2 * noise)}."
        )

    def active() -> str:
        dims = position.active_dims[:5]
        return (
            "Position embeddings vary most across positions in dims "
            + ", ".join(f"{d.dim} (std {num(d.std)})" for d in dims)
            + "."
        )

    def periods() -> str | None:
        rows = sorted(position.periodicity, key=lambda r: -r.power_share)[:3]
        if not rows:
            return None  # no periodicity measured (too few positions)
        said = (
            "Their dominant periods: "
            + "; ".join(
                f"dim {r.dim} every {num(r.period)} positions ({pct(r.power_share)} of its spectral power)"
                for r in rows
            )
            + "."
        )
        noise = position.period_share_chance
        if noise is None:
            return said
        return (
            f"{said} In white noise as long, the best of as many columns stays under {pct(noise)} in 95% of "
            f"draws: {versus_chance(rows[0].power_share > noise)}."
        )

    def smooth() -> str:
        s = float(position.smoothness)
        verdict = "smooth curves" if s < 0.5 else "jagged curves" if s > 1.0 else "moderately smooth curves"
        return (
            f"Position-embedding smoothness {num(s)} ({verdict}; independent noise would give √2 ≈ 1.41, "
            "a well-trained slow curve near 0)."
        )

    def neighbours() -> str:
        out = []
        for row in f.neighbours[:3]:
            names = [n.token for n in row.neighbours[:4]]
            out.append(f"{quoted(row.token)} → {', '.join(quoted(n) for n in names)}")
        said = "Nearest tokens by cosine similarity (whole vocabulary): " + "; ".join(out) + "."
        noise = f.neighbour_cosine_chance
        nearest = [row.neighbours[0].cosine for row in f.neighbours if row.neighbours]
        if not nearest:
            return said
        typical = float(statistics.median(nearest))
        return (
            f"{said} The nearest neighbour's cosine is {num(typical)} (median over the prompt's tokens); among "
            f"{f.model.d_vocab - 1:,} random directions in {d_model} dims the nearest stays under "
            f"{num(noise)} in 95% of draws: {versus_chance(typical > noise)}."
        )

    return sentences_from(offsets, norms, token_pca, active, periods, smooth, neighbours)
