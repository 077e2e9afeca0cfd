// mvau_int: folded integer matrix-vector(-threshold) unit, AXI-stream in and out.
//
// For every input vector x (MW activations of IN_W bits) and output channel
// c < MH: acc[c] = sum_k x[k] * W[k][c], then either acc (raw) or its
// threshold count. Two weight kinds:
//   W_W = 1: bipolar weights, bit 1 = +1, bit 0 = -1: each product is +x or
//            -x (add/subtract, no multiplier, no DSP). For binary-weight
//            layers fed by n-bit activations.
//   W_W > 1: W_W-bit integer weights, two's complement if W_SIGNED, else
//            unsigned; products use multipliers (DSP48s in Yosys synth_xilinx)
//            with USE_DSP = 1, or IN_W shifted partial products in LUTs with
//            USE_DSP = 0 (for narrow activations, e.g. 4-bit stem outputs).
//            DSP_PACK = 1 (USE_DSP, even PE): channels 2k and 2k+1 share one
//            multiplier per activation (x * (w0 + w1 * 2^F)), half the DSPs.
//            For the 8-bit patch embedding and classifier.
// Activations are two's complement if IN_SIGNED, else unsigned.
// The accumulator is ACC_W = IN_W + (W_W == 1 ? 0 : W_W) + $clog2(MW) + 1
// bits, two's complement: the exact sum, no overflow for any input.
//
// Output: N_THRESH = 0: acc, ACC_W bits per channel (signed).
//   N_THRESH = N > 0: FINN MultiThreshold semantics without bias: the number
//   of the channel's N thresholds t with acc >= t, $clog2(N+1) bits unsigned
//   (thresholds need not be sorted).
//
// Folding: PE channels x SIMD activations per cycle, PE | MH, SIMD | MW; each
// vector takes (MH/PE)*(MW/SIMD) cycles; vectors stream back to back.
// Streams: s_axis beat = SIMD activations LSB-first (lane s = x[sf*SIMD+s]),
// MW/SIMD beats per vector; m_axis beat = PE lanes LSB-first (lane pe =
// channel nf*PE+pe), MH/PE beats per vector.
//
// Memories (initialised with $readmemh; writers in xnorvit.flows.mvau_rtl):
//   WEIGHTS_FILE: (MH/PE)*(MW/SIMD) words of PE*SIMD*W_W bits; word nf*SF+sf,
//     lane pe*SIMD+s = W[sf*SIMD+s][nf*PE+pe] (FINN's (MW, MH) layout).
//   THRESHOLDS_FILE: MH/PE words of PE*N_THRESH*(ACC_W+1) bits; word nf,
//     lane pe*N_THRESH+i = threshold i of channel nf*PE+pe.
//   RAM_STYLE for the weights: "block", "distributed" or "auto" (block RAM
//   for more than 128 words).
// Pipeline and handshake: see mvau_core.sv (latency 5, full rate).
module mvau_int #(
    parameter int unsigned MW = 8,
    parameter int unsigned MH = 8,
    parameter int unsigned PE = 1,
    parameter int unsigned SIMD = 1,
    parameter int unsigned IN_W = 8,
    parameter bit          IN_SIGNED = 1,
    parameter int unsigned W_W = 1,
    parameter bit          W_SIGNED = 1,
    parameter bit          USE_DSP = 1,
    parameter bit          DSP_PACK = 0,
    parameter int unsigned N_THRESH = 0,
    parameter string       WEIGHTS_FILE = "",
    parameter string       THRESHOLDS_FILE = "",
    parameter string       RAM_STYLE = "auto",
    localparam int unsigned ACC_W = IN_W + (W_W == 1 ? 0 : W_W) + $clog2(MW) + 1,
    localparam int unsigned OUT_W = N_THRESH > 0 ? $clog2(N_THRESH + 1) : ACC_W
) (
    input  logic                 clk,
    input  logic                 rst,
    input  logic [SIMD*IN_W-1:0] s_axis_tdata,
    input  logic                 s_axis_tvalid,
    output logic                 s_axis_tready,
    output logic [PE*OUT_W-1:0]  m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready
);
    mvau_core #(
        .MW(MW), .MH(MH), .PE(PE), .SIMD(SIMD),
        .XNOR(0), .XNOR_BIPOLAR(0), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .W_W(W_W), .W_SIGNED(W_SIGNED),
        .USE_DSP(USE_DSP), .DSP_PACK(DSP_PACK), .ACC_W(ACC_W), .N_THRESH(N_THRESH),
        .WEIGHTS_FILE(WEIGHTS_FILE), .THRESHOLDS_FILE(THRESHOLDS_FILE), .RAM_STYLE(RAM_STYLE)
    ) u_core (.*);
endmodule : mvau_int
