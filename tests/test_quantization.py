import numpy as np
import pytest

from gcdesign import InputError, delta_raw, quantization_variance, quantize
from gcdesign.quantization import (
    levels,
    payload_bits,
    quantize_rows,
    quantize_sign,
    resolve_quantization,
    sign_quantization_variance,
)


def test_levels_and_delta():
    assert levels(2) == 1 and levels(3) == 3 and levels(8) == 127
    assert delta_raw(2, 100) == pytest.approx(25.0)
    assert delta_raw(3, 36) == pytest.approx(1.0)
    np.testing.assert_array_equal(delta_raw(np.array([0, 2]), 4), [np.inf, 1.0])
    assert delta_raw(7.5, 10) == pytest.approx(10 / (4 * (2**6.5 - 1) ** 2))  # fractional B/N


@pytest.mark.parametrize("bits", [2, 3, 5])
def test_quantizer_values_on_grid_and_unbiased(bits):
    rng = np.random.default_rng(bits)
    x = rng.normal(size=7)
    s = 2 ** (bits - 1) - 1
    # one call: quantize_rows draws the uniforms of 40,000 successive quantize(x, bits, rng=rng)
    samples = quantize_rows(np.tile(x, (40_000, 1)), np.full(40_000, bits), rng=rng)
    grid = samples * s / np.linalg.norm(x)
    np.testing.assert_allclose(grid, np.rint(grid), atol=1e-9)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0) / np.sqrt(len(samples)) + 1e-12
    assert np.all(np.abs(mean - x) < 4 * se)
    err = np.sum((samples - x) ** 2, axis=1)
    exact = quantization_variance(x, bits)
    assert abs(err.mean() - exact) < 4 * err.std() / np.sqrt(len(err))
    assert exact <= delta_raw(bits, x.size) * (x @ x)


def test_quantizer_edge_cases():
    assert np.array_equal(quantize(np.zeros(3), 2), np.zeros(3))
    assert quantization_variance(np.zeros(3), 4) == 0.0
    e = np.array([0.0, 3.0, 0.0])  # on the grid: no error
    assert quantization_variance(e, 2) == 0.0
    np.testing.assert_array_equal(quantize(e, 2, rng=1), e)
    with pytest.raises(InputError, match=r"`bits` must be an integer in \[2, 32\], got 1"):
        quantize(e, 1)


def test_sign_quantizer():
    rng = np.random.default_rng(3)
    x = rng.normal(size=5)
    samples = quantize_rows(np.tile(x, (40_000, 1)), np.ones(40_000, dtype=int), rng=rng)  # one call
    err = np.sum((samples - x) ** 2, axis=1)
    assert abs(err.mean() - sign_quantization_variance(x)) < 4 * err.std() / np.sqrt(len(err))
    assert np.all(np.abs(samples.mean(axis=0) - x) < 4 * samples.std(axis=0) / np.sqrt(len(samples)))


def test_payload():
    assert payload_bits(4, 1000) == 32 + 4000
    np.testing.assert_array_equal(payload_bits(np.array([0, 2]), 10), [0, 52])


def test_kappa_of_the_quantization_models():
    p = np.array([0.2, 0.4])

    def kappa(model, **kw):
        return resolve_quantization(model, p, 8, 100, **kw).kappa

    assert kappa("raw") == 1.0
    assert kappa("none") == 0.0
    assert kappa(0.25) == 0.25
    assert kappa("0.5") == 0.5
    assert kappa("balanced", c=2.0) * delta_raw(4, 100) == pytest.approx(2.0 * 0.3)
    with pytest.raises(InputError, match="Unknown quantization model 'fancy'"):
        kappa("fancy")
    with pytest.raises(InputError, match="`kappa` must be a finite number >= 0, got -1"):
        kappa(-1)
    with pytest.raises(InputError, match="`kappa_c` must be a finite number > 0"):
        kappa("balanced", c=0)


def test_delta_raw_just_above_one_bit():
    # fractional B / N in (1, 1.5) is evaluated at the given bits, not clipped
    assert delta_raw(1.2, 10) == pytest.approx(10 / (4 * (2**0.2 - 1) ** 2), rel=1e-12)
    assert delta_raw(1.0, 10) == np.inf


def test_error_factors():
    from gcdesign.quantization import error_factors

    np.testing.assert_array_equal(error_factors(np.array([0, 2, 3]), 0.5, 36), [np.inf, 4.5, 0.5])
    np.testing.assert_array_equal(error_factors(np.array([0, 4]), 0.0, 36), [np.inf, 0.0])


def test_one_call_equals_successive_calls():
    """The vectorized tests above stand for loops of quantize / quantize_sign: same draws, same values."""
    x = np.random.default_rng(5).normal(size=7)
    for bits, one in ((3, lambda rng: quantize(x, 3, rng=rng)), (1, lambda rng: quantize_sign(x, rng=rng))):
        rng = np.random.default_rng(9)
        loop = np.array([one(rng) for _ in range(50)])
        batch = quantize_rows(np.tile(x, (50, 1)), np.full(50, bits), rng=np.random.default_rng(9))
        assert np.array_equal(loop, batch)


def test_rounding_routine_and_its_twin_use_the_reciprocal_of_the_norm():
    """``y = |x| (s / norm)`` in the numba routine and in numpy, down to the last bit: a draw that
    falls between the two possible fractional parts of ``y`` decides the same level in both."""
    import numba

    from gcdesign._rounding import stochastic_level
    from gcdesign.quantization import stochastic_levels

    @numba.njit
    def level(magnitude, s, norm, u):
        return stochastic_level(magnitude, s, norm, u)

    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 1.0, 10_000)
    s, norm = 7.0, 1.3
    y_new, y_old = x * (s / norm), s * x / norm
    differ = np.flatnonzero((y_new != y_old) & (np.floor(y_new) == np.floor(y_old)))
    assert differ.size > 100
    for k in differ[:200]:
        u = 0.5 * ((y_new[k] - np.floor(y_new[k])) + (y_old[k] - np.floor(y_old[k])))
        assert level(x[k], s, norm, u) == stochastic_levels(x[k], s, norm, u)
