"""Is the deployment package built for the Python that runs it? Checked once, when the function starts.

A ZIP built for python3.12 and deployed on the python3.13 runtime (or for arm64 and deployed on
x86_64) imports heicconv fine and fails at the first conversion with an ``ImportError`` from
``PIL._imaging``. The compiled modules' file names say what they were built for
(``_imaging.cpython-312-x86_64-linux-gnu.so``), so the mismatch can be named before anything
is imported: this module only lists folders.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import platform
import re
import sys

__all__ = ["build_mismatch"]

#: The compiled modules the default backend loads: (package, module); "" is a top-level module.
COMPILED: tuple[tuple[str, str], ...] = (("PIL", "_imaging"), ("", "_pillow_heif"))

_TAG = re.compile(r"\.cpython-(\d)(\d+)-(\w+?)-linux-gnu\.so$")


def build_mismatch(compiled: tuple[tuple[str, str], ...] = COMPILED) -> str | None:
    """Why the compiled modules found first on ``sys.path`` cannot load in this Python, or ``None``.

    >>> build_mismatch() is None
    True
    """
    loadable = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s != ".so")
    for package, module in compiled:
        unloadable: list[str] = []
        for folder in _folders(package):
            built = sorted(name for name in _listdir(folder) if name.startswith(module + ".") and name.endswith(".so"))
            if any(name.endswith(loadable) for name in built):
                break  # the copy Python imports (it skips folders whose copies it cannot load)
            unloadable += [os.path.join(folder, name) for name in built]
        else:
            if unloadable:
                return _explain(unloadable[0])
    return None


def _folders(package: str) -> list[str]:
    """Where Python would look for the module, in order."""
    if not package:
        return [p or "." for p in sys.path]
    try:
        spec = importlib.util.find_spec(package)  # locates the package without running it
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec else []


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _explain(path: str) -> str:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    machine = platform.machine()
    match = _TAG.search(path)
    if match is None:
        built_for, fix = "another Python or platform", f"python docker/build_lambda_zip.py --python {running}"
    else:
        major, minor, arch = match.groups()
        built_for = f"Python {major}.{minor} on {arch}"
        lambda_arch = "arm64" if machine == "aarch64" else machine
        fix = f"rebuild it with python docker/build_lambda_zip.py --python {running} --arch {lambda_arch}" + (
            f", or set the function's runtime to python{major}.{minor}" if arch == machine else ""
        )
    return (
        f"the deployment package was built for {built_for} ({path}), but this function runs Python {running} on "
        f"{machine}, which cannot load it; {fix}"
    )
