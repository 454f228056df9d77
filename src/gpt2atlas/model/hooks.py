"""Named points in the forward pass where activations, and their gradients, can be read or replaced.

Each `HookPoint` is an identity module placed where an interesting activation is computed; its name is its
path in the model (`blocks.3.attn.hook_pattern`), exactly as TransformerLens names the same activation.

Hooks belong to the call that attaches them, not to the model: `HookRegistry.attached` puts them in a
`contextvars.ContextVar` for the span of a `with` block, and each hook point looks itself up there. Each thread
(and each asyncio task) has its own context, so two threads running hooked passes on one shared model each see
only their own hooks, and the modules are never mutated.

A hook point with no hook costs one context lookup; the model also asks `is_active` to skip work that only a
hooked activation needs (the explicit attention pattern, each head's result), and `may_edit` says whether an
attached hook could change the activation (caching attaches its hooks as read-only). A `torch.compile`d pass
runs unhooked: the compiler cannot read a ContextVar (it would break the graph at every hook point), and the
compiled training loop attaches no hooks.

A backward hook `fn(grad, hook)` receives the gradient of whatever is differentiated with respect to the
activation (its output, after any forward hook), and may return a replacement gradient. It is registered on the
activation tensor during the forward pass, so it stays with that pass's graph: call `backward` after the `with`
block or after `run_with_hooks` returns, on any thread. An activation that does not require grad (the weights of
a loaded model do not) is made a leaf that does, so that the backward pass reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Union

import torch
from torch import nn
from torch.compiler import is_dynamo_compiling

from gpt2atlas.errors import InputError

# A hook receives the activation (or its gradient) and its hook point; returning a tensor replaces it.
HookFn = Callable[[torch.Tensor, "HookPoint"], Union[torch.Tensor, None]]
NameFilter = Union[None, str, Sequence[str], Callable[[str], bool]]


@dataclass(frozen=True)
class Attached:
    """The hooks one hook point has in the current context, in the order they were attached."""

    forward: tuple[tuple[HookFn, bool], ...] = ()  # (hook, attached as read-only)
    backward: tuple[HookFn, ...] = ()

    def add(self, fn: HookFn, *, read_only: bool, backward: bool) -> Attached:
        if backward:
            return Attached(self.forward, (*self.backward, fn))
        return Attached((*self.forward, (fn, read_only)), self.backward)


# Hook point -> its hooks, for the calls running in this context; a fresh mapping per `attached`, never mutated.
_ACTIVE: ContextVar[Mapping[HookPoint, Attached]] = ContextVar("gpt2atlas_hooks", default=MappingProxyType({}))


def _checked(out: torch.Tensor, like: torch.Tensor, what: str) -> torch.Tensor:
    if out.shape != like.shape:
        raise InputError(f"{what} returned shape {tuple(out.shape)}, expected {tuple(like.shape)}")
    return out


def _call_backward(fn: HookFn, point: HookPoint, grad: torch.Tensor) -> torch.Tensor | None:
    out = fn(grad, point)
    return None if out is None else _checked(out, grad, f"backward hook on {point.name}")


class HookPoint(nn.Module):
    """Identity that calls the hooks the current call attached to it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # set by the model once the module tree is built

    @property
    def is_active(self) -> bool:
        """Whether the current call attached any hook (forward or backward) here."""
        return not is_dynamo_compiling() and self in _ACTIVE.get()

    @property
    def may_edit(self) -> bool:
        """Whether an attached hook may change the activation (a forward hook not attached as read-only)."""
        attached = _ACTIVE.get().get(self)
        return attached is not None and not all(read_only for _, read_only in attached.forward)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_dynamo_compiling():  # torch.compile cannot read a ContextVar: compiled passes run unhooked
            return x
        active = _ACTIVE.get()
        if not active:
            return x
        attached = active.get(self)
        if attached is None:
            return x
        for fn, _ in attached.forward:
            out = fn(x, self)
            if out is not None:
                x = _checked(out, x, f"hook on {self.name}")
        if attached.backward:
            if not torch.is_grad_enabled():
                raise InputError(
                    f"backward hook on {self.name} in a pass without autograd (inference mode or no_grad): "
                    "use run_with_hooks(..., bwd_hooks=...) or run_with_cache(..., grad=True)"
                )
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            for fn in attached.backward:
                x.register_hook(partial(_call_backward, fn, self))
        return x

    def extra_repr(self) -> str:
        return self.name


class ActivationCache(dict):
    """Activations by hook name (a plain dict of tensors, with a helper or two)."""

    def stack(self, names: Iterable[str]) -> torch.Tensor:
        """Stack the named activations along a new first axis (e.g. every layer's resid_post)."""
        return torch.stack([self[name] for name in names])


class HookRegistry:
    """Finds hook points by name or predicate and attaches hooks for the span of a `with` block."""

    def __init__(self, hook_points: dict[str, HookPoint], opt_in: Iterable[str] = ()) -> None:
        self.points = hook_points
        self.opt_in = frozenset(opt_in)  # computed only when hooked by name: left out of "every activation"

    @property
    def names(self) -> list[str]:
        return list(self.points)

    def select(self, names: NameFilter) -> list[str]:
        """Resolve a name, a list of names or a predicate into hook names (unknown names are an error).

        None means every activation except the opt-in ones (each head's result, as TransformerLens leaves
        `hook_result` out unless `use_attn_result` is set); a predicate sees every name.
        """
        if names is None:
            return [n for n in self.points if n not in self.opt_in]
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
    def attached(
        self,
        hooks: Iterable[tuple[NameFilter, HookFn]] = (),
        *,
        read_only: bool = False,
        bwd_hooks: Iterable[tuple[NameFilter, HookFn]] = (),
    ) -> Iterator[None]:
        """Attach hooks for the forward passes this thread (or task) runs inside the block; gone on exit.

        `read_only=True` promises that the forward hooks neither change the activation's value nor edit it in
        place (they only copy or reduce), which lets the model skip work that only an edit would need.
        Backward hooks registered by a pass inside the block fire whenever that pass's graph is differentiated.
        """
        added = dict(_ACTIVE.get())
        for backward, pairs in ((False, hooks), (True, bwd_hooks)):
            for names, fn in pairs:
                for name in self.select(names):
                    point = self.points[name]
                    added[point] = added.get(point, Attached()).add(fn, read_only=read_only, backward=backward)
        token = _ACTIVE.set(MappingProxyType(added))
        try:
            yield
        finally:
            _ACTIVE.reset(token)
