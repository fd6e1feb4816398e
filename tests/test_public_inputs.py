"""Issue 20: the public functions below design() refuse bad input in one line naming the field."""

import numpy as np
import pytest

import gcdesign as gc
from gcdesign import InputError

PROFILE = gc.load_example("toy-n8")
CODE = gc.design(PROFILE, bits_per_worker=4)

CASES = {
    "utilities: negative delta": (lambda: gc.utilities([0.1, 0.2], [-1.0, 1.0]), "`delta[0]` = -1.0"),
    "utilities: delta of the wrong length": (lambda: gc.utilities([0.1, 0.2], [1.0]), "`delta` must be one"),
    "utilities: NaN p": (lambda: gc.utilities([np.nan, 0.2], [1.0, 1.0]), "`straggler_probs[0]`"),
    "optimal_structure: delta of the wrong length": (
        lambda: gc.optimal_structure(PROFILE, np.ones(3)),
        "`delta` must be one number or 8",
    ),
    "quantize: 2000 bits": (lambda: gc.quantize(np.ones(10), 2000), "`bits` must be an integer in [2, 32]"),
    "quantize: NaN vector": (lambda: gc.quantize(np.array([np.nan, 1.0]), 4), "`x[0]` = nan"),
    "quantize: text array": (lambda: gc.quantize(np.array(["a", "b"]), 4), "`x[0]` must be a real number"),
    "quantize: bucket_size True": (lambda: gc.quantize(np.ones(10), 4, bucket_size=True), "`bucket_size`"),
    "quantize: bucket_size 0": (lambda: gc.quantize(np.ones(10), 4, bucket_size=0), "`bucket_size`"),
    "quantize: bucket_size -1": (lambda: gc.quantize(np.ones(10), 4, bucket_size=-1), "`bucket_size`"),
    "quantization_variance: 2000 bits": (lambda: gc.quantization_variance(np.ones(10), 2000), "`bits`"),
    "quantization_variance: bucket_size 0": (
        lambda: gc.quantization_variance(np.ones(10), 4, bucket_size=0),
        "`bucket_size`",
    ),
    "delta_raw: 2000 bits": (lambda: gc.delta_raw(2000, 10), "`bits` must be at most 32"),
    "delta_raw: bucket_size True": (lambda: gc.delta_raw(4, 10, True), "`bucket_size`"),
    "save_design: a bytes path": (lambda: gc.save_design(CODE, b"x.json"), "`path` must be a path"),
    "save_design: a NUL in the path": (lambda: gc.save_design(CODE, "x\0.json"), "NUL"),
    "load_design: a NUL in the path": (lambda: gc.load_design("x\0.json"), "NUL"),
    "load_profile: a bytes path": (lambda: gc.load_profile(b"p.json"), "must be a path"),
    "synthetic_gradients: rng=True": (lambda: gc.synthetic_gradients(8, 10, rng=True), "`rng`"),
    "synthetic_gradients: rng='abc'": (lambda: gc.synthetic_gradients(8, 10, rng="abc"), "`rng`"),
    "synthetic_gradients: rng=-1": (lambda: gc.synthetic_gradients(8, 10, rng=-1), "`rng`"),
    "monte_carlo_error: rng=True": (
        lambda: gc.monte_carlo_error(CODE, gc.synthetic_gradients(8, 10, rng=0), trials=10, rng=True),
        "`rng`",
    ),
    "allocate_bits: options='x'": (lambda: gc.allocate_bits(PROFILE, 32, options="x"), "`options`"),
    "allocate_bits: kappa_c='x'": (
        lambda: gc.allocate_bits(PROFILE, 32, quantization="balanced", kappa_c="x"),
        "`kappa_c`",
    ),
    "design: allocator_options='x'": (
        lambda: gc.design(PROFILE, bits_per_worker=4, allocator_options="x"),
        "`allocator_options`",
    ),
    "design: b_max=40": (lambda: gc.design(PROFILE, bits_per_worker=4, b_max=40), "`b_max` = 40"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_in_one_line(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, phrase = CASES[case]
    with pytest.raises(InputError) as exc:
        call()
    message = str(exc.value)
    assert phrase in message and "\n" not in message, message


def test_a_calibrated_model_has_no_value_beyond_32_bits():
    """With b_max at most 32 no entry beyond the table's last one is ever read (the 33-40-bit
    entries used to reuse the 32-bit value)."""
    from gcdesign.quantization import calibrate_quantization

    model = calibrate_quantization(np.random.default_rng(0).standard_normal((3, 1000)), b_max=32)
    with pytest.raises(InputError, match="`b_max` = 40"):
        gc.design(PROFILE, bits_per_worker=4, quantization=model, bucket_size=None, b_max=40)
