"""LayerNorm geometry, one step at a time, for every LayerNorm of the model (each ln1, ln2 and ln_final).

    LN(x) = gamma * (x - mean(x) 1) / sqrt(var(x) + eps) + beta

1. centring: x - mean(x) 1 projects x onto the hyperplane orthogonal to the all-ones vector, removing
   d mean(x)^2 of its squared norm;
2. scaling: ||x - mean(x) 1|| = sqrt(d var(x)), so after dividing by sqrt(var + eps) every vector lies on the
   sphere of radius sqrt(d) * sqrt(var / (var + eps)), i.e. sqrt(d) up to eps;
3. the gain gamma stretches that sphere into an axis-aligned ellipsoid (a negative gamma also flips its dim);
4. the shift beta moves the ellipsoid off the origin.

The analysis recomputes each step in float64 from the LayerNorm's real input on the prompt, checks the
invariants, and compares the result with the model's own LayerNorm. It also carries three small companions the
issue asks for next to it: a d = 3 toy, the GELU curve of the MLP, and a superposition toy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from gpt2atlas.analysis.base import FLATTENED, AnalysisResult, check_index
from gpt2atlas.analysis.residual import position_policy, stat_positions
from gpt2atlas.errors import InputError, check_seed
from gpt2atlas.model.gpt2 import GPT2, Block, LayerNorm
from gpt2atlas.model.names import act_name, module_name
from gpt2atlas.numerics.pca import fit_pca

TOP_DIMS = 5
GAMMA_OUTLIER_Z = 6.0  # robust z-score (median / MAD) above which a gain is marked as an outlier dim
SUPERPOSITION_BAND = (89.0, 91.0)
SUPERPOSITION_LR = 0.1


# ----- findings ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GammaSummary:
    """Spread of one LayerNorm's gain: range, the most amplified / suppressed dims (by |gamma|), outlier dims."""

    gamma_min: float
    gamma_max: float
    gamma_mean: float
    gamma_std: float
    most_amplified_dims: list[int]
    most_amplified_gammas: list[float]
    most_suppressed_dims: list[int]
    most_suppressed_gammas: list[float]
    gamma_outlier_dims: list[int]


@dataclass(frozen=True)
class LayerNormRow:
    """Every number the findings give for one LayerNorm on the prompt (the gain's spread included)."""

    name: str
    centring_share: float
    centring_share_max: float
    centred_mean_max_abs: float
    norm_before_gain: float
    sqrt_d: float
    norm_before_gain_max_rel_dev_from_sqrt_d: float
    norm_before_gain_max_abs_dev_from_eps_formula: float
    gain: GammaSummary = field(metadata=FLATTENED)  # its fields are written here, in the row
    beta_norm: float
    angle_deg: float
    angle_centring_deg: float
    max_abs_diff_vs_model: float
    output_max_abs: float


@dataclass(frozen=True)
class LayerNormInvariants:
    """The worst case over all LayerNorms of each invariant, and whether it holds."""

    centred_mean_max_abs: float
    norm_before_gain_max_abs_dev_from_eps_formula: float
    norm_before_gain_max_rel_dev_from_sqrt_d: float
    max_abs_diff_vs_model: float
    output_max_abs: float
    centred_has_zero_mean: bool
    norm_is_sqrt_d_up_to_eps: bool
    matches_model: bool
    matches_model_tolerance: float
    definitions: dict[str, str]


@dataclass(frozen=True)
class PositionDim:
    """A dim of the position embedding and log10 of its std over positions."""

    dim: int
    log10_std: float


@dataclass(frozen=True)
class GainCorrelation:
    """How one LayerNorm's log|gamma| correlates with the position dims (None for a constant gain)."""

    name: str
    pearson: float | None


@dataclass(frozen=True)
class GammaVsPosition:
    position_dims: list[PositionDim]
    correlation: list[GainCorrelation]
    definition: str


@dataclass(frozen=True)
class Toy3D:
    """The numbers of the d = 3 toy."""

    n_points: int
    gamma: list[float]
    beta: list[float]
    eps: float
    centred_sum_max_abs: float
    radius_min: float
    radius_max: float
    sqrt_d: float


@dataclass(frozen=True)
class GeluNumbers:
    """GELU's minimum, and how the layer's real MLP pre-activations fall on it."""

    minimum: float
    argmin: float
    fraction_pre_activations_negative: float
    fraction_outputs_negative: float
    pre_activation_mean: float
    pre_activation_std: float
    layer: int


@dataclass(frozen=True)
class AngleStats:
    """Pairwise angles (degrees) of a set of vectors, and the share inside the target band."""

    fraction_in_band: float
    min_angle: float
    max_angle: float
    std_angle: float


@dataclass(frozen=True)
class WelchLimits:
    """What the Welch bound allows (see welch_limits); max_vectors_all_in_band is None when it sets no limit."""

    min_possible_max_abs_cos: float
    best_possible_angle_range: list[float]
    max_vectors_all_in_band: int | None


@dataclass(frozen=True)
class Superposition:
    """The superposition toy: its setup, the angles before and after optimising, and the Welch bound."""

    n_vectors: int
    dim: int
    steps: int
    seed: int
    band_deg: list[float]
    random: AngleStats
    optimised: AngleStats
    welch_bound: WelchLimits
    loss: str
    seconds: float


@dataclass(frozen=True)
class LayerNormFindings:
    tokens: list[str]
    token_ids: list[int]
    position_0_excluded: bool
    position_note: str
    d_model: int
    sqrt_d: float
    eps: float
    layernorms: list[LayerNormRow]  # forward order: blocks.0.ln1, blocks.0.ln2, ..., ln_final
    invariants: LayerNormInvariants
    gamma_vs_position: GammaVsPosition
    illustrated_layernorm: str
    toy_3d: Toy3D
    gelu: GeluNumbers
    superposition: Superposition
    definitions: dict[str, str]


# ----- the steps ------------------------------------------------------------------------------------------------
@dataclass
class LayerNormSteps:
    """One LayerNorm applied to (n, d) vectors, every intermediate kept (float64)."""

    input: torch.Tensor
    centred: torch.Tensor  # on the hyperplane orthogonal to the all-ones vector
    normalized: torch.Tensor  # on the sphere of radius sqrt(d) (up to eps)
    scaled: torch.Tensor  # after the gain: on an ellipsoid
    output: torch.Tensor  # after the shift
    variance: torch.Tensor  # (n,) biased variance of the input


def layernorm_steps(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> LayerNormSteps:
    """Centre, scale, gain, shift: LayerNorm written out step by step."""
    x = x.double()
    centred = x - x.mean(dim=-1, keepdim=True)
    variance = centred.pow(2).mean(dim=-1)
    normalized = centred / (variance[:, None] + eps).sqrt()
    scaled = normalized * gamma.double()
    return LayerNormSteps(x, centred, normalized, scaled, scaled + beta.double(), variance)


def layernorm_sites(model: GPT2) -> list[tuple[str, LayerNorm, str]]:
    """(name, module, hook of its input) for every LayerNorm, in forward order."""
    n_layer = model.cfg.n_layer
    sites: list[tuple[str, LayerNorm, str]] = []
    for layer, block in enumerate(cast(list[Block], model.blocks)):
        sites.append((module_name(layer, "ln1"), block.ln1, act_name("resid_pre", layer)))
        sites.append((module_name(layer, "ln2"), block.ln2, act_name("resid_mid", layer)))
    sites.append(("ln_final", cast(LayerNorm, model.ln_final), act_name("resid_post", n_layer - 1)))
    return sites


def _angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cos))


def gamma_summary(gamma: torch.Tensor, top: int = TOP_DIMS) -> GammaSummary:
    """Spread of the gain: min, max, the most amplified / suppressed dims (by |gamma|), robust outliers."""
    g = gamma.detach().double().cpu()
    order = g.abs().argsort(descending=True)
    median = g.median()
    mad = (g - median).abs().median() * 1.4826
    deviation = (g - median).abs()
    outliers = deviation > GAMMA_OUTLIER_Z * mad if mad > 0 else deviation > 1e-12 * max(1.0, float(median.abs()))
    return GammaSummary(
        gamma_min=float(g.min()),
        gamma_max=float(g.max()),
        gamma_mean=float(g.mean()),
        gamma_std=float(g.std()) if len(g) > 1 else 0.0,
        most_amplified_dims=order[:top].tolist(),
        most_amplified_gammas=g[order[:top]].tolist(),
        most_suppressed_dims=order.flip(0)[:top].tolist(),
        most_suppressed_gammas=g[order.flip(0)[:top]].tolist(),
        gamma_outlier_dims=torch.nonzero(outliers).flatten().tolist(),
    )


def layernorm_row(name: str, module: LayerNorm, x: torch.Tensor) -> tuple[LayerNormRow, LayerNormSteps]:
    """Every number the findings give for one LayerNorm on (n, d) inputs `x` (on the model's device)."""
    d = x.shape[-1]
    steps = layernorm_steps(x.cpu(), module.w.detach().cpu(), module.b.detach().cpu(), module.eps)
    with torch.inference_mode():
        model_output = module(x).double().cpu()
    in_sq = steps.input.pow(2).sum(dim=-1).clamp_min(1e-300)
    removed = (in_sq - steps.centred.pow(2).sum(dim=-1)) / in_sq
    norm = steps.normalized.norm(dim=-1)
    exact = (d * steps.variance / (steps.variance + module.eps)).sqrt()
    row = LayerNormRow(
        name=name,
        centring_share=float(removed.mean()),
        centring_share_max=float(removed.max()),
        centred_mean_max_abs=float(steps.centred.mean(dim=-1).abs().max()),
        norm_before_gain=float(norm.mean()),
        sqrt_d=math.sqrt(d),
        norm_before_gain_max_rel_dev_from_sqrt_d=float(((norm - math.sqrt(d)).abs() / math.sqrt(d)).max()),
        norm_before_gain_max_abs_dev_from_eps_formula=float((norm - exact).abs().max()),
        gain=gamma_summary(module.w),
        beta_norm=float(module.b.detach().double().norm()),
        angle_deg=float(_angle_deg(steps.input, steps.output).mean()),
        angle_centring_deg=float(_angle_deg(steps.input, steps.centred).mean()),
        max_abs_diff_vs_model=float((steps.output - model_output).abs().max()),
        output_max_abs=float(steps.output.abs().max()),
    )
    return row, steps


def invariants(rows: list[LayerNormRow], dtype: torch.dtype = torch.float32) -> LayerNormInvariants:
    """The worst case over all LayerNorms of each invariant, and whether it holds.

    The model's own LayerNorm runs in `dtype`, so it may differ from the float64 steps by its rounding:
    max(1e-4, 4 eps(dtype)) times the largest |output|.
    """
    centred_mean = max(r.centred_mean_max_abs for r in rows)
    eps_formula = max(r.norm_before_gain_max_abs_dev_from_eps_formula for r in rows)
    diff = max(r.max_abs_diff_vs_model for r in rows)
    output = max(r.output_max_abs for r in rows)
    tolerance = max(1e-4, 4 * torch.finfo(dtype).eps) * max(1.0, output)
    return LayerNormInvariants(
        centred_mean_max_abs=centred_mean,
        norm_before_gain_max_abs_dev_from_eps_formula=eps_formula,
        norm_before_gain_max_rel_dev_from_sqrt_d=max(r.norm_before_gain_max_rel_dev_from_sqrt_d for r in rows),
        max_abs_diff_vs_model=diff,
        output_max_abs=output,
        centred_has_zero_mean=centred_mean < 1e-9,
        norm_is_sqrt_d_up_to_eps=eps_formula < 1e-9,
        matches_model=diff <= tolerance,
        matches_model_tolerance=tolerance,
        definitions={
            "norm_before_gain_max_rel_dev_from_sqrt_d": "|norm - sqrt(d)| / sqrt(d): the effect of eps, large only "
            "when var(x) is not much larger than eps",
            "norm_before_gain_max_abs_dev_from_eps_formula": "|norm - sqrt(d var / (var + eps))|: rounding only",
        },
    )


# ----- gains against the position embedding ---------------------------------------------------------------------
def position_log_std(model: GPT2) -> torch.Tensor:
    """log10 of the std over positions of each dim of the position embedding."""
    return model.W_pos.detach().double().cpu().std(dim=0).clamp_min(1e-30).log10()


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    scale = a.norm() * b.norm()
    return float((a @ b) / scale) if scale > 1e-12 else None


def gamma_vs_position(model: GPT2, sites: list[tuple[str, LayerNorm, str]]) -> GammaVsPosition:
    """Which dims carry position, and how each LayerNorm's log|gamma| correlates with them."""
    pos = position_log_std(model)
    top = pos.argsort(descending=True)[:10]

    def log_gain(module: LayerNorm) -> torch.Tensor:
        return module.w.detach().double().cpu().abs().clamp_min(1e-30).log10()

    return GammaVsPosition(
        position_dims=[PositionDim(int(d), float(pos[d])) for d in top],
        correlation=[GainCorrelation(name, _correlation(log_gain(module), pos)) for name, module, _ in sites],
        definition="Pearson correlation over dims of log10|gamma| with log10 std over positions of W_pos",
    )


# ----- companions: the d = 3 toy, GELU, superposition -------------------------------------------------------------
def toy_3d(seed: int = 0, n_points: int = 150) -> tuple[Toy3D, LayerNormSteps]:
    """LayerNorm in d = 3: points land on the plane orthogonal to [1, 1, 1], then on a circle of radius sqrt(3)."""
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[1.0, 0.3, 0.0], [0.2, 0.8, 0.4], [0.0, 0.5, 1.2]], dtype=torch.float64)
    offset = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    points = torch.randn(n_points, 3, generator=gen, dtype=torch.float64) @ mixing + offset
    gamma = torch.tensor([1.6, 0.6, 1.0], dtype=torch.float64)
    beta = torch.tensor([0.4, -0.3, 0.2], dtype=torch.float64)
    steps = layernorm_steps(points, gamma, beta, 1e-5)
    radius = steps.normalized.norm(dim=-1)
    numbers = Toy3D(
        n_points=n_points,
        gamma=gamma.tolist(),
        beta=beta.tolist(),
        eps=1e-5,
        centred_sum_max_abs=float(steps.centred.sum(dim=-1).abs().max()),
        radius_min=float(radius.min()),
        radius_max=float(radius.max()),
        sqrt_d=math.sqrt(3),
    )
    return numbers, steps


def gelu_summary(pre_activations: torch.Tensor, layer: int) -> tuple[GeluNumbers, np.ndarray, np.ndarray]:
    """GELU (tanh form, GPT-2's) on a grid, its minimum, and how block `layer`'s real pre-activations fall on it."""
    grid = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    curve = torch.nn.functional.gelu(grid, approximate="tanh")
    low = int(curve.argmin())
    pre = pre_activations.double().flatten()
    numbers = GeluNumbers(
        minimum=float(curve[low]),
        argmin=float(grid[low]),
        fraction_pre_activations_negative=float((pre < 0).double().mean()),
        fraction_outputs_negative=float((torch.nn.functional.gelu(pre, approximate="tanh") < 0).double().mean()),
        pre_activation_mean=float(pre.mean()),
        pre_activation_std=float(pre.std()) if pre.numel() > 1 else 0.0,
        layer=layer,
    )
    return numbers, grid.numpy(), curve.numpy()


def _pair_angles(vectors: torch.Tensor) -> torch.Tensor:
    units = vectors / vectors.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(len(units), len(units), offset=1)
    return torch.rad2deg(torch.arccos((units @ units.T)[i, j].clamp(-1, 1)))


def _angle_stats(angles: torch.Tensor, band: tuple[float, float]) -> AngleStats:
    inside = (angles >= band[0]) & (angles <= band[1])
    return AngleStats(
        fraction_in_band=float(inside.double().mean()),
        min_angle=float(angles.min()),
        max_angle=float(angles.max()),
        std_angle=float(angles.std()),
    )


def welch_limits(n_vectors: int, dim: int, band: tuple[float, float]) -> WelchLimits:
    """What the Welch bound allows: the smallest possible max |cos| of n unit vectors in `dim` dims, and the most
    vectors whose pairwise angles can all fall in `band`."""
    coherence = math.sqrt(max(n_vectors - dim, 0) / (dim * (n_vectors - 1))) if n_vectors > 1 else 0.0
    eps = math.cos(math.radians(min(band[0], 180 - band[1])))  # the band's half-width in |cos|
    most = None if dim * eps**2 >= 1 else math.floor(dim * (1 - eps**2) / (1 - dim * eps**2))
    return WelchLimits(
        min_possible_max_abs_cos=coherence,
        best_possible_angle_range=[math.degrees(math.acos(coherence)), 180 - math.degrees(math.acos(coherence))],
        max_vectors_all_in_band=most,
    )


ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


def adam_update(
    param: torch.Tensor, grad: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor], step: int, lr: float
) -> None:
    """One Adam step (Kingma & Ba, as torch.optim.Adam computes it) on `param`, in place; `step` counts from 1.

    Written out because constructing any torch.optim optimizer first imports torch._dynamo: 1.8 s on 2 cores,
    the bulk of the LayerNorm analysis the first time in a process.
    """
    (beta1, beta2), (mean, mean_sq) = ADAM_BETAS, moments
    mean.mul_(beta1).add_(grad, alpha=1 - beta1)
    mean_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (mean_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(ADAM_EPS)
    param.addcdiv_(mean, denom, value=-lr / (1 - beta1**step))


def superposition_toy(
    n_vectors: int = 1000,
    dim: int = 100,
    steps: int = 50,
    seed: int = 0,
    band: tuple[float, float] = SUPERPOSITION_BAND,
) -> tuple[Superposition, torch.Tensor, torch.Tensor]:
    """Random unit vectors, then optimised by gradient descent (Adam) to be as close to orthogonal as possible.

    The loss is sum over pairs of (cos / max|cos|)^8, a soft maximum of |cos| that pushes the worst pairs hardest.
    Its gradient is written out (2 G U with G = 8 (cos/max)^7 / max, then projected off each vector's own
    direction), which costs two matmuls a step. Returns the numbers and the pairwise angles before and after.
    """
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    initial = torch.randn(n_vectors, dim, generator=gen)
    vectors = initial.clone()
    moments = (torch.zeros_like(vectors), torch.zeros_like(vectors))
    with torch.no_grad():
        for step in range(1, steps + 1):
            norms = vectors.norm(dim=1, keepdim=True)
            units = vectors / norms
            cos = units @ units.T
            cos.fill_diagonal_(0.0)
            cos /= cos.abs().max()
            square = cos * cos
            grad_units = (square * square * square * cos) @ units  # (cos/max)^7; Adam ignores constant factors
            grad = (grad_units - units * (units * grad_units).sum(dim=1, keepdim=True)) / norms
            adam_update(vectors, grad, moments, step, SUPERPOSITION_LR)
    before, after = _pair_angles(initial), _pair_angles(vectors)
    numbers = Superposition(
        n_vectors=n_vectors,
        dim=dim,
        steps=steps,
        seed=seed,
        band_deg=list(band),
        random=_angle_stats(before, band),
        optimised=_angle_stats(after, band),
        welch_bound=welch_limits(n_vectors, dim, band),
        loss=f"sum over pairs of (cos / max|cos|)^8 (a soft max of |cos|), Adam lr {SUPERPOSITION_LR:g}",
        seconds=time.perf_counter() - start,
    )
    return numbers, before, after


# ----- PCA for the 3D illustration ---------------------------------------------------------------------------------
def top3_projection(x: torch.Tensor) -> tuple[np.ndarray, float]:
    """Coordinates of (n, d) vectors on their top-3 right singular vectors (no centring: the origin stays put)
    and the share of the squared norm those three directions hold."""
    through_origin = fit_pca(x, centre=False)
    coords = through_origin.project(x, 3)
    if coords.shape[1] < 3:
        coords = np.pad(coords, ((0, 0), (0, 3 - coords.shape[1])))
    return coords, float(through_origin.ratio[:3].sum())


# ----- the analysis -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerNormDrawings:
    """What the figures draw beyond the findings' numbers."""

    toy: LayerNormSteps  # the 3-D toy's steps
    steps: LayerNormSteps  # the illustrated LayerNorm's steps on the prompt's positions
    step_tokens: list[str]  # the token at each of those positions
    gammas: dict[str, np.ndarray]  # every LayerNorm's gain, by name
    position_log_std: np.ndarray  # log std of the position embedding per dim
    gelu_grid: np.ndarray
    gelu_curve: np.ndarray
    pre_activations: np.ndarray  # the illustrated MLP's pre-activations on the prompt
    angles_before: np.ndarray  # superposition toy: pairwise angles before and after the optimisation
    angles_after: np.ndarray


class LayerNormResult(AnalysisResult[LayerNormFindings]):
    """Findings, plus what the figures draw: the toy's and the chosen LayerNorm's steps, gains, GELU, angles."""

    area = "layernorm"

    def __init__(self, findings: LayerNormFindings, drawings: LayerNormDrawings) -> None:
        super().__init__(findings)
        self.drawings = drawings


def analyze(
    model: GPT2,
    prompt: str,
    *,
    layer: int | None = None,
    include_first: bool = False,
    seed: int = 0,
    superposition_vectors: int = 1000,
    superposition_dim: int = 100,
    superposition_steps: int = 50,
) -> LayerNormResult:
    """Every LayerNorm's geometry on `prompt`; `layer` picks the block drawn in 3D and whose MLP shows GELU.

    The superposition toy packs `superposition_vectors` unit vectors into `superposition_dim` dims.
    """
    check_seed(seed)
    for name, value, least in (
        ("superposition_vectors", superposition_vectors, 2),
        ("superposition_dim", superposition_dim, 1),
        ("superposition_steps", superposition_steps, 0),
    ):
        if value < least:
            raise InputError(f"{name}={value} must be a whole number >= {least}", arguments=(name,))
    n_layer = model.cfg.n_layer
    check_index(layer, n_layer, "layer")
    layer = n_layer // 2 if layer is None else layer
    tokens = model.to_tokens(prompt)
    token_ids = tokens[0].tolist()
    positions = stat_positions(len(token_ids), include_first)
    sites = layernorm_sites(model)
    hooks = list(dict.fromkeys(hook for _, _, hook in sites)) + [act_name("pre", layer)]
    _, cache = model.run_with_cache(tokens, names=hooks)

    rows: list[LayerNormRow] = []
    drawn = None
    for name, module, hook in sites:
        row, steps = layernorm_row(name, module, cache[hook][0, positions])
        rows.append(row)
        if name == module_name(layer, "ln1"):
            drawn = steps
    assert drawn is not None, "every block's ln1 is a LayerNorm site"
    toy_numbers, toy_steps = toy_3d(seed)
    pre_activations = cache[act_name("pre", layer)][0, positions].double().cpu()
    gelu_numbers, grid, curve = gelu_summary(pre_activations, layer)
    superposition, angles_before, angles_after = superposition_toy(
        superposition_vectors, superposition_dim, superposition_steps, seed
    )

    policy = position_policy(len(token_ids), include_first)
    findings = LayerNormFindings(
        tokens=model.tokenizer.to_str_tokens(token_ids),
        token_ids=token_ids,
        position_0_excluded=policy.position_0_excluded,
        position_note=policy.position_note,
        d_model=model.cfg.d_model,
        sqrt_d=math.sqrt(model.cfg.d_model),
        eps=model.cfg.layer_norm_eps,
        layernorms=rows,
        invariants=invariants(rows, model.dtype),
        gamma_vs_position=gamma_vs_position(model, sites),
        illustrated_layernorm=module_name(layer, "ln1"),
        toy_3d=toy_numbers,
        gelu=gelu_numbers,
        superposition=superposition,
        definitions={
            "centring_share": "share of the input's squared norm removed by centring, d mean(x)^2 / ||x||^2",
            "norm_before_gain": "mean norm of (x - mean) / sqrt(var + eps): sqrt(d) up to eps",
            "angle_deg": "mean angle between the LayerNorm's input and its output (after gain and shift)",
            "angle_centring_deg": "mean angle between the input and its centred version",
            "gamma_outlier_dims": f"dims whose gain is more than {GAMMA_OUTLIER_Z:g} robust std (1.4826 MAD) "
            "from the median gain",
        },
    )
    drawings = LayerNormDrawings(
        toy=toy_steps,
        steps=drawn,
        step_tokens=[findings.tokens[p] for p in positions.tolist()],
        gammas={name: module.w.detach().double().cpu().numpy() for name, module, _ in sites},
        position_log_std=position_log_std(model).numpy(),
        gelu_grid=grid,
        gelu_curve=curve,
        pre_activations=pre_activations.flatten().numpy(),
        angles_before=angles_before.numpy(),
        angles_after=angles_after.numpy(),
    )
    return LayerNormResult(findings, drawings)
