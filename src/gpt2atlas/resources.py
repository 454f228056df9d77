"""Memory a request needs, checked against what the machine has before anything is allocated.

A request whose size follows from its options (samples x length x vocabulary, points^2, texts x sites x d_model)
is estimated first; one that does not fit is refused with one line saying how much it needs and what to lower,
instead of being killed by the operating system half-way with no message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psutil
import torch

from gpt2atlas.errors import InputError

HEADROOM = 0.8  # plan to use at most this share of the memory available now


# a container's memory limit and use: cgroup v2, then v1 (psutil sees the whole machine's memory)
CGROUP_FILES = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)


def available_bytes(device: torch.device | str | None = None) -> int:
    """Memory free for new allocations: a CUDA device's free memory, else the machine's available memory, or
    what the container's limit leaves if that is less."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    available = int(psutil.virtual_memory().available)
    room = _cgroup_room()
    return min(available, room) if room is not None else available


def _cgroup_room() -> int | None:
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit, usage = limit_file.read_text().strip(), usage_file.read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**60:  # "max" or a huge v1 value: no limit
            return max(0, int(limit) - int(usage))
    return None


def budget_bytes(device: torch.device | str | None = None) -> int:
    """What a request may plan to use: HEADROOM of the available memory (the rest for everything else)."""
    return int(available_bytes(device) * HEADROOM)


def format_bytes(n: float) -> str:
    """1.5 GB, 320 MB, 12 kB: decimal units, two significant figures or more."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def require(
    nbytes: float,
    what: str,
    lower: str,
    *,
    arguments: Sequence[str] = (),
    device: torch.device | str | None = None,
) -> None:
    """InputError unless `nbytes` fit in the memory budget: `<what> needs about X of memory and Y is available:
    lower <lower>`. `arguments` are the ones `lower` names as `name=value`."""
    available = available_bytes(device)
    if nbytes > available * HEADROOM:
        raise InputError(
            f"{what} needs about {format_bytes(nbytes)} of memory and {format_bytes(available)} is available: "
            f"lower {lower}",
            arguments=tuple(arguments),
        )
