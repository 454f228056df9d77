"""Train our GPT-2 from scratch: data to tokens on disk, GPT-2's recipe, checkpoints, resume, DDP."""

from gpt2atlas.training.recipe import PRESETS, TrainConfig, config_for
from gpt2atlas.training.trainer import TrainingError, TrainingInterrupted, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "TrainingError", "TrainingInterrupted", "config_for", "train"]
