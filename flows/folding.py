"""Folding: PE/SIMD (and attention parallelism) per layer for a target frame rate.

FINN's rule (``SetFolding``): each layer gets the least parallelism whose
cycles per frame reach the target initiation interval
``II = fclk / target_fps`` cycles, so the pipeline is balanced at the target
and no layer spends more than it needs. Parallelism must divide the
dimension it folds:

==============================  ======================================
op                              attributes (each divides)
==============================  ======================================
MVAU_xnor_rtl, MVAU_int_rtl     PE | MH, SIMD | MW
Thresholding_rtl                PE | NumChannels
ThresholdTable_rtl              PE | NumChannels (+ tables in block RAM or LUT-ROM)
FMPadding_rtl                   SIMD | NumChannels
ConvolutionInputGenerator_rtl   SIMD | IFMChannels (+ parallel_window when SIMD = IFMChannels)
DuplicateStreams_rtl            PE | NumChannels
PosAdd_rtl, ResidualAdd_rtl     PE | NumChannels
TokenPool_rtl, TokenInsert_rtl  PE | NumChannels
TokenSelect_rtl                 PE | NumChannels
BinaryAttention_rtl             PAR_T | tokens, PAR_D | channels per head
==============================  ======================================

The folding is a JSON in FINN's format (``{"Defaults": {}, "<node>":
{"PE": 4, "SIMD": 16}, ...}``, read by qonnx's ``ApplyConfig``) that can be
written, edited and read back (:func:`save_folding`, :func:`load_folding`).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from xnorvit.flows import finn_env
from xnorvit.flows.boards import Board

__all__ = ["FoldingError", "FOLDING_ATTRS", "fold", "folding_config", "save_folding", "load_folding",
           "apply_folding", "check_folding", "check_resources", "divisors"]

#: default fraction of the board a design may use
MAX_UTIL = 0.7


class FoldingError(ValueError):
    """A folding that breaks divisibility, misses the target or exceeds the board."""


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n``, ascending."""
    return [d for d in range(1, int(n) + 1) if n % d == 0]


def _dims(node, inst) -> dict[str, int]:
    """Folding attribute -> the dimension it must divide, for this node."""
    op = node.op_type
    if op.startswith("MVAU"):
        return {"PE": inst.get_nodeattr("MH"), "SIMD": inst.get_nodeattr("MW")}
    if op.startswith("FMPadding"):
        return {"SIMD": inst.get_nodeattr("NumChannels")}
    if op.startswith("ConvolutionInputGenerator"):
        return {"SIMD": inst.get_nodeattr("IFMChannels")}
    if op.startswith("BinaryAttention"):
        t = inst.get_normal_input_shape(0)[-2]
        d = inst.get_normal_input_shape(0)[-1] // inst.get_nodeattr("heads")
        return {"PAR_T": t, "PAR_D": d}
    try:
        return {"PE": inst.get_nodeattr("NumChannels")}
    except Exception:
        return {}


#: folding attributes written to the JSON (when the node has them)
FOLDING_ATTRS = ("PE", "SIMD", "PAR_T", "PAR_D", "parallel_window", "ram_style", "resType", "dspPack",
                 "depth_trigger_bram", "depth_trigger_uram")


def _candidates(node, inst):
    dims = _dims(node, inst)
    keys = list(dims)
    combos = []
    for vals in itertools.product(*(divisors(dims[k]) for k in keys)):
        cand = dict(zip(keys, vals))
        if node.op_type.startswith("ConvolutionInputGenerator"):
            combos.append(dict(cand, parallel_window=0))
            if cand["SIMD"] == dims["SIMD"]:
                combos.append(dict(cand, parallel_window=1))
        elif node.op_type.startswith("MVAU"):
            mv = [dict(cand, ram_style=s) for s in ("auto", "block")]
            if node.op_type == "MVAU_int_rtl" and inst.weight_bits() > 1:
                mv = ([dict(c, resType="lut", dspPack=0) for c in mv] + [dict(c, resType="dsp", dspPack=0) for c in mv]
                      + [dict(c, resType="dsp", dspPack=1) for c in mv if c["PE"] % 2 == 0])
            combos += mv
        elif node.op_type.startswith("Thresholding"):
            combos += [dict(cand, **_THRESHOLD_MEMORY[s]) for s in _THRESHOLD_MEMORY]
        elif node.op_type == "ThresholdTable_rtl":
            combos += [dict(cand, ram_style=s) for s in ("block", "distributed")]
        else:
            combos.append(cand)
    return combos


#: Thresholding_rtl memory options: finn-plus's default (LUTRAM where it
#: fits) or block RAM for the binary-search stages of at least d entries
#: (URAM trigger out of reach: xc7 has none)
_THRESHOLD_MEMORY = {"auto": {"depth_trigger_bram": 0, "depth_trigger_uram": 0}}
_THRESHOLD_MEMORY.update({f"block>={d}": {"depth_trigger_bram": d, "depth_trigger_uram": 1 << 30}
                          for d in (1, 256, 1024, 4096)})


_RES = ("lut", "bram36", "dsp")


def _resources(inst, part: str) -> tuple[float, float, float]:
    """(LUT, BRAM36, DSP) estimate of a node at its current attributes."""
    return (float(inst.lut_estimation(part)), inst.bram_estimation(part) / 2, float(inst.dsp_estimation(part)))


def _board_or_default(board: Board | None) -> Board:
    from xnorvit.flows.boards import get_board

    return board or get_board("pynq-z2")


def _cost(res: tuple[float, float, float], board: Board) -> float:
    """Fraction of the board (LUT + BRAM36 + DSP) a node's estimate takes."""
    return sum(r / max(board.capacity(k), 1) for r, k in zip(res, _RES))


#: Yosys (synth_xilinx -family xc7) LUTs of a stitched design per estimated
#: LUT, measured by benchmarks/flow.py on pynq-z2: 27,946 / 25,731 = 1.086
#: for bivit-t at 30,000 frames/s (benchmarks/results/flow.json) and
#: 32,136 / 31,534 = 1.019 for its binary-stem variant at 41,000
#: (flow_bstem.json); with the requantizer tables but before the
#: slice-mux width converters the same script gave 1.119 at 20,000 and
#: 1.149 at 30,000, the margin kept. (Before the tables, finn-plus's
#: Thresholding_rtl LUT model undershot Yosys 5x on the 255-level
#: requantizers: 36,811 / 26,763 = 1.375.) The folding keeps the estimated
#: LUTs within ``max_util / YOSYS_LUTS_PER_ESTIMATED_LUT`` so the
#: synthesized design stays within ``max_util``.
YOSYS_LUTS_PER_ESTIMATED_LUT = 1.15


def _limits(max_util: float) -> dict[str, float]:
    """Usable fraction of the estimate per resource: ``max_util`` of the BRAM
    and of the LUTs as Yosys counts them (:data:`YOSYS_LUTS_PER_ESTIMATED_LUT`)
    (room for routing and the shell), every DSP slice (hard blocks, no
    routing pressure of their own)."""
    return {"lut": max_util / YOSYS_LUTS_PER_ESTIMATED_LUT, "bram36": max_util, "dsp": 1.0}


def _rebalance(chosen: list, options: list, board: Board, max_util: float = MAX_UTIL,
               streams: "_Streams | None" = None) -> None:
    """Greedy: switch nodes between their implementation options (memory
    style, DSP or LUT multipliers, other parallelism) while that lowers
    sum((use/limit)^16) over LUT/BRAM36/DSP (a smooth maximum of the
    utilizations relative to their limits, :func:`_limits`). ``chosen[i]`` is an index into
    ``options[i]``, a list of ``(resources, attributes)``; changed in place.
    ``streams`` adds the stitched FIFOs and width converters, whose cost
    depends on the options of the nodes at both ends of each stream."""
    lim = _limits(max_util)
    cap = [max(board.capacity(k), 1) * lim[k] for k in _RES]
    tot = [sum(options[i][chosen[i]][0][r] for i in range(len(options))) for r in range(3)]
    if streams is not None:
        tot = [tot[r] + streams.total(chosen)[r] for r in range(3)]

    def score(t):
        # a smooth maximum: lowers the largest utilization, and can trade
        # between two resources that are both near it
        return sum((t[r] / cap[r]) ** 16 for r in range(3))

    def delta(i, j):
        cur, new = options[i][chosen[i]][0], options[i][j][0]
        d = [new[r] - cur[r] for r in range(3)]
        if streams is not None:
            ds = streams.delta(chosen, i, j)
            d = [d[r] + ds[r] for r in range(3)]
        return d

    for _ in range(20 * len(options) + 10):
        best = (score(tot), None, None, None)
        for i, opts in enumerate(options):
            for j in range(len(opts)):
                if j == chosen[i]:
                    continue
                d = delta(i, j)
                t = [tot[r] + d[r] for r in range(3)]
                sc = score(t)
                if sc < best[0] * (1 - 1e-9):
                    best = (sc, i, j, t)
        if best[1] is None:
            return
        tot = best[3]
        chosen[best[1]] = best[2]


class _Streams:
    """The stitched streams of a graph during folding: each stream's FIFO and
    width converter (:func:`~xnorvit.flows.estimates.stitch_estimates`'s
    models and depth guess) priced from the stream widths of the options
    chosen at its two ends.

    Args:
        model: the graph (all nodes ``*_rtl``) with some option applied.
        insts: the nodes that have options, in ``options`` order.
        options: per node, ``[(resources, attributes), ...]``.
    """

    def __init__(self, model, insts: list, options: list):
        from xnorvit.flows.estimates import _skip_edges
        from xnorvit.flows.stitch import _streamed_inputs, edges_of

        self.edges = edges_of(model)
        skips = _skip_edges(model, self.edges)
        self.index = {inst.onnx_node.name: k for k, inst in enumerate(insts)}
        # stream widths of every option: inputs by stream port, outputs by index
        self.in_w, self.out_w = [], []
        for inst, opts in zip(insts, options):
            keep = {a: inst.get_nodeattr(a) for a in opts[0][1]}
            ports = _streamed_inputs(model, inst.onnx_node)
            iw, ow = [], []
            for _, attrs in opts:
                _set(inst, attrs)
                iw.append([inst.get_instream_width(i) for i in ports])
                ow.append([inst.get_outstream_width(j) for j in range(len(inst.onnx_node.output))])
            _set(inst, keep)
            self.in_w.append(iw)
            self.out_w.append(ow)
        # per stream: total bits per frame, and whether it holds a frame (skip)
        self.frame_bits = [e.dst_bits * e.dst_beats for e in self.edges]
        self.skip = [e.index in skips for e in self.edges]
        self.incident: dict[int, list[int]] = {}
        for n, e in enumerate(self.edges):
            for name in {e.src, e.dst}:
                if name in self.index:
                    self.incident.setdefault(self.index[name], []).append(n)
        self._cache: dict = {}

    def _widths(self, n: int, chosen: list, override: tuple[int, int] | None = None) -> tuple[int, int]:
        e = self.edges[n]

        def pick(k):
            return override[1] if override is not None and override[0] == k else chosen[k]

        src, dst = self.index.get(e.src), self.index.get(e.dst)
        # a node without options keeps its width; the top's ports (None) take
        # the width of the node behind them: no converter
        sw = self.out_w[src][pick(src)][e.src_port] if src is not None else (e.src_bits if e.src else None)
        dw = self.in_w[dst][pick(dst)][e.dst_port] if dst is not None else (e.dst_bits if e.dst else None)
        if sw is None and dw is None:
            return e.src_bits, e.dst_bits
        return (dw if sw is None else sw), (sw if dw is None else dw)

    def _cost(self, n: int, sw: int, dw: int) -> tuple[float, float, float]:
        key = (n, sw, dw)
        if key not in self._cache:
            from xnorvit.flows.estimates import guess_depth, stream_resources

            s = stream_resources(guess_depth(self.skip[n], self.frame_bits[n] // dw), sw, dw)
            self._cache[key] = (float(s["lut"]), float(s["bram36"]), 0.0)
        return self._cache[key]

    def total(self, chosen: list) -> list[float]:
        """(LUT, BRAM36, DSP) of all streams under ``chosen``."""
        t = [0.0, 0.0, 0.0]
        for n in range(len(self.edges)):
            c = self._cost(n, *self._widths(n, chosen))
            t = [t[r] + c[r] for r in range(3)]
        return t

    def delta(self, chosen: list, k: int, j: int) -> list[float]:
        """Change of the streams' (LUT, BRAM36, DSP) when node ``k`` takes option ``j``."""
        d = [0.0, 0.0, 0.0]
        for n in self.incident.get(k, ()):
            new = self._cost(n, *self._widths(n, chosen, (k, j)))
            cur = self._cost(n, *self._widths(n, chosen))
            d = [d[r] + new[r] - cur[r] for r in range(3)]
        return d


def _parallelism(c: dict) -> int:
    p = 1
    for k, v in c.items():
        if k in ("PE", "SIMD", "PAR_T", "PAR_D"):
            p *= v
    return p * (16 if c.get("parallel_window") else 1)


def _set(inst, cand: dict) -> None:
    for k, v in cand.items():
        inst.set_nodeattr(k, v)


def fold(model, target_fps: float, fclk_mhz: float = 100.0, board: Board | None = None,
         max_util: float = MAX_UTIL):
    """Fold every layer for ``target_fps`` at ``fclk_mhz``; returns a new model.

    Every folding option of a node (PE/SIMD or PAR_T/PAR_D divisors, and the
    implementation options: MVAU weights in LUT-ROM or block RAM, integer
    MVAU products on DSP48s, two per DSP or in LUTs, threshold memories in
    LUTRAM or block RAM) whose ``get_exp_cycles()`` is at most
    ``II = floor(fclk_mhz * 1e6 / target_fps)`` is a candidate; each node
    starts at its cheapest candidate (least estimated share of the board, then
    least parallelism), then nodes are switched greedily between candidates
    while that lowers the largest utilization of LUT, BRAM36 and DSP relative
    to their limits, counting the stitched FIFOs and width converters of the
    current choice (:func:`~xnorvit.flows.estimates.stitch_estimates`) (``board``, or pynq-z2's resources when None). Unlike
    FINN's ``SetFolding`` (least parallelism per layer) this trades
    parallelism for memory: a wider fold can be cheaper where it moves a
    weight ROM from a wasteful shallow block RAM into LUTs or back.

    Raises:
        FoldingError: a layer cannot reach the II even fully parallel (names
            the slowest such layer, its best cycles and the frame rate it
            allows), or, with ``board``, the design needs more than
            ``max_util`` of the board's LUTs or BRAM (names the binding resource).
    """
    finn_env.setup()
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    if target_fps <= 0 or fclk_mhz <= 0:
        raise FoldingError(f"target fps and fclk must be positive, got {target_fps} fps at {fclk_mhz} MHz")
    m = ModelWrapper(copy.deepcopy(model.model))
    ii = int(fclk_mhz * 1e6 // target_fps)
    b = _board_or_default(board)
    part = b.part
    insts, options, chosen, too_slow = [], [], [], []
    for node in m.graph.node:
        inst = getCustomOp(node)
        cands = _candidates(node, inst)
        if not cands:
            continue
        scored = []
        for c in cands:
            _set(inst, c)
            res = _resources(inst, part)
            scored.append((_parallelism(c), _cost(res, b), int(inst.get_exp_cycles()), c, res))
        ok = [sc for sc in scored if sc[2] <= ii]
        if not ok:
            too_slow.append((min(sc[2] for sc in scored), node))
            continue
        ok.sort(key=lambda sc: (sc[1], sc[0]))
        insts.append(inst)
        options.append([(sc[4], sc[3]) for sc in ok])
        chosen.append(0)
    if too_slow:
        cycles, node = max(too_slow, key=lambda t: t[0])
        raise FoldingError(f"{node.name} ({node.op_type}) needs at least {cycles} cycles per frame fully parallel, "
                           f"above the II of {ii} cycles for {target_fps:g} fps at {fclk_mhz:g} MHz; the slowest "
                           f"layer allows at most {int(fclk_mhz * 1e6 // cycles):,} frames/s at this clock")
    for inst, opts, k in zip(insts, options, chosen):
        _set(inst, opts[k][1])
    # the stitched FIFOs and width converters depend on the folding of both
    # ends of each stream (e.g. a 448-bit attention output into a 7-bit
    # consumer needs a 448-bit shift register)
    _rebalance(chosen, options, b, max_util, _Streams(m, insts, options))
    for inst, opts, k in zip(insts, options, chosen):
        _set(inst, opts[k][1])
    if board is not None:
        check_resources(m, board, fclk_mhz, max_util)
    return m


def check_resources(model, board: Board, fclk_mhz: float = 100.0, max_util: float = MAX_UTIL) -> dict:
    """Estimate ``model`` (:func:`xnorvit.flows.estimates.estimate`) and check
    LUT and BRAM36 use against ``max_util`` of ``board`` (LUTs as Yosys
    counts them, :data:`YOSYS_LUTS_PER_ESTIMATED_LUT`) and DSP use against
    all of its DSP slices.

    Returns:
        the estimate.

    Raises:
        FoldingError: naming the binding resource (the most used of LUT/BRAM36/DSP).
    """
    from xnorvit.flows.estimates import estimate

    est = estimate(model, board, fclk_mhz)
    limits = _limits(max_util)
    worst = max(_RES, key=lambda r: est["util"][r] / limits[r])
    if est["util"][worst] > limits[worst]:
        label = {"lut": "LUT", "bram36": "BRAM36", "dsp": "DSP"}[worst]
        scale = YOSYS_LUTS_PER_ESTIMATED_LUT if worst == "lut" else 1.0
        after = f", about {100 * scale * est['util'][worst]:.0f}% after synthesis" if worst == "lut" else ""
        raise FoldingError(f"binding resource {label}: the folding needs {est['total'][worst]:g} {label} "
                           f"({100 * est['util'][worst]:.0f}% of {board.name}'s {board.capacity(worst)}{after}), above "
                           f"the {100 * limits[worst] * scale:.0f}% limit; lower --target-fps or choose a larger board")
    return est


def folding_config(model) -> dict:
    """FINN folding config of ``model``: ``{"Defaults": {}, node: {attr: value}}``."""
    finn_env.setup()
    from qonnx.custom_op.registry import getCustomOp

    cfg: dict = {"Defaults": {}}
    for node in model.graph.node:
        inst = getCustomOp(node)
        attrs = {}
        for k in FOLDING_ATTRS:
            try:
                attrs[k] = inst.get_nodeattr(k)
            except Exception:
                continue
        if attrs:
            cfg[node.name] = attrs
    return cfg


def save_folding(model, path: os.PathLike | str) -> Path:
    """Write :func:`folding_config` as JSON (indent 2)."""
    path = Path(path)
    path.write_text(json.dumps(folding_config(model), indent=2) + "\n")
    return path


def load_folding(path: os.PathLike | str) -> dict:
    """Read a FINN folding JSON.

    Raises:
        FoldingError: missing file, not JSON, or not a ``{node: {attr: value}}`` object.
    """
    path = Path(path)
    if not path.is_file():
        raise FoldingError(f"no folding file at {path}")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FoldingError(f"{path} is not JSON: {e}") from None
    if not isinstance(cfg, dict) or not all(isinstance(v, dict) for v in cfg.values()):
        raise FoldingError(f"{path} is not a FINN folding config ({{node: {{attr: value}}}})")
    return cfg


def check_folding(model) -> None:
    """Raise :class:`FoldingError` naming the first node whose folding does
    not divide its dimensions (e.g. ``PE=5 must divide MH=64``)."""
    finn_env.setup()
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        inst = getCustomOp(node)
        for attr, dim in _dims(node, inst).items():
            v = inst.get_nodeattr(attr)
            if v < 1 or dim % v:
                raise FoldingError(f"{node.name} ({node.op_type}): {attr}={v} must divide {dim}")
        if node.op_type.startswith("ConvolutionInputGenerator") and inst.get_nodeattr("parallel_window") \
                and inst.get_nodeattr("SIMD") != inst.get_nodeattr("IFMChannels"):
            raise FoldingError(f"{node.name}: parallel_window=1 needs SIMD = IFMChannels "
                               f"({inst.get_nodeattr('IFMChannels')})")


def apply_folding(model, config: dict):
    """Apply a folding config (qonnx ``ApplyConfig``) and check it.

    Raises:
        FoldingError: a node named in the config is not in the graph, or the
            folding breaks divisibility (:func:`check_folding`).
    """
    finn_env.setup()
    from finn.transformation.general import ApplyConfig

    names = {n.name for n in model.graph.node}
    unknown = [k for k in config if k != "Defaults" and k not in names]
    if unknown:
        raise FoldingError(f"folding names node {unknown[0]!r}, which is not in the graph")
    m = model.transform(ApplyConfig(config))
    check_folding(m)
    return m
