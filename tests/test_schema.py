"""docs/schema/*.schema.json (JSON Schema draft 2020-12) against the package.

Every design and profile file the package writes is valid under its schema; a file the
schema refuses, the loader refuses too (the fuzz suite's mutations of a good file, and the
red-team cases), so a reader in another language that checks the schema never accepts less
than the package. The loader refuses more (shapes, unbiasedness, the bound): a schema
cannot say those.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from fuzz_strategies import FUZZ, check_refusal, mutated
from hypothesis import given, settings

import gcdesign as gc
from gcdesign.io import design_from_dict, design_to_dict
from gcdesign.quantization import calibrate_quantization

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[1]
DESIGN = jsonschema.Draft202012Validator(json.loads((ROOT / "docs/schema/design.schema.json").read_text()))
PROFILE = jsonschema.Draft202012Validator(json.loads((ROOT / "docs/schema/profile.schema.json").read_text()))


def test_the_schemas_are_valid_draft_2020_12():
    for validator in (DESIGN, PROFILE):
        jsonschema.Draft202012Validator.check_schema(validator.schema)


def _designs():
    toy = gc.load_example("toy-n8")
    samples = np.random.default_rng(0).standard_normal((4, toy.dim))
    kinds = ["raw", "tight", "none", "balanced", 0.5, calibrate_quantization(samples, bucket_size=512)]
    out = [gc.design(toy, bits_per_worker=4, quantization=q) for q in kinds]
    out.append(gc.design(toy, bits_per_worker=4, bucket_size=None))
    out.append(gc.design(toy, bits_per_worker=4, allocator_options={"allow_idle": True}))
    out.append(gc.design(toy, bits_per_worker=4, construction="hub"))
    out.append(gc.design(gc.load_example("paper-n50"), bits_per_worker=7))
    out.append(gc.design(gc.ClusterProfile([0.1, 0.5, 0.9], dim=10, partitions=5), budget=9))
    return out


def test_every_design_file_the_package_writes_is_valid(tmp_path):
    for i, code in enumerate(_designs()):
        path = gc.save_design(code, tmp_path / f"d{i}.json")
        DESIGN.validate(json.loads(path.read_text()))


def test_every_profile_file_the_package_writes_is_valid(tmp_path):
    from gcdesign.cli import main

    for name in gc.list_examples():
        path = gc.save_profile(gc.load_example(name), tmp_path / f"{name}.json")
        PROFILE.validate(json.loads(path.read_text()))
    traces = tmp_path / "times.csv"
    assert main(["examples", "--traces", str(traces)]) == 0
    out = tmp_path / "profile.json"
    assert (
        main(["profile", "--traces", str(traces), "--deadline", "1.5", "--dim", "100", "-o", str(out)]) == 0
    )
    PROFILE.validate(json.loads(out.read_text()))
    PROFILE.validate({"straggler_probs": [0.1, 0.2], "dim": 3})  # hand-written, no format or version


GOOD = design_to_dict(
    gc.design(gc.ClusterProfile([0.1, 0.3, 0.5], dim=10), bits_per_worker=3, allocator="equal")
)
GOOD_BALANCED = design_to_dict(
    gc.design(gc.ClusterProfile([0.1, 0.3, 0.5], dim=10), bits_per_worker=3, quantization="balanced")
)


def _loader_refuses(data) -> bool:
    try:
        design_from_dict(copy.deepcopy(data))
    except Exception as exc:  # noqa: BLE001 - the property: only InputError
        check_refusal(exc)
        return True
    return False


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 400))
@given(data=mutated(GOOD) | mutated(GOOD_BALANCED))
def test_a_design_the_schema_refuses_is_refused_by_the_loader(data):
    if not DESIGN.is_valid(json.loads(json.dumps(data, allow_nan=True))):
        assert _loader_refuses(data), data


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 300))
@given(data=mutated(gc.load_example("toy-n8").to_dict()))
def test_a_profile_the_schema_refuses_is_refused_by_the_loader(data):
    if not PROFILE.is_valid(json.loads(json.dumps(data, allow_nan=True))):
        with pytest.raises(Exception) as exc:
            gc.ClusterProfile.from_dict(copy.deepcopy(data))
        check_refusal(exc.value)


def _edit(base, path, value):
    data = copy.deepcopy(base)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


REFUSED = {
    "a balanced model without c": _edit(GOOD_BALANCED, ("quantization", "c"), KeyError),
    "a field of another kind": _edit(GOOD, ("quantization", "c"), 1.0),
    "a raw model with kappa 2": _edit(GOOD, ("quantization", "kappa"), 2.0),
    "bits above 32": _edit(GOOD, ("bits", 0), 40),
    "a typo in a field": _edit(GOOD, ("partiton",), 3),
    "a bool for a number": _edit(GOOD, ("profile", "dim"), True),
    "a string for the budget": _edit(GOOD, ("budget",), "9"),
    "a probability above 1": _edit(GOOD, ("profile", "straggler_probs", 0), 1.5),
    "repeated names": _edit(GOOD, ("profile", "names"), ["a", "a", "b"]),
    "bucket_size 0": _edit(GOOD, ("bucket_size",), 0),
    "allow_idle as a string": _edit(GOOD, ("options", "allow_idle"), "false"),
    "an unknown kind": _edit(GOOD, ("quantization", "kind"), "fancy"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_red_team_cases_are_refused_by_both(case):
    data = REFUSED[case]
    assert not DESIGN.is_valid(data), case
    assert _loader_refuses(data), case
