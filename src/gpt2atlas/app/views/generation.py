"""The generated text, each new token shaded by the probability the model gave it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gpt2atlas.app.widgets import token_strip

ALTERNATIVES = 5


def generate(model, settings) -> dict:
    """Run the sampler with the sidebar's settings; the result is kept in the session."""
    result = model.generate(
        settings.prompt,
        settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k or None,
        seed=settings.seed,
        alternatives=ALTERNATIVES,
    )
    decode = model.tokenizer.decode
    tokens = [decode([t]) for t in result.new_tokens[0]]
    return {
        "prompt": settings.prompt,
        "tokens": tokens,
        "probs": [float(p) for p in result.token_probs[0]],
        "alternatives": [
            ", ".join(f"{decode([t])!r} {p:.3g}" for t, p in zip(ids, probs))
            for ids, probs in zip(result.top_tokens[0], result.top_probs[0])
        ],
        "stopped_at_context": result.stopped_at_context,
        "model_id": settings.model_id,
    }


def render(model, settings) -> None:
    generation = st.session_state.get("generation")
    if not generation:
        st.info("Press **Generate** in the sidebar to continue the prompt.")
        return
    st.html(token_strip(generation["prompt"], generation["tokens"], generation["probs"]))
    if generation["stopped_at_context"]:
        st.warning("Generation stopped at the end of the model's context window.")
    probs = generation["probs"]
    if probs:
        st.caption(
            f"{len(probs)} new tokens · mean probability {sum(probs) / len(probs):.3g} · "
            f"darker = more probable (hover a token for its probability)"
        )
        table = pd.DataFrame(
            {
                "token": [repr(t) for t in generation["tokens"]],
                "probability": probs,
                f"the {ALTERNATIVES} likeliest tokens at that step": generation["alternatives"],
            }
        )
        st.dataframe(table, width="stretch", height=260)
