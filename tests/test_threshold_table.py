"""ThresholdTable_rtl (flows/ops/threshold_table.py, flows/ops/rtl/threshold_table_rtl.py)
and UseThresholdTables (flows/to_hw.py): the table against an independent
per-value MultiThreshold, the op's execution against numpy, which
thresholdings the rule moves onto tables, exactness of the swap, estimates
against the RAMB18 arithmetic, and Verilator lint of the generated wrapper.
The kernel itself is simulated in rtl_tests/test_threshold_table.py."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from xnorvit.flows import finn_env, finn_ref
from xnorvit.flows.ops.stream import RTLSIM_MESSAGE
from xnorvit.flows.ops.threshold_table import prefer_table, table_hex, threshold_table
from xnorvit.flows.to_hw import UseThresholdTables

finn_env.setup()


def _mt(x: int, t_row, bias: int) -> int:
    """MultiThreshold of one value, python ints: bias + #{t <= x}."""
    return bias + sum(1 for t in t_row if t <= x)


def thr_model(c=8, n=255, idt="UINT7", odt="INT8", bias=-128, pe=1, tokens=5, seed=0,
              op="Thresholding_rtl", domain="finn.custom_op.fpgadataflow.rtl"):
    rng = np.random.default_rng(seed)
    lo, hi = DataType_range(idt)
    thr = np.sort(rng.integers(lo - 1, hi + 2, (c, n)), axis=1)
    attrs = dict(PE=pe, NumChannels=c, numSteps=n, inputDataType=idt, weightDataType=idt.replace("UINT", "INT"),
                 outputDataType=odt, ActVal=bias, numInputVectors=[tokens], exec_mode="cppsim")
    m = finn_ref._model(op, domain, {"inp": (tokens, c), "thresh": thr}, (tokens, c), attrs,
                        {"inp": idt, "outp": odt})
    m.graph.node[0].name = f"{op}_0"
    return m, thr


def DataType_range(name: str) -> tuple[int, int]:
    return int(DataType[name].min()), int(DataType[name].max())


@pytest.mark.parametrize("in_bits,signed,bias", [(7, False, -128), (4, True, 0), (1, False, 0), (3, True, -3)])
def test_table_equals_multithreshold_of_every_input(in_bits, signed, bias):
    rng = np.random.default_rng(in_bits)
    c, n = 5, 9
    lo = -(1 << (in_bits - 1)) if signed else 0
    thr = np.sort(rng.integers(lo - 2, lo + (1 << in_bits) + 2, (c, n)), axis=1) + rng.choice([0, 0.5], (c, 1))
    tab = threshold_table(thr, c, in_bits, signed, bias)
    assert tab.shape == (c, 1 << in_bits)
    for ch in range(c):
        for i in range(1 << in_bits):
            assert tab[ch, i] == _mt(lo + i, thr[ch], bias), (ch, i)
    shared = threshold_table(thr[:1], c, in_bits, signed, bias)  # one row for all channels
    assert (shared == tab[:1]).all()


def test_table_hex_lanes_and_encoding():
    tab = np.array([[-1, 0], [1, 2], [-128, 127], [3, 4]])  # C = 4, WI = 1
    lanes = table_hex(tab, 2, 8)
    assert lanes[0].split() == ["ff", "00", "80", "7f"]  # channels 0 and 2
    assert lanes[1].split() == ["01", "02", "03", "04"]  # channels 1 and 3
    with pytest.raises(ValueError, match="PE=3 does not divide C=4"):
        table_hex(tab, 3, 8)
    with pytest.raises(ValueError, match="do not fit 4 bits"):
        table_hex(tab, 2, 4)
    with pytest.raises(ValueError, match=r"thresholds of shape \(3, 2\) for 4 channels"):
        threshold_table(np.zeros((3, 2)), 4, 2, False, 0)


def test_prefer_table_rule():
    assert prefer_table(7, 255, 7, 8)          # requantizer after a 7-bit popcount: 1,024 <= 2 x 1,785 bits
    assert prefer_table(8, 255, 8, 8)          # 8-bit residual sum: 2,048 <= 2 x 2,040
    assert not prefer_table(8, 255, 3, 8)      # 2,048 > 2 x 765
    assert not prefer_table(8, 1, 8, 1)        # one threshold: a comparator is cheaper
    assert not prefer_table(16, 255, 16, 8)    # the stem's 16-bit accumulator
    assert not prefer_table(4, 15, 4, 4, bipolar_out=True)


@pytest.mark.parametrize("idt,n,odt,bias,pe", [("UINT7", 255, "INT8", -128, 2), ("INT5", 63, "UINT6", 0, 4)])
def test_use_tables_swaps_exactly(idt, n, odt, bias, pe):
    m, thr = thr_model(c=8, n=n, idt=idt, odt=odt, bias=bias, pe=pe)
    lo, hi = DataType_range(idt)
    x = np.random.default_rng(1).integers(lo, hi + 1, (5, 8))
    before = finn_ref.execute(m, x)
    t = m.transform(UseThresholdTables())
    node = t.graph.node[0]
    assert node.op_type == "ThresholdTable_rtl" and node.domain == "xnorvit.flows.ops.rtl"
    inst = getCustomOp(node)
    assert inst.get_nodeattr("PE") == pe and inst.get_nodeattr("ram_style") == "auto"
    after = finn_ref.execute(t, x)
    want = np.array([[_mt(int(x[i, ch]), thr[ch], bias) for ch in range(8)] for i in range(5)])
    assert np.array_equal(before.reshape(5, 8), want) and np.array_equal(after.reshape(5, 8), want)
    # same stream interface and cycles as the binary search it replaces
    old = getCustomOp(m.graph.node[0])
    for f in ("get_instream_width", "get_outstream_width", "get_exp_cycles", "get_folded_input_shape"):
        assert getattr(inst, f)() == getattr(old, f)(), f


def test_use_tables_keeps_narrow_thresholdings():
    m, _ = thr_model(c=8, n=1, idt="INT8", odt="BINARY", bias=0)
    assert m.transform(UseThresholdTables()).graph.node[0].op_type == "Thresholding_rtl"


def test_rtlsim_refused():
    m, _ = thr_model(c=4, n=255, idt="UINT7")
    t = m.transform(UseThresholdTables())
    getCustomOp(t.graph.node[0]).set_nodeattr("exec_mode", "rtlsim")
    with pytest.raises(NotImplementedError, match=RTLSIM_MESSAGE[:30]):
        finn_ref.execute(t, np.zeros((5, 4)))


@pytest.mark.parametrize("c,pe,idt,style,bram18,lut_rom", [
    (64, 1, "UINT7", "auto", 4, False),    # 8,192 x 8 bits: 4 RAMB18 (2K x 9 aspect)
    (64, 2, "UINT8", "block", 8, False),   # 2 lanes of 8,192 x 8
    (64, 16, "UINT4", "auto", 0, True),    # 64 words x 8 per lane: LUT-ROM
])
def test_estimates(c, pe, idt, style, bram18, lut_rom):
    m, _ = thr_model(c=c, n=255 if idt != "UINT4" else 15, idt=idt, odt="INT8" if idt != "UINT4" else "UINT4",
                     bias=-128 if idt != "UINT4" else 0, pe=pe)
    inst = getCustomOp(m.transform(UseThresholdTables()).graph.node[0])
    inst.set_nodeattr("ram_style", style)
    assert inst.bram_estimation() == bram18
    assert inst.tables_in_bram() != lut_rom
    wo = inst.get_output_datatype().bitwidth()
    if lut_rom:  # one LUT6 per bit of a 64-word lane table, plus control
        assert inst.lut_estimation() >= pe * wo
    else:
        assert inst.lut_estimation() < 16


def test_generated_wrapper_lints(tmp_path):
    from xnorvit.flows.ops.rtl.common import lint_wrapper

    m, thr = thr_model(c=8, n=255, idt="UINT7", pe=2)
    t = m.transform(UseThresholdTables())
    inst = getCustomOp(t.graph.node[0])
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    inst.generate_hdl(t, "xc7z020clg400-1", 10.0)
    lanes = sorted(tmp_path.glob("ThresholdTable_rtl_0_table_*.hex"))  # renamed from Thresholding_rtl_0
    assert [p.name for p in lanes] == ["ThresholdTable_rtl_0_table_0.hex", "ThresholdTable_rtl_0_table_1.hex"]
    words = lanes[1].read_text().split()
    assert len(words) == 4 * 128  # channels 1, 3, 5, 7
    assert int(words[128 + 5], 16) == (_mt(5, thr[3], -128) & 0xFF)  # channel 3, input 5
    lint_wrapper(inst)
