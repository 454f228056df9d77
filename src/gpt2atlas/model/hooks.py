"""Named points in the forward pass where activations can be read or replaced.

Each `HookPoint` is an identity module placed where an interesting activation is computed; its name is its
path in the model (`blocks.3.attn.hook_pattern`), exactly as TransformerLens names the same activation.
A hook point with no hook costs one attribute check; the model also asks `is_active` to skip work that only a
hooked activation needs (the explicit attention pattern, for instance), and `may_edit` to skip work that only
matters when a hook could change the activation (caching attaches its hooks as read-only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Union

import torch
from torch import nn

from gpt2atlas.errors import InputError

# A hook receives the activation and its hook point; returning a tensor replaces the activation.
HookFn = Callable[[torch.Tensor, "HookPoint"], Union[torch.Tensor, None]]
NameFilter = Union[None, str, Sequence[str], Callable[[str], bool]]


class HookPoint(nn.Module):
    """Identity that calls the hooks attached to it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # set by the model once the module tree is built
        self._hooks: list[tuple[HookFn, bool]] = []  # (hook, attached as read-only), in order

    @property
    def is_active(self) -> bool:
        return bool(self._hooks)

    @property
    def may_edit(self) -> bool:
        """Whether an attached hook may change the activation (any hook not attached as read-only)."""
        return not all(read_only for _, read_only in self._hooks)

    def add(self, fn: HookFn, read_only: bool = False) -> None:
        self._hooks.append((fn, read_only))

    def remove(self, fn: HookFn) -> None:
        """Detach the first attachment of `fn`."""
        self._hooks.pop(next(i for i, (hook, _) in enumerate(self._hooks) if hook == fn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn, _ in self._hooks:
            out = fn(x, self)
            if out is not None:
                if out.shape != x.shape:
                    raise InputError(
                        f"hook on {self.name} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}"
                    )
                x = out
        return x

    def extra_repr(self) -> str:
        return self.name


class ActivationCache(dict):
    """Activations by hook name (a plain dict of detached tensors, with a helper or two)."""

    def stack(self, names: Iterable[str]) -> torch.Tensor:
        """Stack the named activations along a new first axis (e.g. every layer's resid_post)."""
        return torch.stack([self[name] for name in names])


class HookRegistry:
    """Finds hook points by name or predicate and attaches hooks for the span of a `with` block."""

    def __init__(self, hook_points: dict[str, HookPoint]) -> None:
        self.points = hook_points

    @property
    def names(self) -> list[str]:
        return list(self.points)

    def select(self, names: NameFilter) -> list[str]:
        """Resolve a name, a list of names or a predicate into hook names (unknown names are an error)."""
        if names is None:
            return self.names
        if callable(names):
            return [n for n in self.points if names(n)]
        if isinstance(names, str):
            names = [names]
        unknown = [n for n in names if n not in self.points]
        if unknown:
            example = next(iter(self.points))
            raise InputError(
                f"unknown hook name '{unknown[0]}' (names look like '{example}'; "
                f"see model.hook_names() for all {len(self.points)})"
            )
        return list(dict.fromkeys(names))

    @contextmanager
    def attached(self, hooks: Iterable[tuple[NameFilter, HookFn]], *, read_only: bool = False) -> Iterator[None]:
        """Attach hooks, and remove every one of them on exit, even if the forward pass raised.

        `read_only=True` promises that the hooks neither return a replacement nor edit in place (they only
        copy or reduce), which lets the model skip work that only an edit would need.
        """
        attached: list[tuple[HookPoint, HookFn]] = []
        try:
            for names, fn in hooks:
                for name in self.select(names):
                    self.points[name].add(fn, read_only)
                    attached.append((self.points[name], fn))
            yield
        finally:
            for point, fn in attached:
                point.remove(fn)
