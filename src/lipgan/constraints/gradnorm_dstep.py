"""How mode ``"full"`` differentiates the norm: the D-step implementations of GN, GraN and PGN
(docs/methods.md §2.11), registered by name in ``DSTEPS``.

Each one maps ``(D, x, d_args, d_kwargs)`` to ``(f [B], ∇ₓf [B, ...])`` such that any loss of ``f`` and
``∇ₓf`` backpropagates into D's parameters (and into ``x`` when it requires grad) through the norm too.

- ``"double-backward"`` (the reference, as the official GN code): ``∇ₓf`` is taken with ``create_graph=True``
  and the loss's backward differentiates that graph. About 6 passes of D: forward, input-gradient backward,
  the backward of that backward (a forward-like pass of the cotangent and a weight gradient), and the
  primal backward (data and weight gradients).
- ``"tangent"`` (the default): exact for piecewise-linear D, 4 passes. With the activation masks of ``x``
  fixed, D is affine in its input, ``f_i = A x_i + c`` (``c`` collects the biases), so ``∇ₓf_i = Aᵀ``. For
  cotangents ``a_i`` (of ``f_i``) and ``G_i`` (of ``∇ₓf_i``) the parameter gradient of the D step is then
  ``∂/∂θ Σ_i (a_i f_i + ⟨G_i, ∇ₓf_i⟩) = ∂/∂θ Σ_i (A (a_i x_i + G_i) + a_i c)``: the gradient of the *masked*
  network run once on ``z_i = a_i x_i + G_i`` with its constants scaled by ``a_i``. Every layer's
  backward signal in that masked network is the one the input-gradient backward of ``f.sum()`` already
  computed (``δ_k``, same masks, same linear maps), so only weight gradients remain: forward (1), the
  input-gradient backward that also keeps ``δ_k`` (1), the masked forward of ``z`` (1) and one weight
  gradient per layer, ``∂/∂θ Σ_k ⟨δ_k, op_k(z_k; θ)⟩`` (1). The gradient w.r.t. ``x`` is ``a_i ∇ₓf_i`` (the
  Hessian term is zero a.e.). The forward of D is recorded op by op (a ``TorchFunctionMode``); only ops
  known to be linear in the input (convolutions, linear layers, sums, pools, reshapes, adds, products with
  constants) and ReLU / LeakyReLU are accepted. Anything else (batch norm, a smooth activation, max
  pooling, an op mixing samples) makes the recording fail, and the D falls back to ``"double-backward"``
  with one warning, so the result is always exact. An image batch enters D in ``torch.channels_last``.
- ``"tangent-contiguous"``: ``"tangent"`` in the input's own layout (a measured candidate).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from lipgan.constraints.defaults import DEFAULT_DSTEP
from lipgan.errors import ConfigError
from lipgan.registry import Registry

# (D, x_in, d_args, d_kwargs) -> (raw output of D, ∇ₓ of its sum); x_in requires grad
DStepFn = Callable[[Callable[..., Tensor], Tensor, tuple, dict], tuple[Tensor, Tensor]]

DSTEPS: Registry[DStepFn] = Registry("D-step implementation")
__all__ = ["DEFAULT_DSTEP", "DSTEPS", "dstep_double_backward", "dstep_tangent", "dstep_tangent_contiguous"]


def _output_sum(raw: Tensor, batch_size: int) -> Tensor:
    if raw.shape not in (torch.Size([batch_size]), torch.Size([batch_size, 1])):
        raise ConfigError(
            f"the discriminator must return shape [B] or [B, 1] with B={batch_size}; got {tuple(raw.shape)}"
        )
    return raw.sum()


@DSTEPS.register("double-backward")
def dstep_double_backward(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict):
    """The reference: ``∇ₓf`` with its own graph; the loss's backward is a backward of a backward."""
    raw = D(x, *d_args, **d_kwargs)
    (grad,) = torch.autograd.grad(_output_sum(raw, x.shape[0]), x, create_graph=True)
    return raw, grad


# --- the tangent D step: recording D's forward ------------------------------------------------------------


class Unsupported(Exception):
    """An op of D that the tangent D step cannot replay exactly."""


@dataclass(frozen=True)
class _Ref:
    slot: int  # index of an input-dependent tensor in the replay's environment


_T = torch.Tensor
_ACTIVATIONS = {torch.relu, F.relu, _T.relu, torch.relu_, _T.relu_, F.relu_, F.leaky_relu, F.leaky_relu_}
# linear in their input-dependent arguments; any other tensor argument must be an integer index
_HOMOGENEOUS = {
    _T.view, _T.reshape, torch.reshape, _T.flatten, torch.flatten, _T.squeeze, torch.squeeze, _T.unsqueeze,
    torch.unsqueeze, _T.contiguous, _T.clone, torch.clone, _T.sum, torch.sum, _T.mean, torch.mean,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, torch.cat,
    torch.stack, _T.neg, torch.neg, _T.__neg__, _T.split, torch.split, _T.chunk, torch.chunk,
    _T.__getitem__, _T.view_as, _T.reshape_as, _T.expand, _T.expand_as, _T.__pos__,
    F.pixel_shuffle, F.pixel_unshuffle, torch.pixel_shuffle, torch.pixel_unshuffle,
}  # fmt: skip
# zero padding is linear too (the digits D pads before its space-to-depth convolution); any other fill
# value would add a constant, and reflection or replication pads are linear but unneeded so far
_PADS = {F.pad, torch._C._nn.pad}
# linear in their one input-dependent operand; the other operands multiply it (weights, constants)
_PRODUCTS = {_T.__mul__, _T.__rmul__, _T.mul, torch.mul, _T.__imul__, _T.mul_, _T.__truediv__, _T.div,
             torch.div, _T.__itruediv__, _T.div_, _T.__matmul__, torch.matmul, _T.matmul}  # fmt: skip
# input-dependent operands plus constants; the replay scales the constants by a_i
_SUMS = {_T.__add__, _T.__radd__, _T.add, torch.add, _T.__iadd__, _T.add_, _T.__sub__, _T.__rsub__, _T.sub,
         torch.sub, _T.__isub__, _T.sub_}  # fmt: skip
_AFFINE = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3, F.linear: 0, torch.conv1d: 1, torch.conv2d: 2}
_DIVISORS = {_T.__truediv__, _T.div, torch.div, _T.__itruediv__, _T.div_}


@dataclass
class _Op:
    kind: str  # "activation" | "homogeneous" | "product" | "sum" | "affine"
    func: Callable
    args: Any  # args and kwargs, input-dependent tensors replaced by _Ref
    kwargs: Any
    outs: Any  # the output structure, tensors replaced by _Ref
    mask: Tensor | None = None  # activation: its output at x (positive where its input was)
    slope: float = 0.0  # activation: the slope where it was not
    delta_index: int | None = None  # which recorded backward signal δ_k pairs with the output
    inplace: bool = False  # the op wrote into its input-dependent argument


@dataclass
class _Trace:
    """D's forward at x as a list of input-dependent ops, plus the tensors that let it be replayed."""

    batch: int
    ops: list[_Op] = field(default_factory=list)
    delta_outs: list[Tensor] = field(default_factory=list)  # outputs whose backward signal is needed
    delta_versions: list[int] = field(default_factory=list)
    deltas: list[Tensor | None] = field(default_factory=list)
    params: dict[int, Tensor] = field(default_factory=dict)  # constants that require grad, by id
    kept: list[tuple[Tensor, int]] = field(default_factory=list)  # activation outputs and their versions
    raw: Tensor | None = None
    x: Tensor | None = None
    grad: Tensor | None = None
    autocast: tuple[str, bool, torch.dtype] | None = None


def _is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


class _Recorder(TorchFunctionMode):
    """Records every op of D's forward that depends on ``x``; raises Unsupported on one it cannot replay."""

    def __init__(self, x: Tensor, trace: _Trace):
        super().__init__()
        self.trace = trace
        self.slots: dict[int, int] = {id(x): 0}
        self.alive: list[Tensor] = [x]  # keeps every recorded tensor alive, so its id() stays unique

    def _ref(self, obj: Any) -> Any:
        if _is_tensor(obj) and id(obj) in self.slots:
            return _Ref(self.slots[id(obj)])
        return obj

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves, _ = tree_flatten((args, kwargs))
        dependent = [t for t in leaves if _is_tensor(t) and id(t) in self.slots]
        if not dependent:
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        outs = [t for t in tree_flatten(out)[0] if _is_tensor(t)]
        if not outs:  # .shape, .dim(), .size(): nothing to replay
            return out
        op = self._classify(func, args, kwargs, dependent, leaves, out)
        for t in outs:
            if t.dim() == 0 or t.shape[0] != self.trace.batch:
                raise Unsupported(f"{_name(func)} does not keep the batch in dimension 0")
        op.inplace = any(t is d for t in outs for d in dependent)
        op.args, op.kwargs = tree_map(self._ref, args), tree_map(self._ref, kwargs)
        weights = [t for t in leaves if _is_tensor(t) and id(t) not in self.slots and t.requires_grad]
        if weights and op.kind in ("product", "sum", "affine"):
            if op.inplace:
                raise Unsupported(f"{_name(func)} in place with a weight")
            op.delta_index = len(self.trace.delta_outs)
            self.trace.delta_outs.append(outs[0])
            self.trace.delta_versions.append(outs[0]._version)
            self.trace.params.update((id(t), t) for t in weights)
        for t in outs:  # a fresh slot even for an in-place result: earlier ops keep the old one
            self.slots[id(t)] = len(self.alive)
            self.alive.append(t)
        op.outs = tree_map(self._ref, out)
        self.trace.ops.append(op)
        return out

    def _classify(self, func, args, kwargs, dependent, leaves, out) -> _Op:
        if func in _ACTIVATIONS:
            slope = 0.0
            if func in (F.leaky_relu, F.leaky_relu_):
                slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
            if slope < 0:
                raise Unsupported("a LeakyReLU with a negative slope")
            self.trace.kept.append((out, out._version))
            return _Op("activation", func, None, None, None, mask=out, slope=float(slope))
        others = [t for t in leaves if _is_tensor(t) and id(t) not in self.slots]
        if func in _HOMOGENEOUS:
            if any(t.is_floating_point() for t in others):
                raise Unsupported(f"{_name(func)} mixes the input with a constant tensor")
            return _Op("homogeneous", func, None, None, None)
        if func in _PADS:
            mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
            value = kwargs.get("value", args[3] if len(args) > 3 else None)
            if mode != "constant" or value not in (None, 0, 0.0):
                raise Unsupported(f"pad with mode {mode!r} and value {value!r}")
            return _Op("homogeneous", func, None, None, None)
        if func in _PRODUCTS:
            if len(dependent) != 1 or (func in _DIVISORS and args[0] is not dependent[0]):
                raise Unsupported(f"{_name(func)} is not linear in the input")
            return _Op("product", func, None, None, None)
        if func in _SUMS:
            if kwargs or len(args) != 2:
                raise Unsupported(f"{_name(func)} with {len(args)} arguments or keywords")
            return _Op("sum", func, None, None, None)
        if func in _AFFINE:
            if len(dependent) != 1 or args[0] is not dependent[0]:
                raise Unsupported(f"{_name(func)} with an input-dependent weight")
            return _Op("affine", func, None, None, None)
        raise Unsupported(f"{_name(func)} is not known to be piecewise linear")


def _name(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))


# --- the tangent D step: replaying it on z = a·x + G ------------------------------------------------------


def _per_sample(a: Tensor, like: Tensor) -> Tensor:
    """a [B] shaped to broadcast over ``like`` [B, ...]."""
    return a.reshape(a.shape[0], *([1] * (like.dim() - 1))).to(like.dtype)


def _split_bias(func: Callable, args: tuple, kwargs: dict) -> tuple[tuple, dict, Any]:
    """(args, kwargs) of a convolution or linear call without its bias, and the bias."""
    args, kwargs = list(args), dict(kwargs)
    if "bias" in kwargs:
        return tuple(args), {**kwargs, "bias": None}, kwargs["bias"]
    if len(args) > 2:
        bias, args[2] = args[2], None
        return tuple(args), kwargs, bias
    return tuple(args), kwargs, None


def _replay(
    trace: _Trace, a: Tensor, G: Tensor, leaves: dict[int, Tensor]
) -> tuple[list[Tensor], list[Tensor], dict[int, Tensor]]:
    """Run the recorded ops on ``z = a·x + G`` with the masks of ``x`` and constants scaled by ``a``;
    return the outputs ``op_k(z; θ)`` of the weighted ops, differentiable w.r.t. the tensors in ``leaves``
    (by id), and their backward signals ``δ_k``: the parameter gradient is that of ``Σ_k ⟨δ_k, op_k⟩``,
    except for the biases of convolutions and linear layers, whose gradients come back directly (by the
    leaf's id)."""
    env: dict[int, Tensor] = {0: torch.addcmul(G, _per_sample(a, trace.x), trace.x).detach()}
    outs: list[Tensor] = []
    deltas: list[Tensor] = []
    bias_grads: dict[int, Tensor] = {}  # id of a bias leaf -> its gradient, taken without autograd

    def value(obj: Any) -> Any:
        if isinstance(obj, _Ref):
            return env[obj.slot]
        return leaves.get(id(obj), obj) if _is_tensor(obj) else obj

    for op in trace.ops:
        args, kwargs = tree_map(value, op.args), tree_map(value, op.kwargs)
        z = env[_first_ref((op.args, op.kwargs))]
        delta = trace.deltas[op.delta_index] if op.delta_index is not None else None
        bias = None
        with torch.set_grad_enabled(delta is not None):
            if op.kind == "activation":
                if op.slope:
                    out = torch.ops.aten.leaky_relu_backward(z, op.mask, op.slope, True)
                else:
                    out = torch.ops.aten.threshold_backward(z, op.mask, 0)
                if op.inplace:
                    out = z.copy_(out)
            elif op.kind in ("homogeneous", "product"):
                out = op.func(*args, **kwargs)
            elif op.kind == "sum":  # the constants of a sum are scaled by a_i
                args = tuple(
                    value(o) if isinstance(o, _Ref) else _per_sample(a, z) * value(o) for o in op.args
                )
                out = op.func(*args)
            else:  # affine: a convolution or a linear layer, its bias scaled by a_i
                args, kwargs, bias = _split_bias(op.func, args, kwargs)
                out = op.func(*args, **kwargs)
        if op.kind == "affine" and bias is not None:
            if delta is not None and bias.requires_grad:  # Σ_i a_i δ_i over all but the channels
                _accumulate(bias_grads, bias, _bias_grad(a, delta, _AFFINE[op.func]).to(bias.dtype))
            if delta is not None:
                outs.append(out)
                deltas.append(delta)
            spatial = _AFFINE[op.func]
            shaped = bias.detach().reshape(-1, *([1] * spatial)) if spatial else bias.detach()
            # in the output's dtype, as autocast casts the bias into the convolution: a float32 bias would
            # promote a bf16 stream to float32 from here on
            shaped = shaped.to(out.dtype)
            out = torch.addcmul(out.detach(), _per_sample(a, out), shaped)
        elif delta is not None:
            outs.append(out)
            deltas.append(delta)
        for ref, t in zip(tree_flatten(op.outs)[0], tree_flatten(out)[0], strict=True):
            if isinstance(ref, _Ref):
                env[ref.slot] = t.detach()
    return outs, deltas, bias_grads


def _bias_grad(a: Tensor, delta: Tensor, spatial: int) -> Tensor:
    """``Σ_i a_i δ_i`` summed over every dimension but the channels (1 for a convolution, the last for a
    linear layer): the gradient of the bias term ``a_i b`` paired with δ."""
    # the per-sample sums stay in δ's dtype (a bf16 reduction accumulates in float32 internally, and asking
    # for a float32 result would convert all of δ first); the sum over the batch is taken in float32
    dims = tuple(range(2, delta.dim())) if spatial else tuple(range(1, delta.dim() - 1))
    per_sample = delta.sum(dim=dims) if dims else delta  # [B, C]
    accumulate = torch.promote_types(delta.dtype, torch.float32)
    return a.to(accumulate) @ per_sample.to(accumulate)


def _accumulate(grads: dict[int, Tensor], leaf: Tensor, grad: Tensor) -> None:
    grads[id(leaf)] = grads[id(leaf)] + grad if id(leaf) in grads else grad


def _first_ref(obj: Any) -> int:
    for leaf in tree_flatten(obj)[0]:
        if isinstance(leaf, _Ref):
            return leaf.slot
    raise AssertionError("an input-dependent op without an input-dependent argument")


class _TangentBackward(torch.autograd.Function):
    """Outputs ``(f, ∇ₓf)`` of a recorded trace; its backward is the replay (module docstring)."""

    @staticmethod
    def forward(ctx, trace: _Trace, raw: Tensor, x: Tensor, *params: Tensor):
        ctx.trace = trace
        return raw.detach(), trace.grad.detach()

    @staticmethod
    def backward(ctx, a: Tensor, G: Tensor):
        trace: _Trace = ctx.trace
        a = a.reshape(trace.batch)
        leaves = {key: p.detach().requires_grad_() for key, p in trace.params.items()}
        device_type, enabled, dtype = trace.autocast
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            outs, deltas, bias_grads = _replay(trace, a, G, leaves)
        grads: list[Tensor | None] = [None] * len(leaves)
        if outs:
            grads = list(torch.autograd.grad(outs, list(leaves.values()), deltas, allow_unused=True))
        for index, leaf in enumerate(leaves.values()):
            extra = bias_grads.get(id(leaf))
            if extra is not None:
                grads[index] = extra if grads[index] is None else grads[index] + extra
        grad_x = _per_sample(a, trace.x) * trace.grad if ctx.needs_input_grad[2] else None
        return (None, None, grad_x, *grads)


_FALLBACK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # D -> why it is not replayable


def _fallback(D: Callable[..., Tensor], reason: str) -> None:
    warnings.warn(
        f"constraint.dstep=tangent: {reason}; this discriminator uses the double-backward D step",
        stacklevel=4,
    )
    with contextlib.suppress(TypeError):  # not weak-referenceable: it is checked again next time
        _FALLBACK[D] = reason


def _tangent(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict, channels_last: bool):
    try:
        if D in _FALLBACK:
            return dstep_double_backward(D, x, d_args, d_kwargs)
    except TypeError:
        pass
    trace = _Trace(batch=x.shape[0], x=x.detach())
    kind = x.device.type
    trace.autocast = (kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
    try:
        with _Recorder(x, trace):
            x_d = x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
            raw = D(x_d, *d_args, **d_kwargs)
        if any(t._version != v for t, v in zip(trace.delta_outs, trace.delta_versions, strict=True)):
            raise Unsupported("an output of a weighted layer is modified in place")
        if any(t._version != v for t, v in trace.kept):
            raise Unsupported("an activation's output is modified in place")
    except Unsupported as err:
        _fallback(D, str(err))
        return dstep_double_backward(D, x, d_args, d_kwargs)
    grads = torch.autograd.grad(_output_sum(raw, x.shape[0]), [x, *trace.delta_outs], allow_unused=True)
    trace.grad, trace.deltas = grads[0], list(grads[1:])
    trace.delta_outs, trace.delta_versions, trace.kept = [], [], []
    if trace.grad is None:
        trace.grad = torch.zeros_like(x)
    return _TangentBackward.apply(trace, raw.detach(), x, *trace.params.values())


@DSTEPS.register("tangent")
def dstep_tangent(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict):
    """Exact for piecewise-linear D in 4 passes instead of 6 (module docstring); other D fall back. An
    image batch [B, C, H, W] enters D in ``torch.channels_last``, the layout oneDNN's convolutions run
    fastest in on CPU (docs/performance.md); the values are the same."""
    return _tangent(D, x, d_args, d_kwargs, channels_last=True)


@DSTEPS.register("tangent-contiguous")
def dstep_tangent_contiguous(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict):
    """``"tangent"`` with the input in the layout it came in (a candidate kept for the measurements)."""
    return _tangent(D, x, d_args, d_kwargs, channels_last=False)
