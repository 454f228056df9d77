"""The dashboard page: sidebar settings, a view picker, and every error shown in the page, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from gpt2atlas.analysis.base import DEFAULT_PROMPT
from gpt2atlas.app import state
from gpt2atlas.app.views import VIEWS, generation
from gpt2atlas.errors import AtlasError


@dataclass(frozen=True)
class Settings:
    """The sidebar's values."""

    model_id: str
    prompt: str
    max_new_tokens: int
    temperature: float
    top_k: int
    seed: int


def sidebar() -> tuple[Settings, bool]:
    """Sidebar widgets; returns the settings and whether Generate was clicked."""
    with st.sidebar:
        st.header("gpt2atlas")
        model_id = st.text_input(
            "Model",
            value=state.default_model(),
            key="model",
            help="gpt2, gpt2-medium, ..., a hub id, or a local folder / .safetensors file",
        )
        prompt = st.text_area("Prompt", value=DEFAULT_PROMPT, key="prompt", height=140)
        max_new_tokens = st.number_input("Max new tokens", 1, 512, 30, key="max_new_tokens")
        temperature = st.number_input("Temperature (0 = greedy)", 0.0, 5.0, 1.0, step=0.1, key="temperature")
        top_k = st.number_input("Top-k (0 = all tokens)", 0, 50257, 40, key="top_k")
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
        generate = st.button("Generate", type="primary", key="generate", width="stretch")
    settings = Settings(model_id.strip(), prompt, int(max_new_tokens), float(temperature), int(top_k), int(seed))
    return settings, generate


def check_prompt(model, prompt: str) -> None:
    """Raise AtlasError with a clear message for an empty or over-long prompt."""
    if not prompt.strip():
        raise AtlasError("The prompt is empty: type at least one character of text in the sidebar.")
    n = len(model.tokenizer.encode(prompt))
    if n > model.cfg.n_ctx:
        raise AtlasError(f"The prompt is {n:,} tokens long; this model reads at most {model.cfg.n_ctx:,}.")


def main() -> None:
    st.set_page_config(page_title="gpt2atlas", layout="wide")
    settings, generate = sidebar()
    try:
        if not settings.model_id:
            raise AtlasError("No model given: type a model id (e.g. gpt2) or a local folder in the sidebar.")
        model = state.get_model(settings.model_id)
        st.title("gpt2atlas")
        st.caption(
            f"{model.source} · {model.cfg.n_layer} layers · {model.cfg.n_head} heads · d_model {model.cfg.d_model}"
        )
        check_prompt(model, settings.prompt)
        if generate or "generation" not in st.session_state:  # the landing page shows the default prompt continued
            st.session_state["generation"] = generation.generate(model, settings)
        view = st.radio("View", list(VIEWS), horizontal=True, key="view")
        VIEWS[view].render(model, settings)
    except AtlasError as err:
        st.error(str(err))
    except Exception as err:  # never a traceback in the page
        st.error(f"Something went wrong ({type(err).__name__}: {err}). Try another prompt or model.")
