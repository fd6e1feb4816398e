import json

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError, list_examples, load_example, load_profile, save_profile
from gcdesign.profile import classes_n48_probs


def test_defaults_and_equality():
    prof = ClusterProfile([0.1, 0.2, 0.3], dim=10)
    assert prof.n_workers == 3 and prof.partitions == 3
    assert prof.names == ("w0", "w1", "w2")
    assert prof == ClusterProfile(np.array([0.1, 0.2, 0.3]), dim=10)
    assert prof != ClusterProfile([0.1, 0.2, 0.3], dim=11)
    with pytest.raises(ValueError):
        prof.straggler_probs[0] = 0.5  # immutable


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"straggler_probs": [0.1, 1.2], "dim": 5}, r"`straggler_probs\[1\]` = 1.2 is not a probability"),
        ({"straggler_probs": [0.1, -0.1], "dim": 5}, r"`straggler_probs\[1\]` = -0.1"),
        ({"straggler_probs": [0.1, float("nan")], "dim": 5}, r"`straggler_probs\[1\]` = nan"),
        ({"straggler_probs": [1.0, 1.0], "dim": 5}, "every worker has p = 1"),
        ({"straggler_probs": [], "dim": 5}, r"at least one element \(N >= 1"),
        ({"straggler_probs": [0.1], "dim": 0}, "`dim` must be an integer >= 1, got 0"),
        ({"straggler_probs": [0.1], "dim": 2.5}, "`dim` must be an integer >= 1, got 2.5"),
        ({"straggler_probs": [0.1], "dim": 3, "partitions": 0}, "`partitions` must be an integer >= 1"),
        ({"straggler_probs": [0.1, 0.2], "dim": 3, "names": ["a"]}, "`names` has 1 entries"),
        (
            {"straggler_probs": [0.1, 0.2], "dim": 3, "names": ["a", "a"]},
            r"`names\[1\]` = 'a' repeats `names\[0\]`",
        ),
    ],
)
def test_bad_profiles(kwargs, message):
    p = kwargs.pop("straggler_probs")
    with pytest.raises(InputError, match=message):
        ClusterProfile(p, **kwargs)


def test_latency_models():
    rates = np.array([0.5, 1.0, 2.0])
    exp = ClusterProfile.from_latency_model("exponential", rates=rates, deadline=2.0, dim=4)
    np.testing.assert_allclose(exp.straggler_probs, np.exp(-rates * 2.0), rtol=1e-15)
    sh = ClusterProfile.from_latency_model("shifted-exponential", rates=rates, deadline=1.1, shift=1.0, dim=4)
    np.testing.assert_allclose(sh.straggler_probs, np.exp(-rates * 0.1), rtol=1e-12)
    with pytest.raises(InputError, match="every worker has p = 1"):
        ClusterProfile.from_latency_model("shifted-exponential", rates=rates, deadline=1.0, shift=1.0, dim=4)
    with pytest.raises(InputError, match="Unknown latency model 'weibull'"):
        ClusterProfile.from_latency_model("weibull", rates=rates, deadline=1.0, dim=4)
    with pytest.raises(InputError, match=r"`rates\[1\]` = -1.0 must be a finite number > 0"):
        ClusterProfile.from_latency_model("exponential", rates=[1.0, -1.0], deadline=1.0, dim=4)
    with pytest.raises(InputError, match="`deadline` must be a finite number > 0"):
        ClusterProfile.from_latency_model("exponential", rates=rates, deadline=0.0, dim=4)


def test_latency_model_matches_simulation():
    rng = np.random.default_rng(0)
    rates = np.array([0.3, 1.0, 3.0])
    prof = ClusterProfile.from_latency_model(
        "shifted-exponential", rates=rates, deadline=1.5, shift=1.0, dim=1
    )
    times = 1.0 + rng.exponential(1 / rates, size=(200_000, 3))
    freq = (times > 1.5).mean(axis=0)
    se = np.sqrt(freq * (1 - freq) / times.shape[0])
    assert np.all(np.abs(freq - prof.straggler_probs) < 4 * se)


def test_traces_long_and_wide(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text(
        "worker,round,time\n"
        + "".join(f"a,{r},{t}\n" for r, t in enumerate([1, 1, 3, 1]))
        + "".join(f"b,{r},{t}\n" for r, t in enumerate([3, 3, 3, 3]))
    )
    prof = ClusterProfile.from_traces(long, deadline=2.0, dim=5)
    assert prof.names == ("a", "b")
    np.testing.assert_allclose(prof.straggler_probs, [(1 + 1) / (4 + 2), (4 + 1) / (4 + 2)])
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b\n1,3\n1,3\n3,3\n1,\n")
    prof = ClusterProfile.from_traces(wide, deadline=2.0, dim=5, smoothing=0)
    np.testing.assert_allclose(prof.straggler_probs, [0.25, 1.0])  # missing cell skipped
    # smoothing keeps estimates strictly inside (0, 1)
    prof = ClusterProfile.from_traces(np.array([[0.1, 9.0]] * 5), deadline=1.0, dim=2)
    assert 0 < prof.straggler_probs.min() and prof.straggler_probs.max() < 1


def test_bad_traces(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("worker,round,time\na,1,fast\n")
    with pytest.raises(InputError, match=r"line 2, column 'time': 'fast' is not a number"):
        ClusterProfile.from_traces(bad, deadline=1.0, dim=1)
    bad.write_text("worker,round,time\na,1\n")
    with pytest.raises(InputError, match="expected 3 fields"):
        ClusterProfile.from_traces(bad, deadline=1.0, dim=1)
    bad.write_text("a,a\n1,2\n")
    with pytest.raises(InputError, match="worker 'a' names columns 1 and 2"):
        ClusterProfile.from_traces(bad, deadline=1.0, dim=1)
    with pytest.raises(InputError, match="No such file"):
        ClusterProfile.from_traces(tmp_path / "missing.csv", deadline=1.0, dim=1)


def test_json_round_trip(tmp_path):
    prof = load_example("paper-n50")
    path = save_profile(prof, tmp_path / "p.json")
    assert load_profile(path) == prof
    data = json.loads(path.read_text())
    data["version"] = "2.0"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="format `version` 2.0 is not supported"):
        load_profile(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        load_profile(path)


def test_examples():
    assert set(list_examples()) == {"paper-n50", "classes-n48", "toy-n8"}
    paper, defaults = load_example("paper-n50", with_defaults=True)
    assert paper.n_workers == paper.partitions == 50 and defaults["bits_per_worker"] == 7
    # shifted exponential with t0 = 1, tau = 1.1, rates in U(0.01, 2): p in (e^-0.2, e^-0.001)
    assert np.all(paper.straggler_probs > np.exp(-0.2)) and np.all(paper.straggler_probs < np.exp(-0.001))
    assert load_example("paper-n50") == paper  # fixed seed
    with pytest.raises(InputError, match="Unknown example 'paper'; choose one of"):
        load_example("paper")


def test_classes_probs_have_utility_ratio():
    p = classes_n48_probs()
    m = p.mean()
    u = (1 - p) / (p + m)
    classes = u.reshape(3, 16)
    prof = load_example("classes-n48")
    assert sorted(prof.straggler_probs.tolist()) == sorted(p.tolist())
    assert np.ptp(classes, axis=1).max() == 0
    np.testing.assert_allclose(classes[:, 0] / classes[2, 0], [3, 2, 1], rtol=1e-13)
