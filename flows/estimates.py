"""Resource and cycle estimates of a hardware graph (per layer and total).

Every layer's figures come from its op's own estimation functions (FINN's
``lut_estimation``/``bram_estimation``/``dsp_estimation``/``get_exp_cycles``);
the MVAU kernels' models are here, fitted to the Yosys xc7 synthesis of
``rtl/mvau_xnor.sv`` (``benchmarks/results/kernels.json``, written by
``benchmarks/kernels.py``), not copied from FINN's HLS model:

    LUT = 40.3 + 1.88 * L*lane_cost + 8.68 * PE + 0.88 * SIMD
          + L * (0.51 * log2(words) - 1.58)      [XNOR weights in LUT-ROM]
          + L * W_W * ceil(words / 64)           [integer weights in LUT-ROM]
          + PE*N_THRESH*ceil((ACC_W+1)/2)        [comparators, N_THRESH > 1 only: a
                                                  single threshold is folded into
                                                  the accumulator]
    FF  = 43.2 + 0.016 * L*lane_cost + 13.3 * PE + 1.30 * SIMD (+ L * W_W weight
          registers for integer MVAUs)
    BRAM18 = best RAMB18 aspect ratio for the (MH/PE)*(MW/SIMD) x PE*SIMD*W_W ROM
             when it has more than 128 words (RAM_STYLE auto), else 0

with ``L = PE*SIMD`` lanes and ``words = (MH/PE)*(MW/SIMD)``
(:func:`mvau_lut_features`; least squares of the relative error over the 84
``fit_rows`` of ``benchmarks/results/kernels.json``: 64x64, 64x128 and
128x64, 14 foldings from PE=64/SIMD=1 to PE=1/SIMD=64 and up to
PE*SIMD=1024, weights in LUT-ROM and in block RAM, N_THRESH=1; mean error
6 %, largest 20 %, bounded by ``tests/test_to_hw.py``). The PE term matters: the folding tries every PE/SIMD
pair, and a model with lanes only priced PE=64, SIMD=1 like PE=SIMD=8,
though each PE carries its own popcount adder, accumulator and output
lane. ``lane_cost`` is 1 for XNOR lanes, ``1.11 * IN_W`` for
bipolar-weight integer lanes, ``0.45 * (IN_W + W_W)`` for multiplier
lanes whose products go to DSP48s (one DSP per lane, :func:`mvau_dsps`),
``0.81 * IN_W * (W_W + 2)`` for shift-add multipliers in LUTs
(``USE_DSP=0``) and ``0.94 * (IN_W + W_W)`` with two products per DSP
(``dspPack``); these four factors solve the formula for single Yosys
runs of mvau_int MW=16 MH=8 PE=2 SIMD=4 IN_W=4 (raw output): W_W=1: 136
LUT; W_W=8: 207 LUT + 8 DSP with DSPs, 611 LUT + 0 DSP without, 295 LUT
+ 4 DSP packed. The integer ROM and comparator terms are structural, not
fitted.

The stitched design adds one FIFO per stream and a width converter where the
producer's and the consumer's stream widths differ (:mod:`xnorvit.flows.stitch`);
:func:`stitch_estimates` prices them with structural models checked against
Yosys xc7 runs of the two cores (``benchmarks/streams.py`` ->
``benchmarks/results/streams.md``, measured vs modelled):

    FIFO, distributed (depth < BLOCK_FIFO_MIN_DEPTH):
        LUT = 15 + 4 * ceil(W/6) * ceil(depth/32)  [RAM32M: 32 x 6 bits in 4 LUTs]
    FIFO, block RAM: LUT = 30 + 3 * ceil(log2(depth+1)), RAMB18 = best aspect of depth x W
    width converter, integer down-ratio K = PI/PO (rtl/stream_dwc_down.sv):
        LUT = 4 + PO * (1 if K <= 4 else 0.47 K - 0.7)   (a K:1 mux per output bit)
        FF = PI + clog2(K) + 1
    width converter, other ratios (finn-rtllib vpc, N = lcm(PI, PO) bits):
        wide -> narrow: LUT = 1.1 * N   (a shift register: a 2:1 mux per bit)
        narrow -> wide: LUT = 6 + N/16
        FF = N + 10 either way

Before the FIFOs are sized by simulation their depths are guessed: a skip
stream from a fork to a join (the residual around an attention block, whose
output starts only after the whole frame is in) holds one frame, every other
stream :data:`~xnorvit.flows.stitch.MIN_DEPTH` entries.
"""

from __future__ import annotations

import math

from xnorvit.flows import finn_env
from xnorvit.flows.boards import Board

__all__ = ["stitch_estimates", "fifo_resources", "dwc_resources", "stream_resources", "guess_depth", "LUT_FIT", "FF_FIT", "mvau_lut_features", "mvau_luts", "mvau_ffs", "mvau_dsps", "mvau_bram18", "rom_bram18", "layer_estimates",
           "estimate", "RESOURCES", "binary_macs", "lut_per_mac_cycle"]

#: (constant, per PE*SIMD lane, per PE, per SIMD, per LUT-ROM XNOR lane, per
#: LUT-ROM XNOR lane and address bit) of the MVAU LUT model, the coefficients
#: of :func:`mvau_lut_features`
LUT_FIT = (40.3345, 1.8845, 8.675, 0.8777, -1.583, 0.5112)
#: (constant, per PE*SIMD lane, per PE, per SIMD) of the MVAU FF model
FF_FIT = (43.1655, 0.0161, 13.2628, 1.2954)
#: resources reported per layer and in total
RESOURCES = ("lut", "ff", "bram36", "dsp")

_ROM_LUT_WORDS = 128


def rom_bram18(words: int, width: int) -> int:
    """RAMB18 blocks of a ``words x width`` ROM at the best aspect ratio."""
    from xnorvit.flows.ops.stream import bram18_count

    return bram18_count(words, width)


def _mvau_geometry(op):
    mw, mh, pe, simd = (op.get_nodeattr(k) for k in ("MW", "MH", "PE", "SIMD"))
    w_bits = 1 if op.kernel == "mvau_xnor" else op.weight_bits()
    words = (mh // pe) * (mw // simd)
    if op.kernel == "mvau_xnor":
        lane = 1.0
    else:
        from qonnx.core.datatype import DataType

        in_bits = DataType[op.get_nodeattr("inputDataType")].bitwidth()
        if w_bits == 1:
            lane = 1.11 * in_bits  # add/subtract
        elif op.dsp_pack():
            lane = 0.94 * (in_bits + w_bits)  # + field split and borrow per product
        elif op.use_dsp():
            lane = 0.45 * (in_bits + w_bits)  # products on DSP48s, adder tree in LUTs
        else:
            lane = 0.81 * in_bits * (w_bits + 2)  # shift-add partial products in LUTs
    return mw, mh, pe, simd, w_bits, words, lane


def mvau_dsps(op) -> int:
    """DSP48 estimate: one per PE*SIMD lane of an integer MVAU with multi-bit
    weights (Yosys maps each ``x * w`` to a DSP48E1: 8 DSPs measured for
    PE=2, SIMD=4, IN_W=4, W_W=8), half that with ``dspPack``, none for XNOR,
    bipolar-weight or LUT (``resType=lut``) lanes."""
    if op.kernel == "mvau_xnor" or not op.use_dsp():
        return 0
    lanes = op.get_nodeattr("PE") * op.get_nodeattr("SIMD")
    return lanes // 2 if op.dsp_pack() else lanes


def _rom_in_luts(op, words: int) -> bool:
    style = op.ram_style()
    return style == "distributed" or (style == "auto" and words <= _ROM_LUT_WORDS)


def mvau_lut_features(pe: int, simd: int, words: int, xnor_lut_rom: bool) -> list[float]:
    """Features of the MVAU LUT model (:data:`LUT_FIT`; the first four are
    those of the FF model, :data:`FF_FIT`): ``[1, L, PE, SIMD, L*r,
    L*r*log2(words)]`` with ``L = PE*SIMD`` lanes and ``r`` = 1 when the
    XNOR weights are a LUT ROM (read through a registered address, so each
    lane's XNOR is a LUT of the address bits and the activation bit: one
    LUT6 up to 32 words, more above), else 0. PE prices the per-channel
    popcount adder, accumulator and output lane, SIMD the input buffer."""
    lanes = float(pe * simd)
    rom = 1.0 if xnor_lut_rom else 0.0
    return [1.0, lanes, float(pe), float(simd), lanes * rom, lanes * rom * math.log2(max(words, 1))]


def mvau_luts(op) -> int:
    """LUT estimate of an ``MVAU_xnor_rtl``/``MVAU_int_rtl`` node (see module doc)."""
    _, _, pe, simd, w_bits, words, lane = _mvau_geometry(op)
    lut_rom = _rom_in_luts(op, words)
    f = mvau_lut_features(pe, simd, words, lut_rom and op.kernel == "mvau_xnor")
    f[1] *= lane  # an integer lane costs lane_cost XNOR lanes
    luts = sum(c * v for c, v in zip(LUT_FIT, f))
    if lut_rom and op.kernel != "mvau_xnor":
        # integer weights: data-registered LUT ROM, one LUT6 per bit per 64 words
        luts += pe * simd * w_bits * math.ceil(words / 64)
    if not op.get_nodeattr("noActivation"):
        n = _n_thresholds(op)
        if n > 1:  # one threshold is folded into the accumulator (rtl/mvau_core.sv)
            luts += pe * n * math.ceil((op.acc_bits() + 1) / 2)
    return int(round(luts))


def mvau_ffs(op) -> int:
    """Flip-flop estimate of an MVAU kernel node (see module doc)."""
    _, _, pe, simd, w_bits, _, lane = _mvau_geometry(op)
    ffs = FF_FIT[0] + FF_FIT[1] * pe * simd * lane + FF_FIT[2] * pe + FF_FIT[3] * simd
    if op.kernel != "mvau_xnor":
        ffs += pe * simd * w_bits  # integer weights: data register after the ROM
    return int(round(ffs))


def mvau_bram18(op) -> int:
    """RAMB18 estimate of an MVAU kernel node: the weight ROM when it is in block RAM."""
    mw, mh, pe, simd, w_bits, words, _ = _mvau_geometry(op)
    if _rom_in_luts(op, words):
        return 0
    return rom_bram18(words, pe * simd * w_bits)


def _n_thresholds(op) -> int:
    from qonnx.core.datatype import DataType

    # fused threshold count: the output is a count of N = 2^bits - 1 levels at most
    odt = DataType[op.get_nodeattr("outputDataType")]
    return max(1, (1 << odt.bitwidth()) - 1) if odt.bitwidth() > 1 else 1


def _ff(inst) -> int | None:
    fn = getattr(inst, "ff_estimation", None)
    return int(fn()) if fn is not None else None


def binary_macs(inst) -> int:
    """1-bit multiply-accumulates one frame costs a hardware node (0 for a
    node that computes none), counted as :func:`xnorvit.model.zoo.complexity.count_ops`
    counts them on the PyTorch model:

    - XNOR MVAU (``binaryXnorMode=1``): ``MW * MH`` per input vector,
      ``prod(numInputVectors)`` vectors;
    - binary attention: ``Q.K^T`` and ``P.V``, ``T * T * D`` each per head,
      so ``2 * T * T * C`` (``C = heads * D``).

    Multi-bit MVAUs (the 8-bit stem, patch projection and classifier) count
    none. Raises :class:`ValueError` for an attention node without its
    hardware attributes (:meth:`BinaryAttention.geometry`).
    """
    name = inst.onnx_node.op_type
    if name.startswith("BinaryAttention"):
        t, c, _, _ = inst.geometry()
        return 2 * t * t * c
    try:
        xnor = bool(inst.get_nodeattr("binaryXnorMode"))
    except AttributeError:  # qonnx: the op has no such attribute
        return 0
    if not xnor:
        return 0
    return int(inst.get_nodeattr("MW")) * int(inst.get_nodeattr("MH")) * math.prod(inst.get_nodeattr("numInputVectors"))


def layer_estimates(model, board: Board) -> list[dict]:
    """Per node: ``name``, ``op_type``, ``cycles`` (per frame, ``get_exp_cycles``),
    ``lut``, ``ff`` (None where the op has no FF model), ``bram36`` (RAMB18/2),
    ``dsp``, ``uram``, ``binary_macs`` (per frame, :func:`binary_macs`) and
    the folding attributes present (PE, SIMD, PAR_T, PAR_D)."""
    finn_env.setup()
    from qonnx.custom_op.registry import getCustomOp

    rows = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        row = {"name": node.name, "op_type": node.op_type, "cycles": int(inst.get_exp_cycles()),
               "lut": int(round(inst.lut_estimation(board.part))), "ff": _ff(inst),
               "bram36": float(inst.bram_estimation(board.part)) / 2, "dsp": int(inst.dsp_estimation(board.part)),
               "uram": int(inst.uram_estimation(board.part)), "binary_macs": binary_macs(inst)}
        for k in ("PE", "SIMD", "PAR_T", "PAR_D", "parallel_window"):
            try:
                row[k] = int(inst.get_nodeattr(k))
            except (AttributeError, KeyError, Exception):
                pass
        rows.append(row)
    return rows


def fifo_resources(depth: int, width: int) -> dict:
    """LUT/FF/BRAM36 of one ``rtl/stream_fifo`` of ``depth`` x ``width`` bits
    (block RAM from :data:`~xnorvit.flows.stitch.BLOCK_FIFO_MIN_DEPTH` entries,
    as the stitcher instantiates it); model in the module docstring."""
    from xnorvit.flows.ops.stream import bram18_count
    from xnorvit.flows.stitch import BLOCK_FIFO_MIN_DEPTH

    cw = max(1, int(depth).bit_length())
    if depth >= BLOCK_FIFO_MIN_DEPTH:
        return {"lut": 30 + 3 * cw, "ff": 2 * width + 4 * cw, "bram36": bram18_count(depth, width) / 2}
    lut = 15 + 4 * math.ceil(width / 6) * math.ceil(depth / 32)
    return {"lut": lut, "ff": 3 * cw + 1, "bram36": 0.0}


def dwc_resources(src_bits: int, dst_bits: int) -> dict:
    """LUT/FF of the width converter the stitcher puts between ``src_bits``
    and ``dst_bits`` per beat (zero when they are equal): for an integer
    down-ratio ``K = src/dst`` ``rtl/stream_dwc_down.sv`` (a K:1 mux per
    output bit: one LUT up to K = 4, else ``0.47 K - 0.7``; ``src + clog2(K)
    + 1`` FF; fitted to Yosys of 448->7, 448->56, 256->8, 224->7, 64->8,
    576->192, 128->64, within 2 %: ``benchmarks/streams.py``), else
    finn-rtllib's ``vpc`` (model in the module docstring)."""
    if src_bits == dst_bits:
        return {"lut": 0, "ff": 0, "bram36": 0.0}
    if src_bits > dst_bits and src_bits % dst_bits == 0:
        k = src_bits // dst_bits
        per_bit = 1.0 if k <= 4 else 0.47 * k - 0.7
        return {"lut": int(round(4 + dst_bits * per_bit)), "ff": src_bits + (k - 1).bit_length() + 1, "bram36": 0.0}
    n = math.lcm(src_bits, dst_bits)
    lut = 1.1 * n if src_bits > dst_bits else 6 + n / 16
    return {"lut": int(round(lut)), "ff": n + 10, "bram36": 0.0}


def guess_depth(skip: bool, frame_beats: int) -> int:
    """FIFO depth (entries) of a stream before simulation sizes it: a whole
    frame (``frame_beats`` beats at the consumer's width, at least
    :data:`~xnorvit.flows.stitch.MIN_DEPTH`) on a residual skip (``skip``),
    else ``MIN_DEPTH``; the guess of the module docstring."""
    from xnorvit.flows.stitch import MIN_DEPTH

    return max(MIN_DEPTH, int(frame_beats)) if skip else MIN_DEPTH


def stream_resources(depth: int, src_bits: int, dst_bits: int) -> dict:
    """LUT/FF/BRAM36 of one stitched stream: its FIFO of ``depth`` x
    ``dst_bits`` (:func:`fifo_resources`) plus the width converter from
    ``src_bits`` (:func:`dwc_resources`); the price both the estimate
    (:func:`stitch_estimates`) and the folding search charge for a stream."""
    f, d = fifo_resources(depth, dst_bits), dwc_resources(src_bits, dst_bits)
    return {"lut": f["lut"] + d["lut"], "ff": f["ff"] + d["ff"], "bram36": f["bram36"]}


def _skip_edges(model, edges) -> set[int]:
    """Indices of the streams from a DuplicateStreams to a join (a node with
    two streamed inputs), i.e. residual skips."""
    from xnorvit.flows.stitch import _streamed_inputs

    by_name = {n.name: n for n in model.graph.node}
    skips = set()
    for e in edges:
        if e.src is None or e.dst is None:
            continue
        src, dst = by_name[e.src], by_name[e.dst]
        if src.op_type.startswith("DuplicateStreams") and len(_streamed_inputs(model, dst)) > 1:
            skips.add(e.index)
    return skips


def stitch_estimates(model, depths: dict[int, int] | None = None) -> list[dict]:
    """Rows for the stitched design's FIFOs and width converters.

    Args:
        model: specialized, folded hardware graph (every node an ``*_rtl`` op).
        depths: FIFO depth per stream index (measured, e.g. ``fifo.json``);
            missing streams get the guess of the module docstring.

    Returns:
        one row per stream, ``{"name": "e<k>:<tensor>", "op_type": "StreamFIFO"
        (+ "+DWC"), "depth", "block_ram", "lut", "ff", "bram36", "dsp": 0,
        "cycles": 0}``.

    Raises:
        xnorvit.flows.stitch.StitchError: the graph cannot be stitched.
    """
    from xnorvit.flows.stitch import BLOCK_FIFO_MIN_DEPTH, edges_of

    edges = edges_of(model)
    skips = _skip_edges(model, edges)
    rows = []
    for e in edges:
        depth = (depths or {}).get(e.index)
        if depth is None:
            depth = guess_depth(e.index in skips, e.dst_beats)
        s = stream_resources(depth, e.src_bits, e.dst_bits)
        rows.append({"name": f"{e.name}:{e.tensor}", "op_type": "StreamFIFO" + ("+DWC" if e.dwc else ""),
                     "depth": int(depth), "block_ram": depth >= BLOCK_FIFO_MIN_DEPTH,
                     "lut": int(s["lut"]), "ff": int(s["ff"]),
                     "bram36": float(s["bram36"]), "dsp": 0, "uram": 0, "cycles": 0})
    return rows


def estimate(model, board: Board, fclk_mhz: float = 100.0, depths: dict[int, int] | None = None) -> dict:
    """Whole-graph estimate.

    Returns:
        ``{"board", "part", "fclk_mhz", "layers": [...], "total": {lut, ff,
        bram36, dsp, uram}, "util": {resource: fraction of the board},
        "ii_cycles", "bottleneck", "fps", "latency_cycles_estimate"}``;
        ``ii_cycles`` is the slowest layer's cycles per frame (the pipeline's
        initiation interval), ``fps = fclk / ii``; the latency estimate is the
        sum of the layers' cycles (an upper bound of a pipeline that does not
        overlap layers within a frame). ``binary_macs`` sums the layers'
        1-bit MACs per frame; ``lut_per_binary_mac_per_cycle`` is the figure
        of merit of a binary accelerator, ``LUT / (binary_macs / ii_cycles)``
        (binary MACs per frame x frames/s / fclk = MACs per cycle). ``ff`` totals only the layers with an
        FF model (``ff_layers_modelled`` counts them). ``stitch`` holds the
        FIFO and width-converter rows (:func:`stitch_estimates`, ``depths``
        as there) and ``stitch_total`` their sum; ``total`` and ``util``
        include them.
    """
    layers = layer_estimates(model, board)
    stitch = stitch_estimates(model, depths)
    total = {r: 0.0 for r in ("lut", "ff", "bram36", "dsp", "uram")}
    stitch_total = {r: (float(sum(row[r] for row in stitch)) if r == "bram36" else int(sum(row[r] for row in stitch)))
                    for r in ("lut", "ff", "bram36", "dsp", "uram")}
    ff_known = 0
    for row in layers + stitch:
        for r in total:
            if row[r] is not None:
                total[r] += row[r]
        ff_known += row["ff"] is not None
    total = {k: (int(v) if k != "bram36" else float(v)) for k, v in total.items()}
    util = {r: (total[r] / board.capacity(r) if board.capacity(r) else 0.0) for r in ("lut", "ff", "bram36", "dsp", "uram")}
    slow = max(layers, key=lambda r: r["cycles"]) if layers else {"name": None, "cycles": 0}
    ii = int(slow["cycles"])
    macs = int(sum(r["binary_macs"] for r in layers))
    return {"board": board.name, "part": board.part, "fclk_mhz": float(fclk_mhz), "layers": layers, "total": total,
            "ff_layers_modelled": ff_known - len(stitch), "util": util, "stitch": stitch,
            "stitch_total": stitch_total, "ii_cycles": ii, "bottleneck": slow["name"],
            "fps": (fclk_mhz * 1e6 / ii) if ii else None,
            "latency_cycles_estimate": int(sum(r["cycles"] for r in layers)), "binary_macs": macs,
            "lut_per_binary_mac_per_cycle": lut_per_mac_cycle(total["lut"], macs, ii)}


def lut_per_mac_cycle(lut: float | None, macs_per_frame: int | None, ii_cycles: float | None) -> float | None:
    """Figure of merit of a binary accelerator: LUTs per binary MAC per clock
    cycle, ``lut / (macs_per_frame / ii_cycles)`` (issue #14; lower is
    better). None when any input is missing or zero."""
    if not lut or not macs_per_frame or not ii_cycles:
        return None
    return float(lut) * float(ii_cycles) / float(macs_per_frame)
