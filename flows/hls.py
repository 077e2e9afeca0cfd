"""C simulation of the HLS kernels in ``hls/`` (g++ against the Apache-2.0
``ap_types`` headers that the ``hls4ml`` wheel ships; no Vitis needed).

:func:`csim_model` turns a FINN dataflow graph of RTL ops (one node or a
whole ``hw.onnx``) into one C++ program: each node becomes a call of its
kernel (``hls/mvau.hpp``, ``hls/stream_ops.hpp``,
``hls/binary_attention.hpp``; table below), each tensor an
``hls::stream`` of the producer's beat width, with a width converter
(``xnorvit::dwc``) where the consumer's beat is wider or narrower (as the
stitcher inserts ``stream_dwc``), weights, thresholds and tables as
constant arrays. The nodes run in graph order over all frames (C
simulation: unbounded streams); the graph inputs are read and the graph
outputs written as hex beats, one per line. Programs are compiled once per
content hash (cached under ``rtl_tests/sim_build/hls/``). Beats are packed
with :func:`xnorvit.flows.driver.pack_beats`, the packing every other
simulation uses.

==============================  ==================================
FINN op (``_rtl``)              kernel
==============================  ==================================
MVAU_xnor, MVAU_int (MVAU)      ``xnorvit::mvau``
Thresholding, ThresholdTable    ``xnorvit::thresholding``
ResidualAdd                     ``xnorvit::residual_add``
PosAdd                          ``xnorvit::pos_add``
TokenPool                       ``xnorvit::token_pool``
DuplicateStreams                ``xnorvit::duplicate_streams``
FMPadding                       ``xnorvit::fmpadding``
ConvolutionInputGenerator       ``xnorvit::swg`` (not depthwise)
BinaryAttention                 ``xnorvit::binary_attention`` (elastic: ``binary_attention_elastic``)
TokenInsert                     ``xnorvit::token_insert``
TokenSelect                     ``xnorvit::token_select``
==============================  ==================================

The HLS kernels are the second backend of the same ops; their reference is
each op's ``execute_node`` (tests/test_hls.py compares C simulation with it
and with the RTL on the same data, per kernel and for a whole network).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from xnorvit.flows.driver import pack_beats, unpack_beats

__all__ = ["to_hls", "CSimMismatch", "HLSError", "HLS_DIR", "KERNELS", "ap_types_dir", "csim_build", "csim_images", "csim_model", "csim_node", "node_model"]

HLS_DIR = Path(__file__).resolve().parent.parent / "hls"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "rtl_tests" / "sim_build" / "hls"


class HLSError(RuntimeError):
    """C simulation cannot run (no g++, no ap_types headers) or failed (names the log)."""


def ap_types_dir() -> Path:
    """Directory of ``ap_int.h``/``hls_stream.h`` (from the hls4ml wheel, not imported).

    Raises:
        HLSError: hls4ml is not installed.
    """
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise HLSError("the hls4ml package (its ap_types headers) is not installed: run `make install`")
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (d / "ap_int.h").is_file():
        raise HLSError(f"ap_types headers not found in {d}")
    return d


def _hex(v: int) -> str:
    return format(int(v), "x")


def _c_array(a: np.ndarray) -> str:
    if a.ndim == 1:
        return "{" + ", ".join(str(int(v)) for v in a) + "}"
    return "{" + ", ".join(_c_array(r) for r in a) + "}"


def _build(source: str, cache_dir: Path) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        raise HLSError("g++ not found: C simulation needs a C++ compiler")
    inc = ap_types_dir()
    h = hashlib.sha256(source.encode())
    for hpp in sorted(HLS_DIR.glob("*.hpp")):
        h.update(hpp.read_bytes())
    h.update(str(inc).encode())
    d = Path(cache_dir) / h.hexdigest()[:16]
    exe = d / "csim"
    if exe.is_file():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.cpp").write_text(source)
    cmd = [gxx, "-std=c++14", "-O1", "-DAP_INT_MAX_W=4096", "-w", f"-I{HLS_DIR}", f"-I{inc}", "main.cpp", "-o", "csim.tmp"]
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=600)
    (d / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    if r.returncode != 0:
        raise HLSError(f"g++ failed on the C simulation of {d}; see {d / 'build.log'}")
    os.replace(d / "csim.tmp", exe)
    return exe


# ----------------------------------------------------------------- whole graphs
def _dt(inst, kind: str, i: int = 0):
    return inst.get_input_datatype(i) if kind == "in" else inst.get_output_datatype(i)


def _elem(dt) -> tuple[int, bool]:
    """(lane bits, signed) of a FINN datatype on a stream (BIPOLAR: one unsigned bit)."""
    from qonnx.core.datatype import DataType

    if dt == DataType["BIPOLAR"]:
        return 1, False
    return dt.bitwidth(), bool(dt.signed())


def _b(v: bool) -> str:
    return "true" if v else "false"


def _thresholds(arr, rows: int) -> np.ndarray:
    """Integer thresholds (x >= t  <=>  x >= ceil(t) for integer x), int64-safe."""
    t = np.ceil(np.asarray(arr, dtype=np.float64))
    t = np.clip(t, -(2 ** 62), 2 ** 62).astype(np.int64)
    return t.reshape(rows, -1)


def _mvau_call(name, inst, model, node, ins, outs, consts):
    from qonnx.core.datatype import DataType

    g = inst.get_nodeattr
    idt, wdt, odt = DataType[g("inputDataType")], DataType[g("weightDataType")], DataType[g("outputDataType")]
    if odt == DataType["BIPOLAR"]:
        raise HLSError(f"{node.name}: bipolar MVAU outputs are not supported by hls/mvau.hpp")
    mw, mh = g("MW"), g("MH")
    w = np.rint(np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)).astype(np.int64).reshape(mw, mh)
    xnor = bool(g("binaryXnorMode")) or (idt == DataType["BIPOLAR"] and wdt == DataType["BIPOLAR"])
    if wdt == DataType["BIPOLAR"]:
        w = (w + 1) // 2
    w_bits = wdt.bitwidth()
    thr = None if g("noActivation") else model.get_initializer(node.input[2])
    t = np.zeros((mh, 1), np.int64) if thr is None else np.broadcast_to(
        _thresholds(thr, np.asarray(thr).shape[0]), (mh, np.asarray(thr).shape[-1]))
    nt = 0 if thr is None else t.shape[1]
    in_bits, in_signed = _elem(idt)
    out_bits, out_signed = _elem(odt)
    consts.append(f"static const ap_uint<{w_bits}> W_{name}[{mh}][{mw}] = {_c_array(w.T & ((1 << w_bits) - 1))};")
    consts.append(f"static const int T_{name}[{mh}][{max(nt, 1)}] = {_c_array(t)};")
    vectors = int(np.prod(g("numInputVectors")))
    return (f"xnorvit::mvau<{mw}, {mh}, {g('PE')}, {g('SIMD')}, {_b(xnor)}, {in_bits}, {_b(in_signed)}, {w_bits}, "
            f"{_b(wdt.signed() and wdt != DataType['BIPOLAR'])}, {_b(wdt == DataType['BIPOLAR'] and not xnor)}, {nt}, "
            f"{int(g('ActVal')) if nt else 0}, {out_bits}, {_b(out_signed)}>({ins[0]}, {outs[0]}, W_{name}, T_{name}, "
            f"FRAMES * {vectors});")


def _threshold_call(name, inst, model, node, ins, outs, consts):
    g = inst.get_nodeattr
    c, pe = g("NumChannels"), g("PE")
    thr = np.asarray(model.get_initializer(node.input[1]))
    rows = thr.shape[0]
    if rows not in (1, c):
        raise HLSError(f"{node.name}: {rows} threshold rows for {c} channels")
    t = _thresholds(thr, rows)
    in_bits, in_signed = _elem(_dt(inst, "in"))
    out_bits, _ = _elem(_dt(inst, "out"))
    consts.append(f"static const long long T_{name}[{rows}][{t.shape[1]}] = {_c_array(t)};")
    vectors = int(np.prod(g("numInputVectors")))
    return (f"xnorvit::thresholding<{c}, {pe}, {in_bits}, {_b(in_signed)}, {rows}, {t.shape[1]}, {int(g('ActVal'))}, "
            f"{out_bits}>({ins[0]}, {outs[0]}, T_{name}, FRAMES * {vectors});")


def _beats_per_frame(inst, i: int = 0) -> int:
    return int(np.prod(inst.get_folded_input_shape(i)[:-1]))


def _residual_call(name, inst, model, node, ins, outs, consts):
    (aw, asg), (bw, bsg) = _elem(_dt(inst, "in", 0)), _elem(_dt(inst, "in", 1))
    ow, _ = _elem(_dt(inst, "out"))
    return (f"xnorvit::residual_add<{inst.get_nodeattr('PE')}, {aw}, {_b(asg)}, {bw}, {_b(bsg)}, {ow}>({ins[0]}, "
            f"{ins[1]}, {outs[0]}, FRAMES * {_beats_per_frame(inst)});")


def _tokens_channels(inst) -> tuple[int, int, int]:
    nv = list(inst.get_nodeattr("numInputVectors"))
    return int(nv[-1]), int(inst.get_nodeattr("NumChannels")), int(np.prod(nv[:-1]))


def _pos_call(name, inst, model, node, ins, outs, consts):
    t, c, per = _tokens_channels(inst)
    table = np.rint(np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)).astype(np.int64).reshape(t, c)
    iw, isg = _elem(_dt(inst, "in"))
    ow, _ = _elem(_dt(inst, "out"))
    consts.append(f"static const long long E_{name}[{t}][{c}] = {_c_array(table)};")
    return (f"xnorvit::pos_add<{t}, {c}, {inst.get_nodeattr('PE')}, {iw}, {_b(isg)}, {ow}>({ins[0]}, {outs[0]}, "
            f"E_{name}, FRAMES * {per});")


def _pool_call(name, inst, model, node, ins, outs, consts):
    t, c, per = _tokens_channels(inst)
    iw, isg = _elem(_dt(inst, "in"))
    ow, _ = _elem(_dt(inst, "out"))
    return (f"xnorvit::token_pool<{t}, {c}, {inst.get_nodeattr('PE')}, {iw}, {_b(isg)}, {ow}>({ins[0]}, {outs[0]}, "
            f"FRAMES * {per});")


def _fork_call(name, inst, model, node, ins, outs, consts):
    n = len(node.output)
    return (f"xnorvit::duplicate_streams<{n}, {inst.get_instream_width(0)}>({ins[0]}, {outs[0].split('[')[0]}, "
            f"FRAMES * {_beats_per_frame(inst)});")


def _fmpad_call(name, inst, model, node, ins, outs, consts):
    g = inst.get_nodeattr
    (h, w), (pt, pl, pb, pr) = g("ImgDim"), g("Padding")
    bits, _ = _elem(_dt(inst, "in"))
    return (f"xnorvit::fmpadding<{h}, {w}, {g('NumChannels')}, {g('SIMD')}, {bits}, {pt}, {pl}, {pb}, {pr}>({ins[0]}, "
            f"{outs[0]}, FRAMES);")


def _swg_call(name, inst, model, node, ins, outs, consts):
    g = inst.get_nodeattr
    if g("depthwise"):
        raise HLSError(f"{node.name}: depthwise sliding windows are not in hls/stream_ops.hpp")
    par = bool(g("parallel_window"))
    if par and g("SIMD") != g("IFMChannels"):
        raise HLSError(f"{node.name}: a parallel window needs SIMD = IFMChannels")
    (ih, iw), (kh, kw), (sh, sw), (dh, dw), (oh, ow) = g("IFMDim"), g("ConvKernelDim"), g("Stride"), g("Dilation"), g("OFMDim")
    bits, _ = _elem(_dt(inst, "in"))
    return (f"xnorvit::swg<{ih}, {iw}, {g('IFMChannels')}, {g('SIMD')}, {bits}, {kh}, {kw}, {sh}, {sw}, {dh}, {dw}, "
            f"{oh}, {ow}, {_b(par)}>({ins[0]}, {outs[0]}, FRAMES);")


def _attention_call(name, inst, model, node, ins, outs, consts):
    t, c, per = _tokens_channels(inst)
    ow, _ = _elem(_dt(inst, "out"))
    g = inst.get_nodeattr
    if inst.elastic() is not None:
        _, tbl, emax = inst.elastic_constants()
        consts.append(f"static const long long TBL_{name}[{len(tbl)}] = {_c_array(np.asarray(tbl, np.int64))};")
        consts.append(f"static const long long EMAX_{name}[{len(emax)}] = {_c_array(np.asarray(emax, np.int64))};")
        return (f"xnorvit::binary_attention_elastic<{t}, {c}, {g('heads')}, {ow}>({ins[0]}, {ins[1]}, {ins[2]}, "
                f"{outs[0]}, TBL_{name}, EMAX_{name}, FRAMES * {per});")
    return (f"xnorvit::binary_attention<{t}, {c}, {g('heads')}, {g('c_int')}, {ow}>({ins[0]}, {ins[1]}, {ins[2]}, "
            f"{outs[0]}, FRAMES * {per});")


def _insert_call(name, inst, model, node, ins, outs, consts):
    t, c, per = _tokens_channels(inst)
    w, _ = _elem(_dt(inst, "in"))
    consts.append(f"static const long long K_{name}[{inst.const_tokens()}][{c}] = {_c_array(inst.get_constants(model))};")
    return (f"xnorvit::token_insert<{t}, {inst.const_tokens()}, {c}, {inst.get_nodeattr('PE')}, {w}>({ins[0]}, "
            f"{outs[0]}, K_{name}, FRAMES * {per});")


def _select_call(name, inst, model, node, ins, outs, consts):
    t, c, per = _tokens_channels(inst)
    w, _ = _elem(_dt(inst, "in"))
    return (f"xnorvit::token_select<{t}, {c}, {inst.get_nodeattr('PE')}, {w}, {inst.index()}>({ins[0]}, {outs[0]}, "
            f"FRAMES * {per});")


#: FINN op type (without ``_rtl``/``_hls``) -> emitter of its kernel call.
KERNELS = {"MVAU": _mvau_call, "MVAU_xnor": _mvau_call, "MVAU_int": _mvau_call, "Thresholding": _threshold_call,
           "ThresholdTable": _threshold_call,
           "ResidualAdd": _residual_call, "PosAdd": _pos_call, "TokenPool": _pool_call,
           "DuplicateStreams": _fork_call, "FMPadding": _fmpad_call, "ConvolutionInputGenerator": _swg_call,
           "BinaryAttention": _attention_call, "TokenInsert": _insert_call, "TokenSelect": _select_call}

_PROGRAM = r"""// generated by xnorvit.flows.hls: C simulation of graph %(graph)s
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include "mvau.hpp"
#include "stream_ops.hpp"
#include "binary_attention.hpp"

%(consts)s

template <int N> static bool read_beats(const char *path, hls::stream<ap_uint<N> > &s) {
    std::ifstream f(path);
    if (!f) return false;
    std::string line;
    while (std::getline(f, line))
        if (!line.empty()) s.write(ap_uint<N>(line.c_str(), 16));
    return true;
}

template <int N> static void write_beats(std::ostream &o, hls::stream<ap_uint<N> > &s) {
    while (!s.empty()) {
        const ap_uint<N> v = s.read();
        std::string h;
        for (int i = (N + 3) / 4 - 1; i >= 0; i--) {
            unsigned d = 0;
            for (int b = 0; b < 4; b++) if (i * 4 + b < N && v[i * 4 + b]) d |= 1u << b;
            h += "0123456789abcdef"[d];
        }
        o << h << "\n";
    }
}

int main(int argc, char **argv) {
    if (argc != %(argc)d) { std::cerr << "usage: csim FRAMES %(usage)s\n"; return 2; }
    const unsigned FRAMES = std::atoi(argv[1]);
%(streams)s
%(reads)s
%(calls)s
%(writes)s
    int left = 0;
%(checks)s
    return left ? 1 : 0;
}
"""


def _kernel_of(node) -> str:
    op = node.op_type
    for suffix in ("_rtl", "_hls"):
        if op.endswith(suffix):
            op = op[: -len(suffix)]
    if op not in KERNELS:
        raise HLSError(f"node {node.name}: no HLS kernel for op {node.op_type} (have: {', '.join(sorted(KERNELS))})")
    return op


def _program(model) -> tuple[str, list[tuple], list[tuple]]:
    """C++ source of ``model``; ``(source, inputs, outputs)`` with per graph
    input ``(name, lanes, bits)`` and per graph output ``(name, lanes, bits, signed, folded shape)``."""
    from xnorvit.flows.stitch import _custom, _streamed_inputs

    producer = {t: (n, j) for n in model.graph.node for j, t in enumerate(n.output)}
    gins = [i.name for i in model.graph.input]
    consts, streams, calls, reads, checks = [], [], [], [], []
    declared: dict[str, int] = {}  # stream variable -> width

    def var(tensor: str) -> str:
        return "s_" + "".join(ch if ch.isalnum() else "_" for ch in tensor)

    def declare(v: str, width: int, label: str) -> None:
        if v in declared:
            return
        declared[v] = width
        streams.append(f'    hls::stream<ap_uint<{width}> > {v}("{label}");')
        checks.append(f'    if (!{v}.empty()) {{ std::cerr << "beats left in stream {label}\\n"; left++; }}')

    inputs, fork_outs = [], {}
    for n in model.graph.node:
        _kernel_of(n)
        inst = _custom(n)
        for j, t in enumerate(n.output):
            w = inst.get_outstream_width(j)
            if n.op_type.startswith("DuplicateStreams"):
                arr = var(n.name) + "_out"
                if arr not in declared:
                    declared[arr] = w
                    streams.append(f"    hls::stream<ap_uint<{w}> > {arr}[{len(n.output)}];")
                    for k in range(len(n.output)):
                        checks.append(f'    if (!{arr}[{k}].empty()) {{ std::cerr << "beats left in {n.name} out{k}\\n"; left++; }}')
                fork_outs[t] = f"{arr}[{j}]"
            else:
                declare(var(t), w, t)

    def src(t: str) -> tuple[str, int]:
        if t in fork_outs:
            pn, j = producer[t]
            return fork_outs[t], _custom(pn).get_outstream_width(j)
        return var(t), declared[var(t)]

    for n in model.graph.node:
        inst = _custom(n)
        ins = []
        for i in _streamed_inputs(model, n):
            t, w = n.input[i], inst.get_instream_width(i)
            if t in gins:
                declare(var(t), w, t)
                reads.append(f'    if (!read_beats(argv[{2 + len(inputs)}], {var(t)})) {{ std::cerr << "cannot read {t}\\n"; return 2; }}')
                inputs.append((t, int(inst.get_folded_input_shape(i)[-1]), _elem(inst.get_input_datatype(i))[0]))
                ins.append(var(t))
                continue
            if t not in producer:
                raise HLSError(f"input {t} of {n.name} has no producer")
            s, sw = src(t)
            if sw != w:  # width converter, as the stitcher inserts stream_dwc
                pn, j = producer[t]
                beats = int(np.prod(_custom(pn).get_folded_output_shape(j)[:-1]))
                cv = var(t) + f"_dwc{w}"
                declare(cv, w, f"{t} (DWC {sw}->{w})")
                calls.append(f"    xnorvit::dwc<{sw}, {w}>({s}, {cv}, FRAMES * {beats});")
                s = cv
            ins.append(s)
        outs = [fork_outs.get(t, var(t)) for t in n.output]
        name = "".join(ch if ch.isalnum() else "_" for ch in n.name)
        calls.append("    " + KERNELS[_kernel_of(n)](name, inst, model, n, ins, outs, consts))
    outputs, writes = [], []
    for k, o in enumerate(model.graph.output):
        if o.name not in producer:
            raise HLSError(f"graph output {o.name} has no producer")
        pn, j = producer[o.name]
        pinst = _custom(pn)
        bits, signed = _elem(pinst.get_output_datatype(j))
        outputs.append((o.name, int(pinst.get_folded_output_shape(j)[-1]), bits, signed, pinst.get_output_datatype(j)))
        s, _ = src(o.name)
        arg = 2 + len(inputs) + k
        writes.append(f"    {{ std::ofstream f(argv[{arg}]); write_beats(f, {s}); }}")
    usage = " ".join([f"IN_{t}" for t, *_ in inputs] + [f"OUT_{o[0]}" for o in outputs])
    source = _PROGRAM % {"graph": model.graph.name, "consts": "\n".join(consts), "streams": "\n".join(streams),
                         "reads": "\n".join(reads), "calls": "\n".join(calls), "writes": "\n".join(writes),
                         "checks": "\n".join(checks), "argc": 2 + len(inputs) + len(outputs), "usage": usage}
    return source, inputs, outputs


def csim_model(model, inputs: dict[str, np.ndarray], cache_dir: os.PathLike | str = DEFAULT_CACHE) -> dict[str, np.ndarray]:
    """C simulation of a dataflow graph of FINN RTL ops (see the module table).

    Args:
        model: qonnx ``ModelWrapper`` of ``*_rtl`` nodes with their folding
            attributes (a single node or a whole ``hw.onnx``).
        inputs: graph input name -> values of its normal shape ``(N, ...)``;
            several frames are stacked on axis 0 (``(frames * N, ...)``);
            FINN datatypes: integers, BIPOLAR as -1/+1.

    Returns:
        graph output name -> int64 values, ``(frames * N, *normal shape[1:])``
        (BIPOLAR outputs as -1/+1).

    Raises:
        HLSError: an op without HLS kernel (names the node), a missing input,
            g++/headers missing, a compile failure (names the log), or a
            program that failed or left beats in a stream.
    """
    import tempfile

    from qonnx.core.datatype import DataType

    source, ins, outs = _program(model)
    exe = _build(source, Path(cache_dir))
    frames = None
    with tempfile.TemporaryDirectory(prefix="xnorvit-csim-") as tmp:
        args = []
        for name, lanes, bits in ins:
            if name not in inputs:
                raise HLSError(f"no values for graph input {name}")
            x = np.asarray(inputs[name])
            shape = model.get_tensor_shape(name)
            per = int(np.prod(shape))
            if x.size % per:
                raise HLSError(f"input {name}: {x.size} values are no whole number of frames of shape {shape}")
            frames = x.size // per if frames is None else frames
            if model.get_tensor_datatype(name) == DataType["BIPOLAR"]:
                x = (np.asarray(x) + 1) // 2
            f = Path(tmp) / f"in{len(args)}.hex"
            f.write_text("".join(_hex(b) + "\n" for b in pack_beats(x, lanes, bits)))
            args.append(str(f))
        outfiles = [str(Path(tmp) / f"out{k}.hex") for k in range(len(outs))]
        r = subprocess.run([str(exe), str(frames or 1), *args, *outfiles], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise HLSError(f"C simulation {exe} failed: {r.stderr.strip()[:300]}")
        result = {}
        for (name, lanes, bits, signed, dt), f in zip(outs, outfiles):
            beats = [int(v, 16) for v in Path(f).read_text().split()]
            y = unpack_beats(beats, lanes, bits, signed)
            if dt == DataType["BIPOLAR"]:
                y = 2 * y - 1
            shape = model.get_tensor_shape(name)
            result[name] = y.reshape(-1, *shape[1:])
    return result


def node_model(model, node):
    """One-node graph of ``node`` (its streamed inputs as graph inputs, its
    initializers and datatypes kept), for :func:`csim_model`."""
    import copy

    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows.stitch import _streamed_inputs

    m = ModelWrapper(copy.deepcopy(model.model))
    keep = [n for n in m.graph.node if n.name == node.name]
    if len(keep) != 1:
        raise HLSError(f"node {node.name} not found (once) in the graph")
    n = keep[0]
    vi = lambda t: helper.make_tensor_value_info(t, 1, m.get_tensor_shape(t))  # noqa: E731
    graph = helper.make_graph([n], f"node_{node.name}", [vi(n.input[i]) for i in _streamed_inputs(m, n)],
                              [vi(t) for t in n.output],
                              [i for i in m.graph.initializer if i.name in n.input])
    out = ModelWrapper(helper.make_model(graph))
    for t in list(n.input) + list(n.output):
        if t:
            out.set_tensor_datatype(t, m.get_tensor_datatype(t))
    return out


def csim_node(model, node, x, cache_dir: os.PathLike | str = DEFAULT_CACHE):
    """C simulation of one node of ``model`` (any op of the module table).

    Args:
        x: values of the node's streamed input (an array) or of each streamed
            input (a list, in port order), normal shapes, frames on axis 0.

    Returns:
        the node's output values (an array; a list for several outputs).

    Raises:
        HLSError: as :func:`csim_model`.
    """
    m = node_model(model, node)
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    names = [i.name for i in m.graph.input]
    if len(xs) != len(names):
        raise HLSError(f"{node.name} has {len(names)} streamed inputs, got {len(xs)} arrays")
    y = csim_model(m, dict(zip(names, xs)), cache_dir)
    outs = [y[o.name] for o in m.graph.output]
    return outs[0] if len(outs) == 1 else outs


def csim_images(model, images: np.ndarray, cache_dir: os.PathLike | str = DEFAULT_CACHE) -> np.ndarray:
    """Whole-network C simulation on uint8 images, fed as verification feeds
    the accelerator (raw pixels, channels-last where the graph says so; see
    :func:`xnorvit.flows.compile.execute`).

    Args:
        model: a hardware graph (``BUILD/hw.onnx``) with integer input
            (metadata ``xnorvit_input`` = ``"uint8"``).
        images: ``(N, C, H, W)`` uint8.

    Returns:
        ``(N, classes)`` int64 graph outputs (the integer logits).

    Raises:
        HLSError: the graph does not take raw pixels, or as :func:`csim_model`.
    """
    if model.get_metadata_prop("xnorvit_input") != "uint8":
        raise HLSError("the graph does not take raw uint8 pixels (no IntegerInput); pass a hardware graph (hw.onnx)")
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise HLSError(f"images must be (N, C, H, W) uint8, got {x.dtype} {x.shape}")
    if model.get_metadata_prop("xnorvit_input_layout") == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    gin, gout = model.graph.input[0].name, model.graph.output[0].name
    y = csim_model(model, {gin: x.astype(np.int64)}, cache_dir)[gout]
    return y.reshape(len(images), -1)


class CSimMismatch(HLSError):
    """The C simulation of a build gave logits that differ from PyTorch (names the images)."""


def csim_build(build: os.PathLike | str, images: int = 100, log=None) -> dict:
    """``xnorvit csim``: check ``BUILD/manifest.json``, C-simulate ``images``
    real test images through the HLS kernels of ``BUILD/rtl/hw_stitched.onnx``
    (weights, thresholds and tables from the graph's initializers) and compare
    the logits with the run's PyTorch model bit for bit. Writes
    ``BUILD/report/csim.json`` (images, bit-exact count, accuracy, the C++
    program's directory under ``BUILD/sim/hls/``, wall seconds of compile+run).

    Raises:
        FileNotFoundError: not a build.
        ManifestError: files differ from the manifest.
        HLSError: as :func:`csim_model`; :class:`CSimMismatch` when logits differ.
    """
    import json
    import time

    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows.manifest import check_manifest
    from xnorvit.flows.verify import _run_meta
    from xnorvit.model.data import load_dataset, to_float

    log = log or (lambda s: None)
    build = Path(build).resolve()
    for f in ("compile.json", "rtl/hw_stitched.onnx"):
        if not (build / f).is_file():
            raise FileNotFoundError(f"{build}/{f} missing: not a hardware build; run `xnorvit build RUN --out {build}` first")
    check_manifest(build)
    _, torch_model, dataset = _run_meta(build)
    d = load_dataset(dataset)
    n = min(images, len(d.x_test))
    x, y = d.x_test[:n], d.y_test[:n]
    model = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx"))
    log(f"C simulation of {len(model.graph.node)} HLS kernels on {n} real {dataset} test images")
    t0 = time.monotonic()
    cache = build / "sim" / "hls"  # BUILD/sim: outside the manifest
    source, _, _ = _program(model)
    program = _build(source, cache).parent
    logits = csim_images(model, x, cache)
    wall = time.monotonic() - t0
    with torch.no_grad():
        ref = torch_model.integer_logits(to_float(x)).numpy()
    exact = np.all(logits == ref, axis=1)
    rep = {"images": int(n), "images_bit_exact": int(exact.sum()), "csim_accuracy": float(np.mean(logits.argmax(1) == y)),
           "program": str(program), "wall_s": round(wall, 2), "dataset": dataset}
    (build / "report").mkdir(exist_ok=True)
    (build / "report" / "csim.json").write_text(json.dumps(rep, indent=1) + "\n")
    if not exact.all():
        bad = np.flatnonzero(~exact)
        raise CSimMismatch(f"C simulation differs from PyTorch on {len(bad)} of {n} images (first: test image "
                           f"{int(bad[0])}); see {build / 'report' / 'csim.json'}")
    return rep


def to_hls(model, exec_mode: str = "cppsim"):
    """Turn every ``*_rtl`` node of a hardware graph into its ``*_hls`` variant
    (:mod:`xnorvit.flows.ops.hls`; ``MVAU_xnor_rtl``/``MVAU_int_rtl`` ->
    ``MVAU_hls``, ``ThresholdTable_rtl`` -> ``Thresholding_hls``: the same
    MultiThreshold), keeping the attributes the variant declares, with
    ``exec_mode`` set on every node (finn-plus's ``SetExecMode`` only visits
    the ``finn.custom_op.fpgadataflow.*`` domains); returns a new
    ``ModelWrapper``. Under ``"cppsim"`` FINN's ``execute_onnx`` runs each
    node's C simulation; ``""`` runs the ops' python semantics.

    Raises:
        HLSError: a node without an HLS variant (named).
    """
    import copy

    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows.ops import hls as hls_ops

    m = ModelWrapper(copy.deepcopy(model.model))
    for k, node in enumerate(list(m.graph.node)):
        base = node.op_type[:-4] if node.op_type.endswith(("_rtl", "_hls")) else node.op_type
        target = {"MVAU_xnor": "MVAU_hls", "MVAU_int": "MVAU_hls", "ThresholdTable": "Thresholding_hls"}.get(base, f"{base}_hls")
        if target not in hls_ops.custom_op:
            raise HLSError(f"node {node.name}: no HLS variant of {node.op_type} (have: {', '.join(sorted(hls_ops.custom_op))})")
        new = helper.make_node(target, node.input, node.output, domain=hls_ops.DOMAIN, name=node.name)
        new.attribute.extend(node.attribute)
        known = hls_ops.custom_op[target](new).get_nodeattr_types()
        del new.attribute[:]
        new.attribute.extend(a for a in node.attribute if a.name in known and a.name != "exec_mode")
        new.attribute.append(helper.make_attribute("exec_mode", exec_mode))
        m.graph.node.insert(k, new)
        m.graph.node.remove(node)
    return m
