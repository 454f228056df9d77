"""Our GPT-2: architecture, hook points, weight loading and generation."""

from gpt2atlas.model.config import PRESETS, GPT2Config
from gpt2atlas.model.generation import GenerationResult, generate
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.hooks import ActivationCache, HookPoint
from gpt2atlas.model.loading import load_model, save_checkpoint

__all__ = [
    "GPT2",
    "GPT2Config",
    "PRESETS",
    "ActivationCache",
    "HookPoint",
    "GenerationResult",
    "generate",
    "load_model",
    "save_checkpoint",
]
