"""The one place that knows finn-plus's assumptions about a Vivado installation.

finn-plus 1.6.1 expects to be started through its own CLI with AMD tools on the
machine. Its python side (QONNX import, transformations, HW conversion,
folding, resource/cycle estimates, node execution, RTL code generation of its
RTL layers) works without them once a few shims are in place. :func:`setup`
installs those shims; every xnorvit module that imports ``finn`` calls it
first::

    from xnorvit.flows import finn_env
    finn_env.setup()
    from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU

What does *not* work without AMD tools (and is not attempted here): the
``finn`` CLI, ``finn deps``, cppsim, rtlsim (XSI), stitched IP, bitfiles.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

#: Vivado version put into the dummy ``XILINX_VIVADO`` path; finn-plus parses
#: ``20YY.[12]`` out of that path (``finn.xsi``, ``finn.util.basic``).
DUMMY_VIVADO_VERSION = "2024.2"

#: Environment variable that overrides the FINN build directory.
BUILD_DIR_ENV = "XNORVIT_FINN_BUILD_DIR"

_done = False


def finn_package_dir() -> Path:
    """Directory of the installed ``finn`` package (without importing it).

    Raises:
        RuntimeError: finn-plus is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("finn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("finn-plus is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def finn_rtllib() -> Path:
    """Path of ``finn-rtllib`` inside the finn-plus wheel (HDL sources)."""
    return finn_package_dir() / "finn-rtllib"


def default_build_dir() -> Path:
    """FINN build directory: ``$XNORVIT_FINN_BUILD_DIR`` or ``<tmp>/xnorvit-finn-build-<uid>``."""
    if os.environ.get(BUILD_DIR_ENV):
        return Path(os.environ[BUILD_DIR_ENV])
    return Path(tempfile.gettempdir()) / f"xnorvit-finn-build-{os.getuid()}"


def setup(build_dir: os.PathLike | str | None = None) -> Path:
    """Make finn-plus's python side usable without AMD tools (idempotent).

    Sets, unless already set: ``XILINX_VIVADO`` (a dummy directory whose path
    carries a Vivado version), ``FINN_BUILD_DIR`` (created), ``FINN_RTLLIB``
    and ``FINN_CUSTOM_HLS`` (inside the installed wheel); then calls
    ``finn.util.settings.initialize_dummy_settings()`` and sets
    ``finn.xsi.SimEngine = None`` so that importing ``finn.builder`` and the
    custom ops does not try to build or load the XSI simulator.

    Args:
        build_dir: FINN build directory; default :func:`default_build_dir`.
            Ignored when ``FINN_BUILD_DIR`` is already set.

    Returns:
        The FINN build directory in use.

    Raises:
        RuntimeError: finn-plus is not installed.
    """
    global _done
    pkg = finn_package_dir()
    if not os.environ.get("FINN_BUILD_DIR"):
        os.environ["FINN_BUILD_DIR"] = str(Path(build_dir) if build_dir else default_build_dir())
    bdir = Path(os.environ["FINN_BUILD_DIR"])
    bdir.mkdir(parents=True, exist_ok=True)
    if _done:
        return bdir
    if not os.environ.get("XILINX_VIVADO"):
        dummy = bdir / "dummy_xilinx" / "Vivado" / DUMMY_VIVADO_VERSION
        dummy.mkdir(parents=True, exist_ok=True)
        os.environ["XILINX_VIVADO"] = str(dummy)
    os.environ.setdefault("FINN_RTLLIB", str(pkg / "finn-rtllib"))
    os.environ.setdefault("FINN_CUSTOM_HLS", str(pkg / "custom_hls"))
    os.environ.setdefault("FINN_ROOT", str(pkg))

    import finn.util.settings

    # Settings resolve relative paths against the working directory; run the
    # initialisation from inside the build dir so nothing lands in the cwd.
    cwd = os.getcwd()
    try:
        os.chdir(bdir)
        finn.util.settings.initialize_dummy_settings()
    finally:
        os.chdir(cwd)
    import finn.xsi

    finn.xsi.SimEngine = None  # no XSI without Vivado; finn.builder imports it
    _done = True
    return bdir


def is_setup() -> bool:
    """True once :func:`setup` has run in this process."""
    return _done and "finn.util.settings" in sys.modules
