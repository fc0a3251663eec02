"""Pure spectral-norm functions of a layer's weight (docs/methods.md §3), shared by the parametrizations in
:mod:`lipgan.constraints.spectral`, the probes and the tests.

Weight layouts: ``Linear`` ``[c_out, c_in]``, ``ConvNd`` ``[c_out, c_in/g, *k]`` and ``ConvTransposeNd``
``[c_in, c_out/g, *k]``. The "reshaped" matrix of Miyato et al. (2018) has the layer's output channels as
rows, so for a transposed convolution it is built from dimension 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lipgan.errors import ConfigError

EPS = 1e-12
CONV_FUNCTIONS = {1: (F.conv1d, F.conv_transpose1d), 2: (F.conv2d, F.conv_transpose2d)}


def weight_matrix(weight: torch.Tensor, row_dim: int = 0) -> torch.Tensor:
    """The weight as a matrix with dimension ``row_dim`` as rows and all others flattened into columns."""
    return weight.movedim(row_dim, 0).flatten(1)


def output_channel_dim(transposed: bool) -> int:
    """The weight dimension that indexes the layer's output channels (1 for transposed convolutions)."""
    return 1 if transposed else 0


def matrix_sigma(matrix: torch.Tensor) -> torch.Tensor:
    """Largest singular value of a matrix, computed exactly by SVD."""
    return torch.linalg.matrix_norm(matrix, ord=2)


def reshaped_sigma(weight: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """SN_w (Miyato 2018; BSSN §2): ``σ(W.reshape(c_out, c_in·kh·kw))``, exact."""
    return matrix_sigma(weight_matrix(weight, output_channel_dim(transposed)))


def bsn_sigma(weight: torch.Tensor) -> torch.Tensor:
    """BSN (BSSN §5.1, Thm 3): the mean of the spectral norms of the ``c_out × (c_in·k)`` and
    ``c_in × (c_out·k)`` reshapes of a convolution kernel, exact; a linear weight uses ``σ(W)``.

    The average is symmetric in the two orientations, so it does not depend on the weight layout."""
    if weight.dim() == 2:
        return matrix_sigma(weight)
    return (matrix_sigma(weight_matrix(weight, 0)) + matrix_sigma(weight_matrix(weight, 1))) / 2


def _as_tuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,) * n


def _numeric_padding(padding, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """Integer padding for ``"valid"``, ``"same"`` (when symmetric) or explicit values."""
    if padding == "valid":
        return (0,) * len(kernel)
    if padding == "same":
        spans = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if any(span % 2 for span in spans):
            raise ConfigError("padding='same' with an even kernel span is asymmetric; use explicit padding")
        return tuple(span // 2 for span in spans)
    return _as_tuple(padding, len(kernel))


@dataclass(frozen=True)
class ConvGeometry:
    """The kernel size and the settings that, with the kernel values, fix a convolution operator."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    transposed: bool = False
    output_padding: tuple[int, ...] = (0,)

    @classmethod
    def build(cls, kernel, stride=1, padding=0, dilation=1, groups=1, transposed=False, output_padding=0):
        """Normalize scalar/tuple/string arguments for a kernel of size ``kernel`` ``(kh, kw)``."""
        kernel = tuple(kernel)
        n = len(kernel)
        if n not in CONV_FUNCTIONS:
            raise ConfigError(f"convolution operators are supported in 1 or 2 spatial dims, not {n}")
        dil = _as_tuple(dilation, n)
        return cls(
            kernel=kernel,
            stride=_as_tuple(stride, n),
            padding=_numeric_padding(padding, kernel, dil),
            dilation=dil,
            groups=groups,
            transposed=transposed,
            output_padding=_as_tuple(output_padding, n),
        )

    @classmethod
    def from_module(cls, module: nn.Module) -> ConvGeometry:
        """The geometry of a ``ConvNd`` / ``ConvTransposeNd`` layer with zero padding (reads no weight, so
        it triggers no parametrization)."""
        if module.padding_mode != "zeros":
            raise ConfigError(f"sn-strict needs padding_mode='zeros', got {module.padding_mode!r}")
        return cls.build(
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            transposed=module.transposed,
            output_padding=module.output_padding,
        )

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        conv, _ = CONV_FUNCTIONS[len(self.kernel)]
        return conv(x, weight, None, self.stride, self.padding, self.dilation, self.groups)

    def _conv_transpose(self, y: torch.Tensor, weight: torch.Tensor, output_padding) -> torch.Tensor:
        _, conv_transpose = CONV_FUNCTIONS[len(self.kernel)]
        return conv_transpose(
            y, weight, None, self.stride, self.padding, output_padding, self.groups, self.dilation
        )

    def _adjoint_output_padding(self, in_size: tuple[int, ...]) -> tuple[int, ...]:
        """Output padding that makes ``conv_transpose`` return exactly the conv's input size."""
        return tuple(
            (n + 2 * p - d * (k - 1) - 1) % s
            for n, p, d, k, s in zip(
                in_size, self.padding, self.dilation, self.kernel, self.stride, strict=True
            )
        )

    def apply(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The operator ``A_W x`` on a batch ``[B, C_in, *spatial]``."""
        if self.transposed:
            return self._conv_transpose(x, weight, self.output_padding)
        return self._conv(x, weight)

    def adjoint(self, y: torch.Tensor, weight: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
        """The adjoint ``A_Wᵀ y``, shaped like the operator's input ``in_shape``."""
        if self.transposed:
            x = self._conv(y, weight)
        else:
            x = self._conv_transpose(y, weight, self._adjoint_output_padding(tuple(in_shape[2:])))
        if x.shape != in_shape:
            raise ConfigError(f"cannot form the adjoint of this convolution: {tuple(x.shape)} != {in_shape}")
        return x


def normalize(x: torch.Tensor) -> torch.Tensor:
    """``x / ||x||`` over all entries (a single vector or one input-shaped tensor)."""
    return x / x.norm().clamp_min(EPS)


@torch.no_grad()
def operator_power_step(geometry: ConvGeometry, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One power-iteration step on ``A_Wᵀ A_W`` (Farnia 2018; Gouk 2018): ``x ← Aᵀ A x / ||Aᵀ A x||``."""
    return normalize(geometry.adjoint(geometry.apply(x, weight), weight, x.shape))


def operator_sigma_at(geometry: ConvGeometry, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``σ ≈ yᵀ A_W x`` with ``y = A x / ||A x||`` fixed, so the gradient flows only through ``W``."""
    out = geometry.apply(x, weight)
    return (normalize(out.detach()) * out).sum()


def conv_operator_sigma(
    weight: torch.Tensor,
    input_shape: tuple[int, ...],
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    transposed: bool = False,
    output_padding=0,
    n_iter: int = 500,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SN_Conv (BSSN §2, §4; Farnia 2018; Gouk 2018): the spectral norm of the convolution operator on
    inputs of shape ``input_shape`` ``(C, *spatial)``, by ``n_iter`` power-iteration steps from a random
    start. A linear (2-D) weight has operator norm ``σ(W)``. Returned detached."""
    if weight.dim() == 2:
        return matrix_sigma(weight.detach())
    geometry = ConvGeometry.build(
        weight.shape[2:], stride, padding, dilation, groups, transposed, output_padding
    )
    w = weight.detach()
    x = normalize(torch.randn((1, *input_shape), generator=generator, dtype=w.dtype).to(w.device))
    for _ in range(n_iter):
        x = operator_power_step(geometry, w, x)
    return operator_sigma_at(geometry, w, x).detach()


@torch.no_grad()
def matrix_power_step(matrix: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One step of the power iteration of Miyato et al. (2018) on the left vector:
    ``v = Mᵀu/||Mᵀu||``, ``u ← M v/||M v||``."""
    return normalize(matrix @ normalize(matrix.T @ u))


def matrix_sigma_at(matrix: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``σ ≈ uᵀ M v`` with ``v = Mᵀu/||Mᵀu||`` fixed, so the gradient flows only through ``M``."""
    with torch.no_grad():
        v = normalize(matrix.T @ u)
    return u @ (matrix @ v)
