"""Mixed precision, `train.precision` (and `lipgan bench --precision`): fp32, bf16 autocast, fp16 autocast.

Autocast runs the networks' matrix products and convolutions in the low precision. What is sensitive to it
stays in float32 (docs/methods.md §2.10): a gradient normalization's per-sample norm and formula (a ratio of
two nearly equal numbers when |f| ≫ n, which bf16's 8-bit mantissa would round to 1), and the losses, whose
softplus of a domain-scaled output loses everything below 2⁻⁸ of it. bf16 runs on CPU and on CUDA devices
that support it; fp16 runs on CUDA, with a `torch.amp.GradScaler` per optimizer (`Precision.grad_scaler`).

`auto`, the default of `train.precision`, is bf16 on a CPU that computes bf16 natively (AVX512-BF16 or AMX,
oneDNN's own check) and fp32 everywhere else: on such a CPU a step of the default digits run is about 1.5x
faster than in fp32, its `digits_is` within the seed-to-seed noise of fp32's (docs/performance.md, "The
default run"), while a CPU without them emulates bf16 and would be slower. CUDA keeps fp32, as the papers'
runs trained, unless bf16 is asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lipgan.errors import ConfigError
from lipgan.registry import Registry

# --- precisions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: torch.dtype | None  # the autocast dtype; None: no autocast
    check: Callable[[torch.device], None]  # raises ConfigError where the device cannot run it
    scales_loss: bool = False  # fp16: gradients below 2⁻²⁴ flush to zero unless the loss is scaled up

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A GradScaler for one optimizer: active for fp16, a pass-through (scale 1, plain `step`)
        otherwise, so that the steps read the same at every precision."""
        return torch.amp.GradScaler(device.type, enabled=self.scales_loss)

    def context(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)


PRECISIONS: Registry[Precision] = Registry("precision")


def _any_device(device: torch.device) -> None:
    return None


def _bf16_device(device: torch.device) -> None:
    # CPU autocast runs bf16 everywhere (emulated where the CPU lacks AVX512-BF16/AMX, hence slow there)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision bf16: {torch.cuda.get_device_name(device)} does not support bfloat16")


def _fp16_device(device: torch.device) -> None:
    if device.type != "cuda":
        raise ConfigError(f"--precision fp16 needs CUDA; the device is {device} (use bf16 or fp32 there)")


for _precision in (
    Precision("fp32", None, _any_device),
    Precision("bf16", torch.bfloat16, _bf16_device),
    Precision("fp16", torch.float16, _fp16_device, scales_loss=True),
):
    PRECISIONS.register(_precision.name)(_precision)


AUTO = "auto"  # train.precision only: resolved per device by `resolve_precision`


def cpu_computes_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX), as oneDNN checks it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision `name` runs at on `device`: `auto` is bf16 on a CPU that computes it natively, else
    fp32; any other name is itself."""
    if name != AUTO:
        return name
    return "bf16" if device.type == "cpu" and cpu_computes_bf16() else "fp32"


def autocast_for(name: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the autocast context of precision `name` (`auto` resolved) on `device`, after checking
    the device can."""
    precision = PRECISIONS.get(resolve_precision(name, device))
    precision.check(device)
    return lambda: precision.context(device)
