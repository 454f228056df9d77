"""The model summary (parameters per component) and a 3D view of the architecture, from `analysis.summary`.

In the 3D view every component is a cube whose volume is proportional to its parameter count; blocks are
stacked bottom to top along the residual stream (attention on the left, MLP on the right, LayerNorms beside the
stream), embeddings at the bottom, the final LayerNorm and the (tied) unembedding at the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.summary import ModelSummary, ParameterRow
from gpt2atlas.model.names import act_name, module_name
from gpt2atlas.viz.embeddings import figure_title
from gpt2atlas.viz.labels import escape

COLOURS = {
    "token_embedding": "#1f77b4",
    "position_embedding": "#17becf",
    "attention": "#ff7f0e",
    "mlp": "#2ca02c",
    "layernorm": "#9467bd",
    "final_layernorm": "#8c564b",
    "unembedding": "#1f77b4",
}
LABELS = {
    "token_embedding": "token embedding",
    "position_embedding": "position embedding",
    "attention": "attention",
    "mlp": "MLP",
    "layernorm": "LayerNorm",
    "final_layernorm": "final LayerNorm",
    "unembedding": "unembedding (tied to W_E)",
}
MAX_BLOCK_SIDE = 0.8  # the largest per-layer component's cube side, in layer spacings
MAX_HEIGHT_RATIO = 2.5  # taller models are squeezed in height so the tower stays readable


def summary_figure(summary: ModelSummary) -> go.Figure:
    """Parameters per component, and per layer split into attention, MLP and LayerNorm."""
    counts = {k: v for k, v in summary.parameter_counts.items() if k != "total"}
    total = summary.parameter_counts["total"]
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.4, 0.6], subplot_titles=("parameters per component", "parameters per layer")
    )
    fig.add_trace(
        go.Bar(
            x=[LABELS[k] for k in counts],
            y=list(counts.values()),
            marker_color=[COLOURS[k] for k in counts],
            showlegend=False,
            text=[f"{v:,}<br>{100 * v / total:.3g}%" for v in counts.values()],
            textposition="outside",
            hovertemplate="%{x}: %{y:,} parameters<extra></extra>",
        ),
        row=1,
        col=1,
    )
    n_layer = summary.config.n_layer
    for component in ("attention", "mlp", "layernorm"):
        per_layer = np.zeros(n_layer, dtype=np.int64)
        for p in summary.parameters:
            if p.component == component and p.layer is not None:
                per_layer[p.layer] += p.count
        fig.add_trace(
            go.Bar(
                x=np.arange(n_layer),
                y=per_layer,
                name=LABELS[component],
                marker_color=COLOURS[component],
                hovertemplate=f"layer %{{x}}: %{{y:,}} {LABELS[component]}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(title_text="parameters", type="log", row=1, col=1)
    fig.update_yaxes(title_text="parameters", row=1, col=2)
    fig.update_xaxes(title_text="layer", row=1, col=2)
    fig.update_layout(
        barmode="stack",
        height=520,
        width=1300,
        title=figure_title(f"{total:,} parameters; unembedding {escape(summary.unembedding)}", summary.source),
    )
    return fig


@dataclass
class Box:
    kind: str
    centre: tuple[float, float, float]
    side: float
    hover: str


def _group_key(name: str) -> str:
    """`blocks.3.attn.W_O` -> `blocks.3.attn`; `embed.W_E` -> `embed`."""
    parts = name.split(".")
    return ".".join(parts[:3]) if parts[0] == "blocks" else parts[0]


def _groups(summary: ModelSummary) -> dict[str, list[ParameterRow]]:
    groups: dict[str, list[ParameterRow]] = {}
    for p in summary.parameters:
        groups.setdefault(_group_key(p.name), []).append(p)
    return groups


def _hover(title: str, params: list[ParameterRow]) -> str:
    lines = [f"{escape(p.name)}: {' × '.join(map(str, p.shape))} = {p.count:,}" for p in params]
    total = sum(p.count for p in params)
    return f"<b>{escape(title)}</b><br>{total:,} parameters<br>" + "<br>".join(lines)


def architecture_boxes(summary: ModelSummary) -> list[Box]:
    """One cube per component (volume proportional to parameters), placed along the residual stream."""
    groups = _groups(summary)
    count = {key: sum(p.count for p in params) for key, params in groups.items()}
    largest = max((c for key, c in count.items() if key.startswith("blocks.")), default=1)
    scale = MAX_BLOCK_SIDE / largest ** (1 / 3)

    def side(key: str) -> float:
        return scale * count[key] ** (1 / 3)

    n_layer = summary.config.n_layer
    w_e, w_pos = side("embed"), side("pos_embed")
    boxes = [
        Box(
            "token_embedding",
            (-0.15 - w_e / 2, 0.0, -0.4 - w_e / 2),
            w_e,
            _hover("token embedding W_E", groups["embed"]),
        ),
        Box(
            "position_embedding",
            (0.15 + w_pos / 2, 0.0, -0.4 - w_pos / 2),
            w_pos,
            _hover("position embedding W_pos", groups["pos_embed"]),
        ),
    ]
    places = {
        "ln1": ("layernorm", -0.35, 0.3),
        "attn": ("attention", -1.0, 0.3),
        "ln2": ("layernorm", 0.35, 0.7),
        "mlp": ("mlp", 1.0, 0.7),
    }
    for layer in range(n_layer):
        for part, (kind, x, dz) in places.items():
            key = module_name(layer, part)
            if key in groups:
                boxes.append(Box(kind, (x, 0.0, layer + dz), side(key), _hover(f"layer {layer} {part}", groups[key])))
    top = n_layer + 0.3
    boxes.append(
        Box("final_layernorm", (0.35, 0.0, top), side("ln_final"), _hover("final LayerNorm", groups["ln_final"]))
    )
    boxes.append(
        Box(
            "unembedding",
            (0.0, 0.0, top + 0.4 + side("embed") / 2),
            side("embed"),
            "<b>unembedding</b><br>W_U = W_E^T: tied to the token embedding, no parameters of its own",
        )
    )
    return boxes


_CORNERS = np.array([[x, y, z] for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)], dtype=float) / 2
_TRIANGLES = np.array(
    [
        [0, 1, 3],
        [0, 3, 2],
        [4, 5, 7],
        [4, 7, 6],
        [0, 1, 5],
        [0, 5, 4],
        [2, 3, 7],
        [2, 7, 6],
        [0, 2, 6],
        [0, 6, 4],
        [1, 3, 7],
        [1, 7, 5],
    ]
)


def _mesh(kind: str, boxes: list[Box]) -> go.Mesh3d:
    """All cubes of one kind as one mesh (8 vertices, 12 triangles each); hover text on every vertex."""
    vertices = np.concatenate([np.array(b.centre) + _CORNERS * b.side for b in boxes])
    faces = np.concatenate([_TRIANGLES + 8 * i for i in range(len(boxes))])
    return go.Mesh3d(
        x=vertices[:, 0],
        y=vertices[:, 1],
        z=vertices[:, 2],
        i=faces[:, 0],
        j=faces[:, 1],
        k=faces[:, 2],
        color=COLOURS[kind],
        opacity=0.25 if kind == "unembedding" else 0.9,
        flatshading=True,
        name=LABELS[kind],
        showlegend=True,
        hovertext=[b.hover for b in boxes for _ in range(8)],
        hoverinfo="text",
    )


def architecture_figure(summary: ModelSummary) -> go.Figure:
    """Layers stacked along the residual stream; cube volume proportional to parameter count."""
    boxes = architecture_boxes(summary)
    kinds = dict.fromkeys(b.kind for b in boxes)
    fig = go.Figure([_mesh(kind, [b for b in boxes if b.kind == kind]) for kind in kinds])
    n_layer = summary.config.n_layer
    top = max(b.centre[2] + b.side / 2 for b in boxes)
    bottom = min(b.centre[2] - b.side / 2 for b in boxes)
    fig.add_trace(
        go.Scatter3d(
            x=[0, 0],
            y=[0, 0],
            z=[bottom, top],
            mode="lines",
            name="residual stream",
            line={"color": "grey", "width": 6},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter3d(
            x=np.zeros(n_layer),
            y=np.zeros(n_layer),
            z=np.arange(n_layer),
            mode="markers",
            marker={"size": 3, "color": "black"},
            name="layer inputs",
            hovertext=[act_name("resid_pre", layer) for layer in range(n_layer)],
            hoverinfo="text",
        )
    )
    c = summary.config
    low, high = (
        np.min([np.array(b.centre) - b.side / 2 for b in boxes], axis=0),
        np.max([np.array(b.centre) + b.side / 2 for b in boxes], axis=0),
    )
    extent = high - low
    aspect = {"x": 1.0, "y": extent[1] / extent[0], "z": min(extent[2] / extent[0], MAX_HEIGHT_RATIO)}
    fig.update_layout(
        title=figure_title(
            f"Architecture: {n_layer} layers, d_model {c.d_model}, {c.n_head} heads, "
            f"d_mlp {c.d_mlp} (cube volume ∝ parameters)",
            summary.source,
        ),
        scene={
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "zaxis": {"title": "layer"},
            "aspectmode": "manual",
            "aspectratio": aspect,
            "camera": {"eye": {"x": 1.5, "y": -3.2, "z": 0.6}},
        },
        height=900,
        width=900,
        legend={"x": 0.75, "y": 0.95},
    )
    return fig
