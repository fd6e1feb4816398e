"""The CLI's usage errors (exit code 2), shared by the argument and path layers."""

from __future__ import annotations

import argparse

from .._validate import InputError


class UsageError(InputError):
    """Bad command-line usage (exit code 2)."""


class ArgumentValueError(argparse.ArgumentTypeError, UsageError):
    """A refused option value: the message names the option (argparse ``type=`` or later)."""


__all__ = [
    "ArgumentValueError",
    "UsageError",
]
