r"""The message codec for gradient tensors: encode, decode, and the quantizer on the device.

:func:`encode` turns worker i's coded gradient :math:`x_i` (a 1-D tensor) into a
:class:`gcdesign.runtime.Message`, the wire format of :mod:`gcdesign.runtime`:

* a **CPU** tensor goes to the package's numba codec through ``Tensor.numpy()``, a view
  (no copy for a contiguous float64 tensor; float32 is widened once, as the numpy path
  does): the same vector and `rng` give the same bytes as :func:`gcdesign.runtime.encode`;
* a tensor on another device (CUDA) is quantized **there** by :func:`quantize_tensor`,
  a torch implementation of the same quantizer: bucket norms rounded up to float32, the
  levels :math:`\xi_k = \lfloor y_k \rfloor + [u_k < y_k - \lfloor y_k \rfloor]`,
  :math:`y_k = s |x_k| / \mathrm{norm}_c`, clipped to :math:`s`, with the uniforms
  :math:`u_k` of the same counter-based stream (splitmix64 of the message key and the
  coordinate, in int64 arithmetic), packed MSB first on the device; only the packed
  bytes and the norms leave it. It is unbiased with the exact variance of
  :func:`gcdesign.quantization.row_variances`; on a CPU it gives the numba codec's bytes
  (the tests check it).

:func:`decode` is :func:`gcdesign.runtime.decode` returned as a tensor.
:func:`flat_grad` and :func:`set_flat_grad` move a model's gradients to and from one
vector.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import runtime
from .._validate import InputError
from ..quantization import levels
from ..schemes import check_scheme

# the counter-based stream of gcdesign._mc_kernels (splitmix64), as signed int64 constants
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MIX1 = 0xBF58476D1CE4E5B9 - 2**64
_MIX2 = 0x94D049BB133111EB - 2**64
_TO_UNIT = 2.0**-53
_PACK_CHUNK = 1 << 16  # coordinates packed at a time (a multiple of 8: whole bytes per chunk)


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 values seen as uint64."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def uniforms(key: int, start: int, count: int, device) -> torch.Tensor:
    """Uniforms ``start .. start + count - 1`` of the stream `key` (float64, on `device`).

    The twin of :func:`gcdesign._mc_kernels.uniforms` in int64 arithmetic (products wrap
    modulo 2^64 as in uint64).
    """
    key = int(key)
    key = key - 2**64 if key >= 2**63 else key
    z = torch.arange(start + 1, start + count + 1, dtype=torch.int64, device=device)
    z = z * _GOLDEN + key
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    z = z ^ _shr(z, 31)
    return _shr(z, 11).to(torch.float64) * _TO_UNIT


def _norms_up(x: torch.Tensor, bucket: int) -> torch.Tensor:
    """float32 bucket norms, rounded up (>= the float64 norm), on the device."""
    d = x.numel()
    m = -(-d // bucket)
    padded = torch.zeros(m * bucket, dtype=torch.float64, device=x.device)
    padded[:d] = x
    exact = torch.sqrt((padded * padded).reshape(m, bucket).sum(dim=1))
    out = exact.to(torch.float32)
    low = out.to(torch.float64) < exact
    return torch.where(low, torch.nextafter(out, torch.tensor(float("inf"), device=x.device)), out)


def _pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack int64 codes MSB first, `bits` each, into uint8 (on the codes' device)."""
    shifts = torch.arange(bits - 1, -1, -1, dtype=torch.int64, device=codes.device)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.int32, device=codes.device)
    out = []
    for lo in range(0, codes.numel(), _PACK_CHUNK):
        chunk = codes[lo : lo + _PACK_CHUNK]
        stream = ((chunk[:, None] >> shifts) & 1).to(torch.int32).reshape(-1)
        pad = -stream.numel() % 8
        if pad:
            stream = torch.cat([stream, stream.new_zeros(pad)])
        out.append((stream.reshape(-1, 8) * weights).sum(dim=1).to(torch.uint8))
    return torch.cat(out)


def quantize_tensor(scheme, worker: int, x: torch.Tensor, *, rng=None) -> runtime.Message:
    """Worker `worker`'s message from the 1-D tensor `x`, quantized on `x`'s device (module docstring).

    The torch twin of :func:`gcdesign.runtime.encode_vector`: same header checks, same
    wire format, same uniforms for the same `rng`.
    """
    scheme = check_scheme(scheme)
    x = _vector(x)
    worker = int(worker)
    n = scheme.encoding.shape[0]
    if not 0 <= worker < n:
        raise InputError(f"`worker` must be an integer in [0, {n - 1}], got {worker!r}.")
    bits = int(scheme.bits[worker])
    if bits == 0:
        raise InputError(f"worker {worker} is idle (0 bits): it sends nothing.")
    d = x.numel()
    quantizer = scheme.quantizer
    with torch.no_grad():
        if quantizer == "none":
            values = x.to(torch.float32)
            if not bool(torch.isfinite(values).all()):
                raise InputError(
                    f"worker {worker}'s coded gradient is not finite or exceeds the float32 range "
                    "(max 3.4e38)."
                )
            return runtime.Message(worker, d, 32, "none", np.empty(0, np.float32), _frozen(values))
        xd = x.to(torch.float64)
        beta = scheme.bucket_size
        bucket = d if beta is None or quantizer == "sign" else min(int(beta), d)
        norms = _norms_up(xd, bucket)
        if not bool(torch.isfinite(norms).all()):
            raise InputError(
                f"worker {worker}'s coded gradient is not finite or has a norm beyond the float32 range "
                "(max 3.4e38)."
            )
        per = torch.repeat_interleave(norms.to(torch.float64), bucket)[:d]
        positive = per > 0
        safe = torch.where(positive, per, torch.ones_like(per))
        u = uniforms(runtime.stream_key(rng), 0, d, x.device)
        if quantizer == "stochastic":
            s = float(levels(bits))
            y = s * xd.abs() / safe
            low = torch.floor(y)
            xi = torch.clamp(low + (u < y - low).to(torch.float64), max=s)
            xi = torch.where(positive, xi, torch.zeros_like(xi))
            codes = xi.to(torch.int64) | (((xd < 0) & (xi > 0)).to(torch.int64) << (bits - 1))
        else:  # sign: 1 = +1; a zero norm sends 1
            codes = (~positive | (u < 0.5 * (1.0 + xd / safe))).to(torch.int64)
        payload = _pack(codes, bits)
    beta = None if beta is None or quantizer == "sign" else int(beta)
    return runtime.Message(worker, d, bits, quantizer, norms.cpu().numpy(), _frozen(payload), beta)


def _frozen(t: torch.Tensor) -> memoryview:
    """The bytes of a fresh tensor as a read-only memoryview (on the CPU)."""
    raw = t.detach().cpu().contiguous().numpy().view(np.uint8)
    raw.setflags(write=False)
    return memoryview(raw)


def _vector(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"`x` must be a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != 1 or not x.is_floating_point() or x.numel() == 0:
        raise InputError(f"`x` must be a non-empty 1-D float tensor, got shape {tuple(x.shape)} ({x.dtype}).")
    return x.detach()


def encode(scheme, worker: int, x: torch.Tensor, *, rng=None) -> runtime.Message:
    """Worker `worker`'s message from its coded gradient `x` (a 1-D tensor on any device).

    A CPU tensor: the numba codec on a view of its memory (the bytes of
    :func:`gcdesign.runtime.encode_vector` for the same vector and `rng`); another device:
    :func:`quantize_tensor` there. `rng` as in :func:`gcdesign.runtime.encode`.

    Examples
    --------
    >>> from gcdesign import design, load_example, runtime
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> x = torch.linspace(-1.0, 1.0, 1000, dtype=torch.float64)
    >>> encode(d, 0, x, rng=3).to_bytes() == runtime.encode_vector(d, 0, x.numpy(), rng=3).to_bytes()
    True
    """
    x = _vector(x)
    if x.device.type != "cpu":
        return quantize_tensor(scheme, worker, x, rng=rng)
    return runtime.encode_vector(scheme, worker, x.contiguous().numpy(), rng=rng)


def decode(scheme, messages, *, dim: int | None = None, device=None, dtype=torch.float64) -> torch.Tensor:
    """The estimate :math:`\\hat g = \\sum_i a_i Q(x_i)` as a tensor (:func:`gcdesign.runtime.decode`)."""
    out = torch.from_numpy(runtime.decode(scheme, messages, dim=dim))
    return out.to(device=device, dtype=dtype) if (device is not None or dtype != torch.float64) else out


def _parameters(model) -> list:
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    return [p for p in model.parameters() if p.requires_grad]


def flat_grad(model, *, dtype=None) -> torch.Tensor:
    """The gradients of `model`'s trainable parameters as one 1-D tensor (zeros where ``.grad`` is None)."""
    params = _parameters(model)
    parts = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dtype or p.dtype)
        for p in params
    ]
    return torch.cat(parts) if parts else torch.zeros(0)


def set_flat_grad(model, vector) -> None:
    """Write the 1-D `vector` (tensor or array) into the ``.grad`` of `model`'s trainable parameters."""
    params = _parameters(model)
    vector = torch.as_tensor(vector)
    total = sum(p.numel() for p in params)
    if vector.dim() != 1 or vector.numel() != total:
        raise InputError(
            f"`vector` must be 1-D with {total} entries (the model's trainable parameters), "
            f"got shape {tuple(vector.shape)}."
        )
    offset = 0
    for p in params:
        p.grad = vector[offset : offset + p.numel()].reshape(p.shape).to(p.device, p.dtype, copy=True)
        offset += p.numel()


def flat_params(model) -> torch.Tensor:
    """The trainable parameters of `model` as one new 1-D tensor."""
    return torch.nn.utils.parameters_to_vector(_parameters(model)).detach()


def set_flat_params(model, vector) -> None:
    """Copy the 1-D `vector` into `model`'s trainable parameters."""
    params = _parameters(model)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(vector).to(params[0]), params)


__all__ = [
    "decode",
    "encode",
    "flat_grad",
    "flat_params",
    "quantize_tensor",
    "set_flat_grad",
    "set_flat_params",
    "uniforms",
]
