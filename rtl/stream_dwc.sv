// stream_dwc -- AXI-stream data-width converter IBITS -> OBITS, xnorvit port
// convention around finn-rtllib's `vpc` (the core of FINN's RTL DWC,
// finn-rtllib/dwc/hdl/vpc.sv, BSD-3-Clause, from the installed finn-plus).
//
// Semantics (FINN's): the bit stream is LSB-first; the concatenation of the
//   input beats (beat 0 in the low bits) equals the concatenation of the
//   output beats. Configured exactly as finn-rtllib's dwc_axi does
//   (vector of IBITS*OBITS bits, element width 1), so any ratio works,
//   including non-integer ones (e.g. 12 -> 8); each IBITS*OBITS-bit vector
//   is converted independently, which for this vector length never pads.
// Ports: clk, rst (active-high synchronous); s_axis_tdata[IBITS-1:0],
//   m_axis_tdata[OBITS-1:0]; no padding to bytes (done at the accelerator's
//   ports only).
// Timing: no combinational ready path (vpc's internal side register). When
//   one width divides the other the narrower side runs at one beat per cycle;
//   other ratios take vpc's generic path, measured (rtl_tests/test_stream_dwc
//   dwc_rate) at 48 narrow beats per 64 cycles for 12->8 and 8->12 and 20
//   per 28 for 3->5.
// Sources: rtl/stream_dwc.vlt (lint waivers for the vendored core), vpc.sv
//   from finn-rtllib/dwc/hdl, then this file.
module stream_dwc #(
    parameter int IBITS = 8,
    parameter int OBITS = 32
) (
    input  logic             clk,
    input  logic             rst,
    input  logic [IBITS-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [OBITS-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready
);
    vpc #(.W(1), .N(IBITS * OBITS), .PI(IBITS), .PO(OBITS)) u_core (
        .clk, .rst,
        .idat(s_axis_tdata), .ivld(s_axis_tvalid), .irdy(s_axis_tready),
        .odat(m_axis_tdata), .ovld(m_axis_tvalid), .ordy(m_axis_tready)
    );
endmodule
