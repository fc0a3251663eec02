"""What `lipgan bench` needs to know about the device: how to read the peak memory of one iteration there,
and when the clock may be read (docs/methods.md §6.1 describes the iteration). The precisions it runs are
training's own, `lipgan.training.precision.PRECISIONS`.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from lipgan.registry import Registry


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":  # CUDA runs asynchronously: a clock read needs the queued kernels done
        torch.cuda.synchronize(device)


# --- peak memory -----------------------------------------------------------------------------------------


class CudaPeak:
    """Bytes allocated by torch at the peak of the iteration above those allocated when it began
    (`torch.cuda.max_memory_allocated`): activations, autograd graphs, gradients, optimizer scratch."""

    measures = (
        "CUDA: torch.cuda.max_memory_allocated during the iteration minus the bytes allocated before it"
    )

    def __init__(self, device: torch.device):
        self.device = device
        self.base = 0

    def start(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.base = torch.cuda.memory_allocated(self.device)

    def stop(self) -> int:
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device) - self.base


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field_name}")


class RssPeak:
    """Peak resident memory of the process during the iteration above its resident memory when it began.

    On Linux the peak (VmHWM) is reset before each iteration through `/proc/self/clear_refs`, so every
    iteration is measured alone. Pages the C allocator kept from earlier frees are reused without growing
    the resident set, so this is a lower bound of what the iteration allocates. Where the reset is not
    possible it falls back to the growth of `ru_maxrss`, the process's all-time high-water mark, which only
    counts what an iteration adds above every earlier one (0 for a method lighter than one timed before it).
    """

    def __init__(self, device: torch.device):
        self.base = 0
        try:
            self._reset()
            _status_kib("VmHWM")
            self.resettable = True
        except OSError:
            self.resettable = False
        self.measures = (
            "CPU: peak resident memory during the iteration (VmHWM, reset per iteration) minus the resident "
            "memory before it; a lower bound, since freed pages the allocator kept are reused"
            if self.resettable
            else "CPU: growth of ru_maxrss (the process's high-water mark) during the iteration"
        )

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak resident set size only (Linux >= 4.0, proc(5))

    @staticmethod
    def _maxrss_bytes() -> int:
        scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def start(self) -> None:
        if self.resettable:
            self._reset()
            self.base = _status_kib("VmRSS") * 1024
        else:
            self.base = self._maxrss_bytes()

    def stop(self) -> int:
        peak = _status_kib("VmHWM") * 1024 if self.resettable else self._maxrss_bytes()
        return max(0, peak - self.base)


MEMORY_PROBES: Registry[Callable[[torch.device], CudaPeak | RssPeak]] = Registry("memory probe")
MEMORY_PROBES.register("cuda")(CudaPeak)
MEMORY_PROBES.register("cpu")(RssPeak)
