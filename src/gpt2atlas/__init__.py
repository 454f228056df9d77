"""gpt2atlas: open up GPT-2 and see how it works inside."""

from gpt2atlas.errors import AtlasError
from gpt2atlas.model import GPT2, GPT2Config, load_model
from gpt2atlas.tokenizer import Tokenizer
from gpt2atlas.training import TrainConfig, train

__version__ = "0.1.0"
__all__ = ["AtlasError", "GPT2", "GPT2Config", "Tokenizer", "TrainConfig", "load_model", "train", "__version__"]
