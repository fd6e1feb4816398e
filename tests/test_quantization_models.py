"""Quantization models: the tight and bucketed bounds, calibration, resolution and serialization."""

import math

import numpy as np
import pytest

from gcdesign._validate import InputError
from gcdesign.quantization import (
    QuantizationModel,
    calibrate_quantization,
    delta_raw,
    delta_tight,
    error_factors,
    levels,
    resolve_quantization,
    row_variances,
)


def _vectors(rng, d):
    yield rng.normal(size=d)
    yield rng.standard_cauchy(size=d)  # heavy tails
    spike = np.zeros(d)
    spike[0] = 1.0
    yield spike
    yield np.ones(d)
    yield rng.exponential(size=d) * rng.choice([-1, 1], size=d)


@pytest.mark.parametrize("bucket_size", [None, 7, 64])
def test_tight_bound_holds_for_every_vector_and_is_below_raw(bucket_size):
    rng = np.random.default_rng(1)
    for d in (1, 5, 100, 3000):
        for x in _vectors(rng, d):
            for b in (2, 3, 4, 7, 12):
                v = row_variances(x[None], [b], "stochastic", bucket_size)[0]
                tight = delta_tight(b, d, bucket_size)
                assert tight <= delta_raw(b, d, bucket_size) * (1 + 1e-12)
                assert v <= tight * (x @ x) * (1 + 1e-9)


def test_tight_bound_at_d_1e6_matches_math_md():
    # MATH.md 2b: Gaussian x, d = 10^6: exact / ||x||^2 = 797, 113, 11.7; tight = 1000, 143, 15.9
    x = np.random.default_rng(0).normal(size=10**6)
    norm2 = x @ x
    got = [row_variances(x[None], [b])[0] / norm2 for b in (2, 4, 7)]
    np.testing.assert_allclose(got, [797, 113, 11.7], rtol=0.01)
    np.testing.assert_allclose([delta_tight(b, 10**6) for b in (2, 4, 7)], [1000, 142.857, 15.87], rtol=1e-3)
    np.testing.assert_allclose([delta_raw(b, 10**6) for b in (2, 4, 7)], [250000, 5102.04, 62.99], rtol=1e-3)


def test_bucket_bounds_use_the_bucket_length():
    assert delta_raw(3, 10**6, 512) == 512 / (4 * 9)
    assert delta_tight(3, 10**6, 512) == min(512 / 36, math.sqrt(512) / 3)
    assert delta_raw(3, 100, 512) == delta_raw(3, 100)  # a bucket longer than d is one bucket
    assert math.isinf(delta_tight(0, 10))


def test_calibrated_delta_predicts_held_out_variance_within_10_percent():
    rng = np.random.default_rng(5)
    d = 20_000

    def gradients(m):  # partition-gradient-like: a shared direction plus heavy-tailed noise
        base = rng.normal(size=d)
        return np.array([rng.uniform(0.5, 3) * (base + rng.standard_t(4, size=d)) for _ in range(m)])

    train, held = gradients(30), gradients(30)
    for beta in (None, 512):
        model = calibrate_quantization(train, b_max=10, bucket_size=beta)
        for b in (2, 4, 7, 10):
            measured = row_variances(held, np.full(len(held), b), "stochastic", beta).sum() / np.sum(held**2)
            predicted = model.delta([b], d, beta)[0]
            assert abs(predicted / measured - 1) < 0.10, (beta, b, predicted, measured)
            assert predicted <= delta_tight(b, d, beta)


def test_calibrated_model_refuses_another_dimension_and_round_trips():
    model = calibrate_quantization(np.random.default_rng(0).normal(size=(4, 64)), b_max=6)
    with pytest.raises(InputError, match="measured at d = 64"):
        model.delta([3], 65)
    with pytest.raises(InputError, match="no value at 7 bits"):
        model.delta([7], 64)
    assert QuantizationModel.from_dict(model.to_dict()).to_dict() == model.to_dict()
    assert np.isinf(model.delta([0, 3], 64)[0])


@pytest.mark.parametrize(
    ("policy", "kind", "kappa"),
    [
        ("raw", "raw", 1.0),
        ("tight", "tight", 1.0),
        ("none", "none", 0.0),
        (0.5, "scaled", 0.5),
        ("2", "scaled", 2.0),
    ],
)
def test_resolution(policy, kind, kappa):
    model = resolve_quantization(policy, [0.1, 0.3], 8, 1000)
    assert (model.kind, model.kappa) == (kind, kappa)
    assert QuantizationModel.from_dict(model.to_dict()) == model


def test_balanced_is_the_papers_scaling_with_buckets():
    p = np.array([0.1, 0.3])
    model = resolve_quantization("balanced", p, 7, 1000, c=0.005)
    assert model.kappa == pytest.approx(0.005 * 0.2 / (1000 / (4 * levels(3.5) ** 2)))
    bucketed = resolve_quantization("balanced", p, 7, 1000, bucket_size=100)
    assert bucketed.kappa == pytest.approx(0.2 / (100 / (4 * levels(3.5) ** 2)))
    np.testing.assert_allclose(bucketed.delta([3], 1000, 100), bucketed.kappa * 100 / 36)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("-1", "`kappa` must be a finite number >= 0, got '-1'."),
        (-1.0, "`kappa` must be a finite number >= 0, got -1.0."),
        ("inf", "`kappa` must be a finite number >= 0, got 'inf'."),
        ("1e400", "`kappa` must be a finite number >= 0, got '1e400'."),
        ("fudge", "Unknown quantization model 'fudge'"),
        ("calibrated", "build a calibrated model with gcdesign.calibrate_quantization"),
        (True, "Unknown quantization model True"),
    ],
)
def test_bad_models_are_named(policy, message):
    with pytest.raises(InputError) as err:
        resolve_quantization(policy, [0.1], 4, 10)
    assert message in str(err.value)


def test_error_factors_accepts_a_model_or_a_kappa():
    bits = np.array([0, 2, 4])
    np.testing.assert_array_equal(error_factors(bits, 2.0, 100), [np.inf, 2 * 25.0, 2 * 100 / 196])
    np.testing.assert_array_equal(
        error_factors(bits, QuantizationModel("none", kappa=0.0), 100), [np.inf, 0, 0]
    )
    np.testing.assert_allclose(error_factors(bits, QuantizationModel("tight"), 100)[1:], [10.0, 100 / 196])


def test_calibration_input_errors():
    with pytest.raises(InputError, match="all zero"):
        calibrate_quantization(np.zeros((2, 5)))
    with pytest.raises(InputError, match="finite"):
        calibrate_quantization([[1.0, np.nan]])
    with pytest.raises(InputError, match="b_max"):
        calibrate_quantization(np.ones((2, 5)), b_max=40)
    with pytest.raises(InputError, match="bucket_size"):
        calibrate_quantization(np.ones((2, 5)), bucket_size=0)


def test_design_files_store_the_model_and_version_1_files_still_load(tmp_path):
    import json

    import gcdesign as gc
    from gcdesign.io import design_to_dict

    profile = gc.load_example("toy-n8")
    for kappa, beta in (("tight", None), ("tight", 64), ("balanced", None), (0.25, 16)):
        d = gc.design(profile, bits_per_worker=5, quantization=kappa, bucket_size=beta)
        assert d.bucket_size == beta
        for suffix in (".json", ".npz"):
            path = gc.save_design(d, tmp_path / f"d{suffix}")
            back = gc.load_design(path)
            assert back.quantization == d.quantization and back.bucket_size == beta
            np.testing.assert_array_equal(back.delta, d.delta)
    # a tight design's delta is the tight bound, not the raw one
    d = gc.design(profile, bits_per_worker=5, quantization="tight", bucket_size=64)
    np.testing.assert_array_equal(d.delta, delta_tight(d.bits, profile.dim, 64))
    # version 1.0 (kappa only, one bucket) still loads as the scaled raw model
    old = gc.design(profile, bits_per_worker=5, quantization="balanced", bucket_size=None)
    data = design_to_dict(old)
    data["version"] = "1.0"
    del data["quantization"], data["bucket_size"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    back = gc.load_design(path)
    assert back.quantization.kind == "scaled" and back.kappa == old.kappa
    np.testing.assert_array_equal(back.delta, old.delta)
    # a tampered model is caught by the bound check
    data = design_to_dict(d)
    data["quantization"]["kind"] = "raw"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="stored `bound`"):
        gc.load_design(path)
