"""``njit``: numba's compiler, with gcdesign's kernels cached in the user's cache folder.

numba's ``cache=True`` writes the compiled kernels (``*.nbi`` index, ``*.nbc`` code) into
the ``__pycache__`` folder beside the source when it can write there, which for a regular
install is ``site-packages/gcdesign/**/__pycache__``. pip does not record those files, so
a later ``pip uninstall`` (or the switch to an editable install that ``pip install -e``
makes) leaves a ``site-packages/gcdesign/`` folder holding only cache files, and Python
then imports it as an empty namespace package (numba issue 9312): every ``gcdesign``
command fails with ``cannot import name '__version__'``.

This module gives each kernel a numba ``FunctionCache`` whose locators are numba's own
``NUMBA_CACHE_DIR`` locator (when the user set that variable) and its user-wide locator
(``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``, one subfolder per source folder), never
the in-tree one. Only gcdesign's kernels are affected: no environment variable and no
global numba setting is changed, so other libraries cache where they always did. Where
neither folder is writable the kernels compile in memory each run (numba's ``NullCache``).
The cache is invalidated as numba's always is (the source file's stamp, the function's
bytecode, numba's version) and also by any edit to a kernel module of the package: a kernel
calls kernels of other modules (the shared rounding routine of :mod:`gcdesign._rounding`,
the uniforms of :mod:`gcdesign._mc_kernels`), which numba's own key does not follow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
from numba.core import caching


def _locator(*names):
    for name in names:  # numba >= 0.61 dropped the leading underscore of these classes
        cls = getattr(caching, name, None)
        if cls is not None:
            return cls
    raise ImportError(f"numba.core.caching has none of {names}")


class _UserCacheImpl(caching.CompileResultCacheImpl):
    """numba's cache of compile results, located only outside the installed package."""

    _locator_classes = [
        _locator("UserProvidedCacheLocator", "_UserProvidedCacheLocator"),
        _locator("UserWideCacheLocator", "_UserWideCacheLocator"),
    ]


_STAMP: list[str] = []


def kernel_sources_stamp() -> str:
    """SHA-256 of every module of the package that compiles kernels (read once per process)."""
    if not _STAMP:
        digest = hashlib.sha256()
        root = Path(__file__).parent
        for path in sorted(root.rglob("*.py")):
            text = path.read_bytes()
            if b"_jit import njit" in text:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + text)
        _STAMP.append(digest.hexdigest())
    return _STAMP[0]


class _UserFunctionCache(caching.FunctionCache):
    _impl_class = _UserCacheImpl

    def _index_key(self, sig, codegen):
        # numba keys on the kernel's own bytecode; the kernels it calls live in other modules
        return (*super()._index_key(sig, codegen), kernel_sources_stamp())


def njit(*, cache: bool = True, **options):
    """``numba.njit(**options)`` with the compiled code cached in the user's cache folder.

    Use it as ``@njit(nogil=True)``; ``cache=False`` compiles in memory each run.
    """

    def decorate(func):
        dispatcher = numba.njit(**options)(func)
        if not cache:
            return dispatcher
        try:
            dispatcher._cache = _UserFunctionCache(dispatcher.py_func)
        except RuntimeError:  # no writable cache folder: compile in memory, as without cache
            pass
        return dispatcher

    return decorate
