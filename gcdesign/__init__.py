"""gcdesign: unbiased, quantized approximate gradient codes for heterogeneous clusters.

The one-call pipeline is :func:`design`; see the user guide in docs/.
Heavy dependencies (cvxpy, ortools, numba kernels, matplotlib) load lazily.
The public API (docs/ and ARCHITECTURE's list) is exported here; the building
blocks (construction layouts, registries, kernels) stay in their modules.
"""

from ._validate import InputError
from .allocation import ALLOCATORS, Allocation, allocate_bits, allocate_table, utility_table
from .design import Design, DesignError, design
from .evaluation import expected_error, synthetic_gradients
from .io import load_design, save_design
from .montecarlo import monte_carlo_error
from .profile import ClusterProfile, list_examples, load_example, load_profile, save_profile
from .quantization import (
    QuantizationModel,
    calibrate_quantization,
    delta_raw,
    quantization_variance,
    quantize,
)
from .schemes import Scheme, make_scheme
from .structure import Structure, optimal_structure, utilities
from .training import History, train

__version__ = "0.1.0"

__all__ = [
    "ALLOCATORS",
    "Allocation",
    "ClusterProfile",
    "Design",
    "DesignError",
    "History",
    "InputError",
    "QuantizationModel",
    "Scheme",
    "Structure",
    "allocate_bits",
    "allocate_table",
    "calibrate_quantization",
    "delta_raw",
    "design",
    "expected_error",
    "list_examples",
    "load_design",
    "load_example",
    "load_profile",
    "make_scheme",
    "monte_carlo_error",
    "optimal_structure",
    "quantization_variance",
    "quantize",
    "save_design",
    "save_profile",
    "synthetic_gradients",
    "train",
    "utilities",
    "utility_table",
]
