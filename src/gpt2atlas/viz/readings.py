"""The short written reading of each section, produced from its findings numbers.

Each `read_<area>(findings)` returns a list of plain-text sentences (the renderers escape them). A sentence
whose numbers are missing from the findings is left out, never invented; `key_numbers` is the fallback
that lists the scalar findings when a section's reading has nothing to say.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from gpt2atlas.viz.dynamics import tokens_text

if TYPE_CHECKING:
    from gpt2atlas.analysis.dynamics import Appearance, Dynamics

log = logging.getLogger("gpt2atlas.readings")
ANISOTROPY_GAP = 0.1  # mean cosines this far from the random-initialised twin's read as beyond chance
BASELINE_FACTOR = 2.0  # a score reads as beyond chance at twice what the uniform baseline gives (as head roles)


def lookup(findings: dict, dotted: str, default: Any = None) -> Any:
    """`findings["a"]["b"]` or `findings["a.b"]` for "a.b" (analyses use either style)."""
    if dotted in findings:
        return findings[dotted]
    node: Any = findings
    for key in dotted.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return default
    return node


def num(value: Any, digits: int = 3) -> str:
    """A number in short form: 3 significant digits, thousands separators for big integers."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def pct(value: float) -> str:
    return f"{100 * float(value):.1f}%"


def quoted(token: Any) -> str:
    """A token shown with its whitespace visible, in quotes."""
    return repr(str(token))


def _sentences(*builders: Callable[[], str | None]) -> list[str]:
    """Run each sentence builder; keep what it says; skip it, with a logged warning, if its numbers are missing."""
    out = []
    for build in builders:
        try:
            text = build()
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError, StopIteration) as err:
            log.warning(
                "reading sentence %s dropped: its numbers are missing or malformed (%s: %s)",
                build.__qualname__,
                type(err).__name__,
                err,
            )
            text = None
        if text:
            out.append(text)
    return out


def _head(row: dict) -> str:
    return f"L{row['layer']}H{row['head']}"


def _head_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return _head(entry)
    if isinstance(entry, (list, tuple)) and len(entry) == 2:
        return f"L{entry[0]}H{entry[1]}"
    return str(entry)


def _join(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ----- model summary and samples ------------------------------------------------------------------------------
def read_summary(summary: dict) -> list[str]:
    cfg, counts = summary["config"], summary["parameter_counts"]

    def shape() -> str:
        return (
            f"{summary['source']}: {cfg['n_layer']} blocks of {cfg['n_head']} heads, d_model {cfg['d_model']} "
            f"(d_head {cfg['d_head']}, d_mlp {cfg['d_mlp']}), context {cfg['n_ctx']:,} tokens, "
            f"vocabulary {cfg['d_vocab']:,} tokens: {counts['total']:,} parameters in all."
        )

    def shares() -> str:
        total = counts["total"]
        parts = [(k, v) for k, v in counts.items() if k != "total"]
        parts.sort(key=lambda kv: -kv[1])
        return (
            "Parameters by component: " + "; ".join(f"{k.replace('_', ' ')} {pct(v / total)}" for k, v in parts) + "."
        )

    def tied() -> str:
        note = summary["unembedding"]
        return note[:1].upper() + note[1:] + "."

    return _sentences(shape, shares, tied)


def read_samples(samples: Sequence[Any], vocab_size: int) -> list[str]:
    probs = [p for s in samples for p in s.probs]
    if not probs:
        return ["The model generated no tokens (it stopped at once)."]
    mean = sum(probs) / len(probs)
    nll = -sum(math.log(max(p, 1e-12)) for p in probs) / len(probs)
    return [
        f"{len(samples)} sample(s), {len(probs)} generated tokens: the model gave the tokens it picked a mean "
        f"probability of {num(mean)} (geometric mean {num(math.exp(-nll))}); a uniform guess over the "
        f"{vocab_size:,}-token vocabulary would give {num(1 / vocab_size)}.",
        f"Most confident pick: {num(max(probs))}; least confident: {num(min(probs))}.",
    ]


# ----- embeddings and weights ---------------------------------------------------------------------------------
def versus_chance(beyond: bool) -> str:
    return "beyond chance" if beyond else "within chance, so no structure here"


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

    return _sentences(offsets, norms, token_pca, active, periods, smooth, neighbours)


def read_weights(f: dict) -> list[str]:
    def stats() -> str:
        st = f["stats"]
        return (
            f"{f['param']} (shape {' × '.join(map(str, f['shape']))}): mean {num(st['mean'])}, std "
            f"{num(st['std'])}, range {num(st['min'])} to {num(st['max'])}; {pct(st['fraction_near_zero'])} of "
            "the entries are within 0.001 of zero."
        )

    def largest() -> str:
        top = f["largest"][0]
        where = f"[{top['row']}, {top['col']}]" if "row" in top else f"[{top['index']}]"
        return f"Largest entry in magnitude: {num(top['value'])} at {where}."

    def spectrum() -> str:
        said = (
            f"Singular values: the largest is {num(f['singular_values'][0])}; stable rank "
            f"{num(f['stable_rank'])}, effective rank {num(f['effective_rank'])} (of "
            f"{min(f['block_shape'])} possible)."
        )
        noise = f.get("stable_rank_chance")
        if noise is None:
            return said
        return f"{said} A matrix of i.i.d. entries of this shape has stable rank {num(noise)}: " + (
            "a few directions dominate, beyond chance."
            if f["stable_rank"] < noise / 2
            else "no direction dominates more than in noise."
        )

    return _sentences(stats, largest, spectrum)


# ----- inside the layers --------------------------------------------------------------------------------------
_ROLE_NAMES = {
    "previous_token": "previous-token",
    "induction": "induction",
    "duplicate_token": "duplicate-token",
    "bos_sink": "BOS/sink",
}


def read_attention(f: dict) -> list[str]:
    heads = f.get("heads", [])

    def roles() -> str:
        said = []
        for role, members in f["roles"].items():
            if members:
                named = (
                    f"{_head_name(m)} ({num(m['score'])})" if isinstance(m, dict) and "score" in m else _head_name(m)
                    for m in members
                )
                said.append(f"{_ROLE_NAMES.get(role, role.replace('_', ' '))} heads: {_join(named)}")
        if not said:
            return (
                "No head clears the bar for a named role (previous-token, induction, duplicate-token or "
                "sink: a fixed threshold and twice a uniform head's score)."
            )
        return "Named roles — " + "; ".join(said) + "."

    def top(score: str, label: str) -> Callable[[], str]:
        def say() -> str:
            best = max((r for r in heads if r[score] is not None), key=lambda r: r[score])
            said = f"Strongest {label} score: {_head(best)} ({num(best[score])})"
            uniform = lookup(f, f"uniform_baseline.{score}")
            if uniform is None:
                return said + "."
            return f"{said}; a head attending uniformly scores {num(uniform)}."

        return say

    def prompt_induction() -> str:
        found = f["prompt_induction"]
        if not found["repeated_queries"]:
            return "The prompt repeats no token, so induction is measured on repeated random sequences only."
        best, uniform = found["best"], found["uniform_baseline"]
        return (
            f"On the prompt, {found['repeated_queries']} token(s) repeat an earlier one; there {_head(best)} puts "
            f"{num(best['score'])} of its attention on the token that followed the earlier copy (induction), a "
            f"uniform head {num(uniform)}: {versus_chance(best['score'] >= 2 * uniform)}."
        )

    def sink() -> str:
        by_layer = f["attention_sink"]["by_layer"]
        peak = max(range(len(by_layer)), key=lambda i: by_layer[i])
        uniform = lookup(f, "uniform_baseline.bos")
        said = (
            f"Attention to the first token (the sink): {pct(by_layer[0])} in layer 0, peaking at "
            f"{pct(by_layer[peak])} in layer {peak} (mean over heads and query positions)"
        )
        if uniform is None:
            return said + "."
        peak_share = by_layer[peak]
        verdict = (
            versus_chance(True)
            if peak_share >= BASELINE_FACTOR * uniform
            else "more than a uniform head, but not twice as much"
            if peak_share > 1.25 * uniform
            else versus_chance(False)
        )
        return f"{said}; a head attending uniformly gives it {pct(uniform)}: {verdict}."

    def last() -> str:
        last_token = f["last_token_attention"]
        top_keys = last_token["top_keys_by_layer"][-1][0]
        uniform = 1 / max(len(f.get("tokens", [])), 1)
        return (
            f"In the last layer the last token {quoted(last_token['token'])} looks most at "
            f"{quoted(top_keys['token'])} (position {top_keys['position']}, {pct(top_keys['weight'])}; spread "
            f"evenly, each token would get {pct(uniform)})."
        )

    def entropy() -> str:
        low = min(heads, key=lambda r: r["entropy"])
        high = max(heads, key=lambda r: r["entropy"])
        uniform = lookup(f, "uniform_baseline.entropy")
        said = (
            f"Most focused head {_head(low)} (entropy {num(low['entropy'])} nats); most diffuse "
            f"{_head(high)} ({num(high['entropy'])} nats)"
        )
        if uniform is None:
            return said + "."
        return f"{said}; a head attending uniformly has {num(uniform)} nats."

    return _sentences(
        roles,
        top("induction", "induction"),
        top("prev_token", "previous-token"),
        top("duplicate", "duplicate-token"),
        prompt_induction,
        sink,
        last,
        entropy,
    )


def read_neurons(f: dict) -> list[str]:
    def active() -> str:
        fractions = f["fraction_active_by_layer"]
        lo, hi = min(fractions), max(fractions)
        return (
            f"Share of GELU outputs above 0: from {pct(lo)} (layer {fractions.index(lo)}) to {pct(hi)} "
            f"(layer {fractions.index(hi)}); pre-activations symmetric around 0, as at initialisation, give 50%"
            + (": sparser than chance." if lo < 0.4 else ".")
        )

    def strongest() -> str:
        rows = f["strongest_neurons"][:3]
        return (
            "Strongest neurons on the prompt: "
            + ", ".join(f"L{r['layer']}N{r['neuron']} ({num(r['max_activation'])})" for r in rows)
            + "."
        )

    def chosen() -> str:
        n = f["neuron"]
        fires = ", ".join(quoted(t["token"]) for t in n["top_tokens"][:3])
        promotes = ", ".join(quoted(t["token"]) for t in n["promotes"][:4])
        suppresses = ", ".join(quoted(t["token"]) for t in n["suppresses"][:4])
        return (
            f"Neuron L{n['layer']}N{n['neuron']} fires most on {fires}; through the unembedding it promotes "
            f"{promotes} and suppresses {suppresses} (the key–value memory view)."
        )

    return _sentences(active, strongest, chosen)


def read_layernorm(f: dict) -> list[str]:
    rows = f["layernorms"]

    def centring() -> str:
        shares = [r["centring_share"] for r in rows]
        return (
            f"Centring (projection onto the hyperplane ⟂ the all-ones vector) removes {pct(min(shares))}–"
            f"{pct(max(shares))} of the input's squared norm, depending on the LayerNorm ({len(rows)} in all)."
        )

    def sphere() -> str:
        norms = [r["norm_before_gain"] for r in rows]
        return (
            f"Before the gain every output has norm {num(min(norms), 4)}–{num(max(norms), 4)}: the sphere of "
            f"radius √d = {num(f['sqrt_d'], 4)} (a hair less, because of ε)."
        )

    def gain() -> str:
        widest = max(rows, key=lambda r: r["gamma_max"] - r["gamma_min"])
        if widest["gamma_max"] == widest["gamma_min"]:
            return f"Every gain γ is {num(widest['gamma_max'])}: the LayerNorms keep the sphere a sphere."
        return (
            f"The widest gain spread is in {widest['name']}: γ from {num(widest['gamma_min'])} to "
            f"{num(widest['gamma_max'])} (sphere → ellipsoid); it amplifies dims "
            f"{', '.join(map(str, widest['most_amplified_dims'][:3]))} most and suppresses dims "
            f"{', '.join(map(str, widest['most_suppressed_dims'][:3]))}."
        )

    def angle() -> str:
        angles = [r["angle_deg"] for r in rows]
        return f"Angle between a LayerNorm's input and its output: {num(min(angles))}° to {num(max(angles))}°."

    def superposition() -> str:
        sp = f["superposition"]
        lo, hi = sp["band_deg"]
        rnd, opt = sp["random"], sp["optimised"]
        text = (
            f"Superposition toy: {sp['n_vectors']:,} directions in {sp['dim']} dims. Random, their pairwise angles "
            f"span {num(rnd['min_angle'])}–{num(rnd['max_angle'])}°; optimised, "
            f"{num(opt['min_angle'])}–{num(opt['max_angle'])}°"
        )
        welch = sp.get("welch_bound") or {}
        best = welch.get("best_possible_angle_range")
        if best:
            text += f" (the Welch bound allows no narrower than {num(best[0])}–{num(best[1])}°"
            most = welch.get("max_vectors_all_in_band")
            text += f"; at most {most:,} vectors can all be within {num(lo)}–{num(hi)}°)" if most is not None else ")"
        return (
            text + f". Pairs within {num(lo)}–{num(hi)}°: {pct(opt['fraction_in_band'])} "
            f"(random: {pct(rnd['fraction_in_band'])})."
        )

    def position_note() -> str | None:
        return "Statistics leave out position 0." if f.get("position_0_excluded") else None

    return _sentences(centring, sphere, gain, angle, superposition, position_note)


def read_residual(f: dict) -> list[str]:
    def growth() -> str:
        norms = f["norm_by_layer"]
        first, last = norms[0], norms[-1]
        return (
            f"The residual stream's mean norm grows from {num(first)} after the embedding to {num(last)} at "
            f"the end ({num(last / first)}×)."
        )

    def contributions() -> str:
        rows = f["contributions"]
        attn = max(rows, key=lambda r: r["attn_to_resid_ratio"])
        mlp = max(rows, key=lambda r: r["mlp_to_resid_ratio"])
        return (
            f"Relative to the stream it writes into, attention writes most in layer {attn['layer']} "
            f"({num(attn['attn_to_resid_ratio'])}× the stream's norm), the MLP in layer {mlp['layer']} "
            f"({num(mlp['mlp_to_resid_ratio'])}×)."
        )

    def outliers() -> str:
        dims = f["outlier_dims"][:3]
        if not dims:
            top = f.get("top_ratio_dims", [])
            biggest = (
                f" (the largest: dim {top[0]['dim']}, {num(top[0]['ratio_to_median'])}× the median)" if top else ""
            )
            threshold = f.get("outlier_threshold")
            noise = f.get("outlier_ratio_chance")
            baseline = f" Gaussian activations of this size reach {num(noise)}× in 95% of draws." if noise else ""
            return (
                f"No dimension reaches {num(threshold)}× the median |activation|{biggest}: no outlier dims.{baseline}"
                if threshold
                else f"No outlier dims{biggest}.{baseline}"
            )
        return (
            "Outlier (massive) dims: "
            + "; ".join(
                f"dim {d['dim']} reaches |{num(d['max_abs'])}|, {num(d['ratio_to_median'])}× the median" for d in dims
            )
            + "."
        )

    def position_note() -> str | None:
        excluded = f.get("position_0_excluded")
        return "Statistics exclude position 0 (its massive activations would dominate)." if excluded else None

    def position_0() -> str | None:
        if not f.get("position_0_excluded"):
            return None
        dims = f["position_0_dims"][:2]
        if not dims:
            return "Position 0 has no massive dimension either (none reaches the outlier threshold there)."
        return (
            "At position 0, left out above, "
            + "; ".join(
                f"dim {d['dim']} reaches |{num(d['max_abs'])}|, {num(d['ratio_to_median'])}× the median of the other "
                f"positions (in {len(d['layers'])} of {len(f['states'])} states, from {f['states'][d['layers'][0]]})"
                for d in dims
            )
            + "."
        )

    return _sentences(growth, contributions, outliers, position_note, position_0)


def first_stable_top1_layer(ranks: Sequence[Sequence[int]], position: int) -> int | None:
    """First layer index from which the final top-1 token stays at rank 0 at `position`."""
    column = [row[position] for row in ranks]
    if column[-1] != 0:
        return None
    layer = len(column) - 1
    while layer > 0 and column[layer - 1] == 0:
        layer -= 1
    return layer


def read_journey(f: dict) -> list[str]:
    layers, ranks = f["layers"], f["final_token_rank"]
    tokens = f.get("tokens")

    def last_position() -> str:
        position = len(ranks[0]) - 1
        final = f["top1"][-1][position]
        first = first_stable_top1_layer(ranks, position)
        after = tokens[position] if tokens else f"position {position}"
        return (
            f"After {quoted(after)} (last position) the model predicts {quoted(final)}; it is the logit lens's "
            f"top-1 from {layers[first]} on."
        )

    def typical() -> str:
        found = [first_stable_top1_layer(ranks, p) for p in range(len(ranks[0]))]
        firsts = [x for x in found if x is not None]
        mean = sum(firsts) / len(firsts)
        return (
            f"Averaged over the {len(firsts)} positions, the final prediction becomes top-1 for good at layer "
            f"index {num(mean)} (0 = the embedding, {len(layers) - 1} = after the last block)."
        )

    def kl() -> str:
        means = f.get("kl_to_final_mean") or [sum(r) / len(r) for r in f["kl_to_final"]]
        half = next(i for i, m in enumerate(means) if m <= means[0] / 2)
        return (
            f"KL divergence to the final distribution falls from {num(means[0])} nats at {layers[0]} to "
            f"{num(means[-1])} at {layers[-1]}; it halves by {layers[half]}."
        )

    return _sentences(last_position, typical, kl)


def read_saliency(f: dict) -> list[str]:
    tokens = f["tokens"]

    def target() -> str:
        t = f["target"]
        return (
            f"Target: {quoted(t['token'])} after the last token ({t['chosen_by']}; probability "
            f"{num(t['probability'])}, " + ("the top guess)." if t["rank"] == 0 else f"ranked {t['rank'] + 1:,})")
        )

    def method(key: str, label: str) -> Callable[[], str]:
        def say() -> str:
            scores = f[key]
            order = sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:3]
            said = (
                f"{label}: the inputs that matter most are "
                + ", ".join(f"{quoted(tokens[i])} (position {i}, {num(scores[i])})" for i in order)
                + "."
            )
            total = sum(abs(x) for x in scores)
            if len(scores) < 2 or total == 0:
                return said
            share, even = abs(scores[order[0]]) / total, 1 / len(scores)
            return (
                f"{said} The first carries {pct(share)} of the total |attribution| (spread evenly over the "
                f"{len(scores)} tokens, each would carry {pct(even)})."
            )

        return say

    def completeness() -> str:
        c = f["completeness"]
        return (
            f"Integrated gradients sum to {num(c['sum_integrated_gradients'])} against f(x) − f(baseline) = "
            f"{num(c['f_difference'])} (completeness error {num(c['abs_error'])})."
        )

    return _sentences(
        target,
        method("integrated_gradients", "Integrated gradients"),
        method("gradient_x_input", "Gradient × input"),
        completeness,
    )


def _layer_name(layer: Any) -> str:
    """Geometry's layer index: 0 is the embedding output, k the residual stream after block k-1."""
    if not isinstance(layer, int):
        return str(layer)
    return "the embedding output" if layer == 0 else f"the output of block {layer - 1}"


def read_geometry(f: dict) -> list[str]:
    rows = [r for r in f["layers"] if r.get("substep", "resid") == "resid"]

    def corpus() -> str:
        c = f["corpus"]
        name = c if isinstance(c, str) else c.get("description") or c.get("name")
        n = f.get("n_texts")
        return f"Corpus: {name}" + (f", {n:,} texts." if n else ".")

    def profile(cloud: str) -> Callable[[], str]:
        def say() -> str:
            mine = [r for r in rows if r["cloud"] == cloud and r.get("twonn_id") is not None]
            peak = max(mine, key=lambda r: r["twonn_id"])
            said = (
                f"{cloud.replace('_', ' ')} cloud: TwoNN intrinsic dimension {num(mine[0]['twonn_id'])} at "
                f"{_layer_name(mine[0]['layer'])}, peaks at {num(peak['twonn_id'])} ± {num(peak.get('twonn_err'))} "
                f"at {_layer_name(peak['layer'])}, ends at {num(mine[-1]['twonn_id'])} at "
                f"{_layer_name(mine[-1]['layer'])}; PCA needs {min(r['pca_id_90'] for r in mine)}–"
                f"{max(r['pca_id_90'] for r in mine)} components for 90% of the variance."
            )
            summary = f.get("summary", {}).get(cloud, {})
            control, control_err = summary.get("peak_control_twonn_id"), summary.get("peak_control_twonn_err")
            at_peak = next((r for r in mine if r["layer"] == summary.get("peak_layer")), None)
            if control is None or at_peak is None:
                return said
            measured, err = at_peak["twonn_id"], at_peak.get("twonn_err") or 0.0
            gap = abs(measured - control)
            beyond = gap > 3 * math.hypot(err, control_err or 0.0)
            return (
                f"{said} At {_layer_name(at_peak['layer'])} a random-initialised GPT-2 of this shape, on the same "
                f"points, gives {num(control)} ± {num(control_err)} against {num(measured)}: "
                + (
                    f"{'higher' if measured > control else 'lower'} than chance, beyond 3 standard errors."
                    if beyond
                    else versus_chance(False) + "."
                )
            )

        return say

    def anisotropy() -> str:
        mine = [r for r in rows if r["cloud"] == "last_token"] or rows
        worst = max(mine, key=lambda r: r["mean_cosine"])
        said = (
            f"Anisotropy (mean pairwise cosine) is highest at {_layer_name(worst['layer'])} "
            f"({num(worst['mean_cosine'])}): there the representations crowd into the narrowest cone."
        )
        control = f.get("control")
        if not control or worst["cloud"] not in control.get("mean_cosine", {}):
            return said
        twin = control["mean_cosine"][worst["cloud"]][worst["layer"]]
        gap = worst["mean_cosine"] - twin
        return f"{said} A random-initialised GPT-2 of this shape gives {num(twin)} there: " + (
            f"{'narrower' if gap > 0 else 'wider'} than chance."
            if abs(gap) >= ANISOTROPY_GAP
            else versus_chance(False) + "."
        )

    def position_note() -> str | None:
        settings = f["settings"]
        return (
            None
            if settings.get("include_first_position")
            else "Position 0 is left out (its massive activations distort distances)."
        )

    return _sentences(corpus, profile("last_token"), profile("all_tokens"), anisotropy, position_note)


def key_numbers(findings: dict, limit: int = 8) -> list[str]:
    """Fallback reading: the scalar findings, as "key: value"."""
    out = []
    for key, value in findings.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(f"{key.replace('_', ' ')}: {num(value)}.")
        elif isinstance(value, str) and len(value) < 120:
            out.append(f"{key.replace('_', ' ')}: {value}.")
        if len(out) >= limit:
            break
    return out


READERS: dict[str, Callable[[dict], list[str]]] = {
    "embeddings": read_embeddings,
    "weights": read_weights,
    "attention": read_attention,
    "neurons": read_neurons,
    "layernorm": read_layernorm,
    "residual": read_residual,
    "journey": read_journey,
    "saliency": read_saliency,
    "geometry": read_geometry,
}


def read(area: str, findings: dict) -> list[str]:
    """The reading of an area's findings (the scalar findings if its reader finds nothing it knows)."""
    reader = READERS.get(area)
    sentences = reader(findings) if reader else []
    return sentences or key_numbers(findings)


# ----- how it learned (typed findings) ---------------------------------------------------------------------------
UNIFORM_GUESS_NATS = math.log(50257)  # the loss of a uniform guess over GPT-2's vocabulary
NOISE_ROUGHNESS = math.sqrt(2)  # the roughness of a table of independent random rows


def _between(appearance: Appearance) -> str:
    """'between 8.39M and 16.8M tokens' (the checkpoints either side of the half-way crossing)."""
    after = tokens_text(appearance.halfway_tokens, appearance.halfway_step)
    if appearance.before_step == appearance.halfway_step:
        return f"by {after}"
    return f"between {tokens_text(appearance.before_tokens, appearance.before_step)} and {after}"


def read_dynamics(dynamics: Dynamics) -> list[str]:
    """What appeared during training and when, each against the initial checkpoint and a chance baseline."""
    sentences = []
    val = [p for p in dynamics.losses if p.val_loss is not None]
    if len(val) >= 2:
        sentences.append(
            f"Validation loss fell from {val[0].val_loss:.2f} nats per token at initialisation (a uniform guess over "
            f"the vocabulary costs {UNIFORM_GUESS_NATS:.2f}) to {val[-1].val_loss:.2f} after "
            f"{tokens_text(val[-1].tokens, val[-1].step)}; the lowest was {min(p.val_loss for p in val if p.val_loss is not None):.2f}."
        )
    first, last = dynamics.positions[0], dynamics.positions[-1]
    rough = next(a for a in dynamics.appearances if a.what == "position roughness")
    if last.roughness < first.roughness / 2:
        sentences.append(
            f"The position embeddings went from noise to smooth curves: roughness (mean step between neighbouring "
            f"rows over mean row norm; independent random rows score {NOISE_ROUGHNESS:.2f}) fell from "
            f"{first.roughness:.2f} at initialisation to {last.roughness:.2f} ({last.roughness / first.roughness:.2f}x), "
            f"half of that fall came {_between(rough)}; their first three principal "
            f"components hold {pct(last.pca3_share)} of the variance (at initialisation {pct(first.pca3_share)})."
        )
    else:
        sentences.append(
            f"The position embeddings did not smooth beyond their initialisation: roughness {first.roughness:.2f} "
            f"then, {last.roughness:.2f} now (independent random rows score {NOISE_ROUGHNESS:.2f})."
        )
    if len(dynamics.checkpoints) >= 2:
        initial, final = dynamics.checkpoints[0], dynamics.checkpoints[-1]
        for name, role in (("prev_token", "previous-token"), ("induction", "induction")):
            layer, head, score = final.head(name).best()
            before = initial.head(name).values[layer][head]
            chance = max(dynamics.uniform_head[name], max(v for row in initial.head(name).values for v in row))
            when = next(a for a in dynamics.appearances if a.what.startswith(f"{name} score"))
            if score >= 2 * chance and score - chance >= 0.05:
                sentences.append(
                    f"Head {layer}.{head} became the strongest {role} head: {score:.2f} of its attention where the "
                    f"role puts it, against {before:.2f} for the same head at initialisation and "
                    f"{dynamics.uniform_head[name]:.2f} for a head attending evenly; half of its rise came "
                    f"{_between(when)}."
                )
            else:
                sentences.append(
                    f"No {role} head stands out: the best, {layer}.{head}, scores {score:.2f}, against {chance:.2f} for "
                    f"the best head at initialisation or a head attending evenly."
                )
    if dynamics.note:
        sentences.append(dynamics.note[0].upper() + dynamics.note[1:] + ".")
    return sentences
