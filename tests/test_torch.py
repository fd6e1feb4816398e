"""gcdesign.torch: coded sample weights, the tensor codec and its torch quantizer (CPU; CUDA when present)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from gcdesign import ClusterProfile, design, runtime  # noqa: E402
from gcdesign._mc_kernels import uniforms as numpy_uniforms  # noqa: E402
from gcdesign._validate import InputError  # noqa: E402
from gcdesign.quantization import row_variances  # noqa: E402
from gcdesign.schemes import Scheme, make_scheme, with_bucket_size  # noqa: E402
from gcdesign.torch import (  # noqa: E402
    WorkerSampler,
    batch_weights,
    decode,
    encode,
    flat_grad,
    quantize_tensor,
    sample_weights,
    set_flat_grad,
    worker_loader,
)
from gcdesign.torch.codec import uniforms  # noqa: E402

PROFILE = ClusterProfile([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8], dim=64, partitions=8)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device in this session")


@pytest.fixture(scope="module")
def code():
    return design(PROFILE, 36, allocator="equal")


def _schemes(code):
    none = Scheme(
        "exact",
        code.encoding,
        np.where(code.bits > 0, 32, 0),
        code.straggler_probs,
        decoding=code.decoding,
        quantizer="none",
    )
    return {
        "design": code,
        "buckets": with_bucket_size(code, 7),
        "sign": make_scheme("sgc-1bit", PROFILE, 8),
        "none": none,
    }


def test_import_gcdesign_does_not_import_torch():
    script = (
        "import sys, gcdesign, gcdesign.cli, gcdesign.runtime, gcdesign.cluster, gcdesign.studies.torch; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_uniforms_are_the_numpy_stream():
    key = np.uint64(0xDEADBEEF12345678)  # above 2^63: the signed int64 view is exercised
    got = uniforms(int(key), 5, 3000, "cpu").numpy()
    want = numpy_uniforms(key, np.arange(5, 3005, dtype=np.uint64))
    assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", ["design", "buckets", "sign", "none"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpu_codec_and_torch_quantizer_give_the_numpy_bytes(code, kind, dtype):
    scheme = _schemes(code)[kind]
    rng = np.random.default_rng(1)
    for worker in np.flatnonzero(np.asarray(scheme.bits) > 0):
        x = torch.from_numpy(rng.standard_normal(203) * 10.0 ** rng.integers(-3, 3)).to(getattr(torch, dtype))
        want = runtime.encode_vector(
            scheme, int(worker), x.numpy().astype(np.float64), rng=int(worker)
        ).to_bytes()
        assert encode(scheme, int(worker), x, rng=int(worker)).to_bytes() == want
        assert quantize_tensor(scheme, int(worker), x, rng=int(worker)).to_bytes() == want


def test_encode_vector_is_encode_of_the_combined_vector(code):
    grads = np.random.default_rng(2).standard_normal((code.partitions, 50))
    for worker in range(code.n_workers):
        if code.bits[worker] == 0 or runtime.partitions_of(code, worker).size == 0:
            continue
        x = runtime.worker_message_vector(code, worker, grads)
        assert runtime.encode(code, worker, grads, rng=9) == runtime.encode_vector(code, worker, x, rng=9)


def test_cpu_encode_reads_the_tensor_memory(code, monkeypatch):
    x = torch.randn(300, dtype=torch.float64)
    seen = {}

    def spy(scheme, worker, arr, *, rng=None):
        seen["shares"] = np.shares_memory(arr, x.numpy())
        return real(scheme, worker, arr, rng=rng)

    real = runtime.encode_vector
    monkeypatch.setattr(runtime, "encode_vector", spy)
    encode(code, 0, x, rng=0)
    assert seen["shares"]


def test_zero_and_zero_bucket_vectors(code):
    scheme = with_bucket_size(code, 4)
    x = torch.zeros(20, dtype=torch.float64)
    x[10] = 3.0  # buckets 0, 1 and 3, 4 are zero
    want = runtime.encode_vector(scheme, 0, x.numpy(), rng=0).to_bytes()
    assert quantize_tensor(scheme, 0, x, rng=0).to_bytes() == want


@pytest.mark.parametrize("bucket", [None, 16])
def test_torch_quantizer_unbiased_with_the_exact_variance(code, bucket):
    scheme = with_bucket_size(code, bucket)
    worker = int(np.flatnonzero(code.bits == code.bits[code.bits > 0].min())[0])
    bits = int(code.bits[worker])
    x = torch.from_numpy(np.random.default_rng(3).standard_normal(40))
    trials = 1500
    q = np.array([quantize_tensor(scheme, worker, x, rng=t).values() for t in range(trials)])
    err = q - x.numpy()
    se = err.std(axis=0, ddof=1) / np.sqrt(trials)
    assert np.all(np.abs(err.mean(axis=0)) <= 5 * se + 1e-12)
    sq = np.sum(err**2, axis=1)
    exact = row_variances(x.numpy()[None], [bits], "stochastic", bucket)[0]
    assert abs(sq.mean() - exact) <= 5 * sq.std(ddof=1) / np.sqrt(trials)


def test_decode_is_runtime_decode(code):
    rng = np.random.default_rng(4)
    messages = [
        encode(code, w, torch.from_numpy(rng.standard_normal(64)), rng=w).to_bytes()
        for w in range(code.n_workers)
        if code.bits[w] > 0 and w % 2 == 0
    ]
    got = decode(code, messages)
    assert got.dtype == torch.float64
    assert np.array_equal(got.numpy(), runtime.decode(code, messages))
    assert decode(code, messages, dtype=torch.float32).dtype == torch.float32


def test_encode_refuses_bad_vectors(code):
    with pytest.raises(InputError, match="`x` must be a non-empty 1-D float tensor"):
        encode(code, 0, torch.zeros(3, 3))
    with pytest.raises(InputError, match="`x` must be a torch.Tensor"):
        encode(code, 0, np.zeros(3))
    x = torch.ones(10, dtype=torch.float64)
    x[3] = float("nan")
    with pytest.raises(InputError, match="not finite"):
        quantize_tensor(code, 0, x)


# ------------------------------------------------------------------ sample weights
class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(5, 7).double()
        self.b = torch.nn.Linear(7, 3).double()

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def _data(n=60, k=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    part = np.random.default_rng(seed).integers(0, k, n)
    part[:k] = np.arange(k)  # every partition has a sample
    return X, y, part


def _grad(model, X, y, weights):
    model.zero_grad()
    losses = torch.nn.functional.cross_entropy(model(X), y, reduction="none")
    (weights * losses).sum().backward()
    return flat_grad(model)


def test_sample_weights_give_the_coded_gradient(code):
    torch.manual_seed(0)
    model = _Net()
    X, y, part = _data()
    g = torch.stack([_grad(model, X, y, torch.as_tensor(part == j, dtype=torch.float64)) for j in range(8)])
    B = torch.as_tensor(code.encoding.toarray())
    for worker in range(code.n_workers):
        w = sample_weights(code, worker, part, dtype=torch.float64)
        assert torch.all(w[~torch.as_tensor(np.isin(part, runtime.partitions_of(code, worker)))] == 0)
        assert torch.allclose(_grad(model, X, y, w), B[worker] @ g, rtol=1e-12, atol=1e-14)


def test_batch_weights_unbiased_and_shared(code):
    X, y, part = _data(n=80)
    sums = np.zeros((code.n_workers, part.size))
    rounds = 800
    for r in range(rounds):
        picks = {}
        for worker in range(code.n_workers):
            idx, wts = batch_weights(
                code, worker, part, batch_size=3, seed=7, round_index=r, dtype=torch.float64
            )
            sums[worker, idx.numpy()] += wts.numpy()
            for j in runtime.partitions_of(code, worker):
                mine = set(idx.numpy()[part[idx.numpy()] == j])
                assert picks.setdefault(int(j), mine) == mine  # one batch per partition and round
    full = np.array(
        [sample_weights(code, w, part, dtype=torch.float64).numpy() for w in range(code.n_workers)]
    )
    # E[w_s] = b_{i, pi(s)} exactly; the draws have sd <= |b| |P_j| / m per round
    tol = 5 * np.abs(full) * (np.bincount(part)[part] / 3) / np.sqrt(rounds) + 1e-12
    assert np.all(np.abs(sums / rounds - full) <= tol)


def test_worker_sampler_touches_only_own_partitions(code):
    X, y, part = _data(n=80)
    dataset = torch.utils.data.TensorDataset(X, y)
    for worker in range(3):
        loader = worker_loader(dataset, code, worker, part, batch_size=2, seed=1, loader_batch=5)
        loader.sampler.set_round(3)
        idx, wts = batch_weights(code, worker, part, batch_size=2, seed=1, round_index=3)
        seen = list(loader.sampler)
        assert seen == idx.tolist()
        assert set(part[seen]) <= set(runtime.partitions_of(code, worker).tolist())
        got = torch.cat([batch[2] for batch in loader])
        assert torch.equal(got, wts)
    enc = sp.eye(8, format="lil")
    enc[7, 7] = 0.0  # worker 7 holds no partition
    toy = Scheme("idle-7", sp.csr_array(enc), [4] * 8, [0.1] * 8, decoding=np.ones(8))
    assert len(WorkerSampler(toy, 7, part)) == 0


def test_sample_weights_refuse_bad_partitions(code):
    with pytest.raises(InputError, match=r"`sample_partition\[1\]` = 8"):
        sample_weights(code, 0, [0, 8])
    with pytest.raises(InputError, match="1-D array of integers"):
        sample_weights(code, 0, [0.5, 1.0])


def test_flat_grad_round_trip():
    model = _Net()
    total = sum(p.numel() for p in model.parameters())
    v = torch.arange(total, dtype=torch.float64)
    set_flat_grad(model, v)
    assert torch.equal(flat_grad(model), v)
    v[0] = -1.0  # the grads are copies
    assert flat_grad(model)[0] == 0.0
    with pytest.raises(InputError, match=f"{total} entries"):
        set_flat_grad(model, torch.zeros(total + 1))


@CUDA
def test_cuda_quantizer_same_wire_format(code):  # pragma: no cover - runs where a GPU is lent
    scheme = with_bucket_size(code, 32)
    x = torch.randn(10_000, dtype=torch.float64)
    for worker in np.flatnonzero(code.bits > 0):
        want = runtime.encode_vector(scheme, int(worker), x.numpy(), rng=1).to_bytes()
        assert encode(scheme, int(worker), x.cuda(), rng=1).to_bytes() == want
        assert encode(scheme, int(worker), x.cuda().float(), rng=1).nbytes == len(want)
