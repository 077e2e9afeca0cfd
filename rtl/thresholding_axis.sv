// thresholding_axis: finn-rtllib's multi-threshold unit with xnorvit's port convention.
//
// Wraps thresholding_axi (finn-plus wheel: finn/finn-rtllib/thresholding/hdl,
// binary-search thresholding by T. Preusser, AMD) without AXI-lite: the
// thresholds are fixed at elaboration from files. Semantics (FINN
// MultiThreshold, channels last): for input x of channel c,
//   y = BIAS + #{ i < N : T[c][i] <= x }
// Thresholds must be sorted ascending per channel (binary search).
//
// Streams: s_axis beat = PE inputs of WI bits (LSB-first, two's complement if
// SIGNED), C/PE beats per vector, channel of lane pe in beat cf = cf*PE+pe;
// m_axis beat = PE outputs of O_BITS bits (unsigned if BIAS >= 0, else
// signed). One beat per cycle; latency $clog2(N+1)+3 cycles.
//
// Threshold files: THRESHOLDS_PATH is a prefix; the core reads
// "<THRESHOLDS_PATH>threshs_<pe>_<stage>.dat" for each PE lane and each of
// the $clog2(N+1) search stages. FINN writes them:
// Thresholding_rtl.make_weight_file(T, "internal_embedded", "<dir>/x.dat")
// gives "<dir>/<node name>_threshs_<pe>_<stage>.dat" (prefix "<dir>/<name>_").
//
// Sources (in order): rtl/thresholding_axis.vlt (lint waivers for the
// third-party files), finn-rtllib/thresholding/hdl/thresholding.sv,
// thresholding_axi.sv, this file (axilite.sv is not needed: USE_AXILITE=0).
module thresholding_axis #(
    parameter int unsigned WI = 8,          // input bits
    parameter int unsigned WT = 8,          // threshold bits
    parameter int unsigned N = 3,           // thresholds per channel
    parameter int unsigned C = 1,           // channels
    parameter int unsigned PE = 1,          // channels per beat, divides C
    parameter bit          SIGNED = 1,      // inputs/thresholds two's complement
    parameter int          BIAS = 0,        // added to the count
    parameter string       THRESHOLDS_PATH = "",
    parameter int unsigned DEPTH_TRIGGER_BRAM = 0,
    parameter bit          DEEP_PIPELINE = 0,
    localparam int unsigned O_BITS = BIAS >= 0 ?
        $clog2(N + BIAS + 1) : 1 + $clog2(-BIAS >= N + BIAS + 1 ? -BIAS : N + BIAS + 1)
) (
    input  logic                 clk,
    input  logic                 rst,
    input  logic [PE*WI-1:0]     s_axis_tdata,
    input  logic                 s_axis_tvalid,
    output logic                 s_axis_tready,
    output logic [PE*O_BITS-1:0] m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready
);
    localparam int unsigned IW8 = ((PE * WI + 7) / 8) * 8;
    localparam int unsigned OW8 = ((PE * O_BITS + 7) / 8) * 8;
    localparam int unsigned CF = C / PE;
    localparam int unsigned ADDR_WIDTH = $clog2(CF) + $clog2(PE) + $clog2(N) + $clog2(1 + (WT - 1) / 32) + 2;

    // Unused pieces of the AXI-lite and set-selection interfaces of the
    // wrapped module (disabled by USE_AXILITE=0, SETS=1) and the byte padding
    // of its output.
    /* verilator lint_off UNUSEDSIGNAL */
    logic awready, wready, bvalid, arready, rvalid, set_tready;
    logic [1:0] bresp, rresp;
    logic [31:0] rdata;
    logic [OW8-1:0] odat;
    /* verilator lint_on UNUSEDSIGNAL */

    thresholding_axi #(
        .WI(WI), .WT(WT), .N(N), .C(C), .PE(PE),
        .SIGNED(SIGNED), .FPARG(0), .BIAS(BIAS), .SETS(1),
        .THRESHOLDS_PATH(THRESHOLDS_PATH), .USE_AXILITE(0),
        .DEPTH_TRIGGER_URAM(0), .DEPTH_TRIGGER_BRAM(DEPTH_TRIGGER_BRAM), .DEEP_PIPELINE(DEEP_PIPELINE)
    ) u_core (
        .ap_clk(clk), .ap_rst_n(!rst),
        .s_axilite_AWVALID(1'b0), .s_axilite_AWREADY(awready), .s_axilite_AWADDR(ADDR_WIDTH'(0)),
        .s_axilite_WVALID(1'b0), .s_axilite_WREADY(wready), .s_axilite_WDATA(32'd0), .s_axilite_WSTRB(4'd0),
        .s_axilite_BVALID(bvalid), .s_axilite_BREADY(1'b0), .s_axilite_BRESP(bresp),
        .s_axilite_ARVALID(1'b0), .s_axilite_ARREADY(arready), .s_axilite_ARADDR(ADDR_WIDTH'(0)),
        .s_axilite_RVALID(rvalid), .s_axilite_RREADY(1'b0), .s_axilite_RDATA(rdata), .s_axilite_RRESP(rresp),
        .s_axis_set_tready(set_tready), .s_axis_set_tvalid(1'b0), .s_axis_set_tdata(8'd0),
        .s_axis_tready(s_axis_tready), .s_axis_tvalid(s_axis_tvalid), .s_axis_tdata(IW8'(s_axis_tdata)),
        .m_axis_tready(m_axis_tready), .m_axis_tvalid(m_axis_tvalid), .m_axis_tdata(odat)
    );
    assign m_axis_tdata = odat[PE*O_BITS-1:0];
endmodule : thresholding_axis
