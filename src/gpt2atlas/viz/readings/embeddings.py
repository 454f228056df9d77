"""The reading of the token and position embeddings."""

from __future__ import annotations

import statistics

from gpt2atlas.viz.readings.words import (
    lookup,
    num,
    pct,
    quoted,
    sentences_from,
    versus_chance,
)


def read_embeddings(f: dict) -> list[str]:
    d_model = lookup(f, "model.d_model")

    def offsets() -> str:
        dims = lookup(f, "token_embedding.offset_dims")[:3]
        listed = "; ".join(f"dim {d['dim']} (mean {num(d['mean'])}, z = {num(d['z'])})" for d in dims)
        said = f"Token embeddings: the dimensions whose mean over the vocabulary stands out most are {listed}."
        limit = lookup(f, "token_embedding.offset_z_chance")
        if limit is None:
            return said
        beyond = [d for d in lookup(f, "token_embedding.offset_dims") if abs(d["z"]) > limit]
        return (
            f"{said} In Gaussian tables with {d_model} dims the top |z| stays under {num(limit)} in 95% of draws: "
            + (f"{len(beyond)} dim(s) beyond chance." if beyond else versus_chance(False) + ".")
        )

    def norms() -> str:
        n = lookup(f, "token_embedding.norm")
        extremes = ""
        low = n["smallest"][0].get("token") if n.get("smallest") else n.get("min_token")
        high = n["largest"][0].get("token") if n.get("largest") else n.get("max_token")
        if low is not None and high is not None:
            extremes = f", from {quoted(low)} to {quoted(high)}"
        return (
            f"Token embedding norms: mean {num(n['mean'])} ± {num(n['std'])}, range {num(n['min'])} – "
            f"{num(n['max'])}{extremes}."
        )

    def token_pca() -> str:
        ratios = lookup(f, "token_embedding.pca_explained_variance_ratio")
        needed = lookup(f, "token_embedding.pca_components_for_90pct")
        said = (
            f"PCA of the token embeddings: the first component explains {pct(ratios[0])}, the first "
            f"{len(ratios)} together {pct(sum(ratios))}"
            + (f"; {needed} components hold 90% of the variance." if needed else ".")
        )
        noise = lookup(f, "token_embedding.pca_first_share_chance")
        if noise is None:
            return said
        return (
            f"{said} Isotropic Gaussian embeddings of this shape give the first component {pct(noise)}: "
            f"{versus_chance(ratios[0] > 2 * noise)}."
        )

    def active() -> str:
        dims = lookup(f, "position_embedding.active_dims")[:5]
        return (
            "Position embeddings vary most across positions in dims "
            + ", ".join(f"{d['dim']} (std {num(d['std'])})" for d in dims)
            + "."
        )

    def periods() -> str:
        rows = sorted(lookup(f, "position_embedding.periodicity"), key=lambda r: -r["power_share"])[:3]
        said = (
            "Their dominant periods: "
            + "; ".join(
                f"dim {r['dim']} every {num(r['period'])} positions ({pct(r['power_share'])} of its spectral power)"
                for r in rows
            )
            + "."
        )
        noise = lookup(f, "position_embedding.period_share_chance")
        if noise is None:
            return said
        return (
            f"{said} In white noise as long, the best of as many columns stays under {pct(noise)} in 95% of "
            f"draws: {versus_chance(rows[0]['power_share'] > noise)}."
        )

    def smooth() -> str:
        s = float(lookup(f, "position_embedding.smoothness"))
        verdict = "smooth curves" if s < 0.5 else "jagged curves" if s > 1.0 else "moderately smooth curves"
        return (
            f"Position-embedding smoothness {num(s)} ({verdict}; independent noise would give √2 ≈ 1.41, "
            "a well-trained slow curve near 0)."
        )

    def neighbours() -> str:
        out = []
        for row in f["neighbours"][:3]:
            names = [n["token"] for n in row["neighbours"][:4]]
            out.append(f"{quoted(row['token'])} → {', '.join(quoted(n) for n in names)}")
        said = "Nearest tokens by cosine similarity (whole vocabulary): " + "; ".join(out) + "."
        noise = f.get("neighbour_cosine_chance")
        nearest = [row["neighbours"][0]["cosine"] for row in f["neighbours"] if row["neighbours"]]
        if noise is None or not nearest:
            return said
        typical = float(statistics.median(nearest))
        return (
            f"{said} The nearest neighbour's cosine is {num(typical)} (median over the prompt's tokens); among "
            f"{lookup(f, 'model.d_vocab') - 1:,} random directions in {d_model} dims the nearest stays under "
            f"{num(noise)} in 95% of draws: {versus_chance(typical > noise)}."
        )

    return sentences_from(offsets, norms, token_pca, active, periods, smooth, neighbours)
