"""Load real GPT-2 weights: a hub id, a local Hugging Face folder, or a single .safetensors file.

Weights are read tensor by tensor (safetensors first; a legacy `pytorch_model.bin` only with
`weights_only=True`) into a model built on the meta device, so no second full copy is ever held.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

import gpt2atlas.atomic as atomic
from gpt2atlas.errors import AtlasError, CheckpointError, InputError, ModelNotFoundError
from gpt2atlas.model.config import HUB_REPOS, GPT2Config
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.shipped import SHIPPED_MODELS, shipped_folder

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# Hugging Face / OpenAI tensor names -> ours. `{i}` is the block index.
_HF_TO_OURS = {
    "wte.weight": "embed.W_E",
    "wpe.weight": "pos_embed.W_pos",
    "ln_f.weight": "ln_final.w",
    "ln_f.bias": "ln_final.b",
    "h.{i}.ln_1.weight": "blocks.{i}.ln1.w",
    "h.{i}.ln_1.bias": "blocks.{i}.ln1.b",
    "h.{i}.attn.c_attn.weight": "blocks.{i}.attn.W_QKV",
    "h.{i}.attn.c_attn.bias": "blocks.{i}.attn.b_QKV",
    "h.{i}.attn.c_proj.weight": "blocks.{i}.attn.W_O",
    "h.{i}.attn.c_proj.bias": "blocks.{i}.attn.b_O",
    "h.{i}.ln_2.weight": "blocks.{i}.ln2.w",
    "h.{i}.ln_2.bias": "blocks.{i}.ln2.b",
    "h.{i}.mlp.c_fc.weight": "blocks.{i}.mlp.W_in",
    "h.{i}.mlp.c_fc.bias": "blocks.{i}.mlp.b_in",
    "h.{i}.mlp.c_proj.weight": "blocks.{i}.mlp.W_out",
    "h.{i}.mlp.c_proj.bias": "blocks.{i}.mlp.b_out",
}
# Buffers some checkpoints carry (the causal mask) and the tied output matrix: not parameters of ours.
_IGNORED = re.compile(r"^(lm_head\.weight|h\.\d+\.attn\.(bias|masked_bias))$")
_BLOCK = re.compile(r"^h\.(\d+)\.(.+)$")


def our_name(hf_name: str) -> str | None:
    """Our parameter name for a checkpoint tensor name (None if it is to be ignored)."""
    name = hf_name.removeprefix("transformer.")
    if _IGNORED.match(name):
        return None
    if name in _HF_TO_OURS:
        return _HF_TO_OURS[name]
    block = _BLOCK.match(name)
    if block and f"h.{{i}}.{block.group(2)}" in _HF_TO_OURS:
        return _HF_TO_OURS[f"h.{{i}}.{block.group(2)}"].format(i=block.group(1))
    return name  # already ours (a state dict saved from gpt2atlas), or foreign: checked later


@dataclass
class Checkpoint:
    """Where the weights are, and the config that goes with them (if one was found)."""

    weights: Path
    config: GPT2Config | None
    description: str


class TensorReader:
    """Reads named tensors one at a time from a .safetensors or a weights-only torch file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                self._handle = safe_open(str(path), framework="pt")
                self._names = list(self._handle.keys())
            else:
                try:
                    self._dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
                    self._dict = torch.load(path, map_location="cpu", weights_only=True)
                if not isinstance(self._dict, dict):
                    raise CheckpointError(f"{path} does not hold a state dict")
                self._names = list(self._dict)
        except AtlasError:
            raise
        except Exception as err:  # safetensors/pickle errors: report what and where, in one line
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"cannot read weights file {path} (truncated or corrupt?): {first_line}") from None

    def names(self) -> list[str]:
        return self._names

    def shape(self, name: str) -> tuple[int, ...]:
        if hasattr(self, "_handle"):
            return tuple(self._handle.get_slice(name).get_shape())
        return tuple(self._dict[name].shape)

    def get(self, name: str) -> torch.Tensor:
        try:
            if hasattr(self, "_handle"):
                return self._handle.get_tensor(name)
            return self._dict.pop(name)
        except Exception as err:
            raise CheckpointError(
                f"cannot read tensor '{name}' from {self.path} (truncated or corrupt?): {err}"
            ) from None


def infer_config(reader: TensorReader, n_head: int | None = None) -> GPT2Config:
    """A config from tensor shapes alone. The head count is not in the shapes: GPT-2 uses d_head = 64."""
    shapes = {ours: reader.shape(n) for n in reader.names() if (ours := our_name(n)) is not None}
    if "embed.W_E" not in shapes or "pos_embed.W_pos" not in shapes:
        raise CheckpointError(f"{reader.path} has no token/position embedding (wte/wpe): not a GPT-2 checkpoint")
    d_vocab, d_model = shapes["embed.W_E"]
    n_layer = len({n.split(".")[1] for n in shapes if n.startswith("blocks.")})
    n_head_given = n_head is not None
    if n_head is None:
        if d_model % 64:
            raise CheckpointError(
                f"cannot infer the head count for d_model={d_model}; put a config.json beside the file"
            )
        n_head = d_model // 64
    d_mlp = shapes.get("blocks.0.mlp.W_in", (d_model, 4 * d_model))[1]
    try:
        return GPT2Config(
            n_layer=n_layer,
            n_head=n_head,
            d_model=d_model,
            n_ctx=shapes["pos_embed.W_pos"][0],
            d_vocab=d_vocab,
            d_mlp=d_mlp,
        )
    except InputError as err:
        if n_head_given and "n_head" in err.arguments:
            raise  # the caller's n_head does not fit
        raise CheckpointError(f"{reader.path} has tensor shapes that give {err}") from None


def _read_config(folder: Path) -> GPT2Config | None:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        return GPT2Config.from_hf_dict(json.loads(path.read_text()), source=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None


def _local_checkpoint(path: Path) -> Checkpoint:
    if path.is_dir():
        for filename in WEIGHT_FILES:
            if (path / filename).is_file():
                return Checkpoint(path / filename, _read_config(path), str(path))
        if (path / "model.safetensors.index.json").is_file():
            raise CheckpointError(f"{path} holds a sharded checkpoint; save it as a single model.safetensors")
        raise ModelNotFoundError(f"{path} has no model.safetensors or pytorch_model.bin")
    if path.suffix not in (".safetensors", ".bin", ".pt", ".pth"):
        raise ModelNotFoundError(f"{path} is not a weights file (.safetensors or .bin) nor a folder")
    return Checkpoint(path, _read_config(path.parent), str(path))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub (or HF_ENDPOINT) opens within `timeout` seconds."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_checkpoint(name: str, revision: str | None = None) -> Checkpoint:
    """Files from the Hugging Face cache, downloading only config.json and one weights file if needed.

    `revision`: a branch, tag or commit of the hub repository (training runs publish checkpoints as branches).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    canonical = HUB_REPOS.get(name, name)
    try:
        validate_repo_id(canonical)
    except HFValidationError:  # the hub's own rule; its message repeats the name, unescaped
        raise ModelNotFoundError(
            f"model {name!r} is neither a local path nor a hub id: a hub id is owner/name, at most 96 characters "
            "of letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'"
        ) from None
    candidates = list(dict.fromkeys([canonical, name]))

    at = f" at revision {revision}" if revision else ""

    def fetch(repo: str, local_only: bool) -> Checkpoint:
        config = Path(hf_hub_download(repo, "config.json", revision=revision, local_files_only=local_only))
        for filename in WEIGHT_FILES:
            try:
                weights = Path(hf_hub_download(repo, filename, revision=revision, local_files_only=local_only))
                return Checkpoint(weights, _read_config(config.parent), f"{repo}{at} (Hugging Face hub)")
            except LocalEntryNotFoundError:
                continue
            except EntryNotFoundError:
                continue
        raise LocalEntryNotFoundError(f"no weights file of {repo} available")

    for repo in candidates:  # an already-filled cache needs no network at all
        try:
            return fetch(repo, local_only=True)
        except (LocalEntryNotFoundError, EntryNotFoundError):
            continue
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub is unreachable"
        raise ModelNotFoundError(
            f"{why} and '{name}'{at} is not in the local cache; download it elsewhere and pass the folder: "
            f"--model /path/to/{name.split('/')[-1]} (config.json + model.safetensors)"
        )
    try:
        return fetch(canonical, local_only=False)
    except EntryNotFoundError:
        raise ModelNotFoundError(f"'{canonical}'{at} on the hub has no config.json or weights file") from None
    except HfHubHTTPError as err:
        raise ModelNotFoundError(f"cannot download '{canonical}' from the hub: {str(err).splitlines()[0]}") from None


def find_checkpoint(name_or_path: str | os.PathLike, revision: str | None = None) -> Checkpoint:
    """Resolve a model id (at `revision`, for hub ids) or a path to a weights file and its config."""
    text = str(name_or_path).strip()
    if not text:
        raise ModelNotFoundError("no model given: pass a model id such as gpt2, or a local folder")
    shipped = shipped_folder(text)
    if shipped is not None and not os.path.exists(text):
        if revision:
            raise ModelNotFoundError(f"revision={revision!r} applies to hub ids, not to the shipped model '{text}'")
        checkpoint = _local_checkpoint(shipped)
        return Checkpoint(checkpoint.weights, checkpoint.config, SHIPPED_MODELS[text])
    path = Path(text).expanduser()
    if os.path.exists(path):  # False, not OSError, for a name too long to be a path
        if revision:
            raise ModelNotFoundError(f"revision={revision!r} applies to hub ids, not to the local path {path}")
        return _local_checkpoint(path)
    looks_like_path = text.startswith((".", "/", "~")) or path.suffix in (".safetensors", ".bin") or text.count("/") > 1
    if looks_like_path:
        raise ModelNotFoundError(f"no such file or folder: {path}")
    if text in HUB_REPOS or text in HUB_REPOS.values() or text.count("/") == 1:
        return _hub_checkpoint(text, revision)
    known = ", ".join([*SHIPPED_MODELS, *HUB_REPOS])
    raise ModelNotFoundError(
        f"unknown model '{text}': use one of {known}, a hub id like openai-community/gpt2, "
        "or a local folder / .safetensors file"
    )


def _expected_shapes(cfg: GPT2Config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {name: tuple(p.shape) for name, p in GPT2(cfg).named_parameters()}


def _our_tensors(reader: TensorReader) -> Iterator[tuple[str, str]]:
    for hf_name in reader.names():
        ours = our_name(hf_name)
        if ours is not None:
            yield hf_name, ours


def check_device(device: str | torch.device) -> torch.device:
    """The device, or a one-line AtlasError if it is unknown or not available here."""
    try:
        device = torch.device(device)
    except RuntimeError:
        raise InputError(f"device={device!r} is not a device: use cpu, cuda or cuda:N", arguments=("device",)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device={device} needs a CUDA GPU and PyTorch sees none on this machine: use device=cpu",
            arguments=("device",),
        )
    return device


def load_model(
    name_or_path: str | os.PathLike = "gpt2",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    n_head: int | None = None,
    revision: str | None = None,
) -> GPT2:
    """Load GPT-2 weights into our model.

    `name_or_path`: gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2 (or their openai-community/...,
    distilbert/... hub ids, or any hub id of a GPT-2), a folder with config.json + model.safetensors (or
    pytorch_model.bin), or a single .safetensors file (config from a config.json beside it, else from shapes).
    `revision`: a branch, tag or commit of a hub repository (the Stanford CRFM runs publish their training
    checkpoints as branches such as "checkpoint-10000").
    """
    device = check_device(device)
    checkpoint = find_checkpoint(name_or_path, revision)
    reader = TensorReader(checkpoint.weights)
    cfg = checkpoint.config or infer_config(reader, n_head)
    mapping = dict(_our_tensors(reader))  # hf name -> our name
    blocks = len({ours.split(".")[1] for ours in mapping.values() if ours.startswith("blocks.")})
    if cfg.n_layer != blocks:  # checked before a model of cfg's shape is built, even on the meta device
        raise CheckpointError(
            f"the config of {checkpoint.description} has n_layer={cfg.n_layer}, but {checkpoint.weights} "
            f"holds {blocks} blocks"
        )
    expected = _expected_shapes(cfg)

    found = set(mapping.values())
    missing = [n for n in expected if n not in found]
    if missing:
        raise CheckpointError(
            f"{checkpoint.weights} lacks '{missing[0]}' ({len(missing)} tensors missing): not a GPT-2 checkpoint of this shape"
        )
    unknown = [h for h, o in mapping.items() if o not in expected]
    if unknown:
        raise CheckpointError(f"{checkpoint.weights} has tensor '{unknown[0]}', which GPT-2 does not have")
    for hf_name, ours in mapping.items():
        if reader.shape(hf_name) != expected[ours]:
            raise CheckpointError(
                f"tensor '{hf_name}' has shape {reader.shape(hf_name)}, but a GPT-2 with d_model={cfg.d_model}, "
                f"n_layer={cfg.n_layer}, n_ctx={cfg.n_ctx}, d_vocab={cfg.d_vocab} needs {expected[ours]}"
            )

    with torch.device("meta"):
        model = GPT2(cfg)
    state = {}
    for hf_name, ours in mapping.items():  # one tensor at a time: converted, moved, then the source is freed
        state[ours] = reader.get(hf_name).to(device=device, dtype=dtype)
    model.load_state_dict(state, assign=True, strict=True)
    del state, reader
    model.source = checkpoint.description
    model.weights_path = checkpoint.weights
    return model.eval().requires_grad_(False)


def read_position_embedding(name_or_path: str | os.PathLike, revision: str | None = None) -> torch.Tensor:
    """A checkpoint's position-embedding table (n_ctx, d_model), read alone: the rest of the weights stay on disk."""
    checkpoint = find_checkpoint(name_or_path, revision)
    reader = TensorReader(checkpoint.weights)
    for name in reader.names():
        if our_name(name) == "pos_embed.W_pos":
            return reader.get(name).float()
    raise CheckpointError(f"{checkpoint.weights} has no position embedding (wpe): not a GPT-2 checkpoint")


def save_checkpoint(model: GPT2, folder: str | os.PathLike) -> Path:
    """Write `model` as a Hugging Face GPT-2 folder (config.json + model.safetensors), loadable by both."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ours_to_hf = {}
    for hf_pattern, ours_pattern in _HF_TO_OURS.items():
        for i in range(model.cfg.n_layer) if "{i}" in hf_pattern else [None]:
            ours_to_hf[ours_pattern.format(i=i)] = "transformer." + hf_pattern.format(i=i)
    tensors = {ours_to_hf[name]: p.detach().cpu().contiguous() for name, p in model.named_parameters()}
    with atomic.replacing(folder / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    c = model.cfg
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_embd": c.d_model,
        "n_positions": c.n_ctx,
        "n_ctx": c.n_ctx,
        "vocab_size": c.d_vocab,
        "n_inner": c.d_mlp,
        "layer_norm_epsilon": c.layer_norm_eps,
        "activation_function": "gelu_new",
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        "tie_word_embeddings": True,
        "scale_attn_by_inverse_layer_idx": c.scale_attn_by_inverse_layer_idx,
        "reorder_and_upcast_attn": c.reorder_and_upcast_attn,
    }
    atomic.write_text(folder / "config.json", json.dumps(config, indent=2))
    return folder
