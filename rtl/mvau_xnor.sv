// mvau_xnor: folded binary matrix-vector(-threshold) unit, AXI-stream in and out.
//
// Computes, for every input vector x (MW bits) and every output channel
// c < MH, the XNOR dot product with the binary weight row of c, and emits
// either that accumulator or its threshold count.
//
// Encoding: a bit b stands for the bipolar value 2b-1 (1 = +1, 0 = -1),
// FINN's convention. With p = popcount(~(w ^ x)) the number of matching bits:
//   BIPOLAR = 0 (default): acc = p, in [0, MW].  This is exactly what FINN's
//       MVAU computes in binaryXnorMode (qonnx xnorpopcountmatmul returns the
//       number of +1 products), so FINN's thresholds for such a node apply
//       unchanged.
//   BIPOLAR = 1: acc = 2p - MW = sum_k (2x_k-1)(2w_k-1), in [-MW, MW], the
//       true bipolar dot product. Thresholds for it are 2t - MW of popcount
//       thresholds t.
// The accumulator is ACC_W = $clog2(MW+1)+1 bits, two's complement.
//
// Output: N_THRESH = 0: the accumulator, ACC_W bits per channel (signed).
//   N_THRESH = N > 0: FINN MultiThreshold semantics without bias, i.e. the
//   number of the channel's N thresholds t with acc >= t, $clog2(N+1) bits
//   unsigned. Thresholds need not be sorted. For N = 1 that count is the
//   bipolar output bit (FINN's BIPOLAR output y = 2*count-1).
//
// Folding: PE channels x SIMD bits per cycle, PE | MH, SIMD | MW. Each vector
// takes (MH/PE)*(MW/SIMD) cycles; vectors stream back to back.
// Streams: s_axis beat = SIMD input bits (bit s = x[sf*SIMD+s]), MW/SIMD beats
// per vector; m_axis beat = PE lanes LSB-first (lane pe = channel nf*PE+pe),
// MH/PE beats per vector.
//
// Memories (initialised with $readmemh; see xnorvit.flows.mvau_rtl for writers):
//   WEIGHTS_FILE: (MH/PE)*(MW/SIMD) words of PE*SIMD bits; word nf*SF+sf, bit
//     pe*SIMD+s = weight of channel nf*PE+pe, input sf*SIMD+s.
//   THRESHOLDS_FILE: MH/PE words of PE*N_THRESH*(ACC_W+1) bits; word nf,
//     lane pe*N_THRESH+i = threshold i of channel nf*PE+pe (two's complement).
//   RAM_STYLE for the weights: "block", "distributed" or "auto" (block RAM
//   for more than 128 words).
module mvau_xnor #(
    parameter int unsigned MW = 8,
    parameter int unsigned MH = 8,
    parameter int unsigned PE = 1,
    parameter int unsigned SIMD = 1,
    parameter bit          BIPOLAR = 0,
    parameter int unsigned N_THRESH = 0,
    parameter string       WEIGHTS_FILE = "",
    parameter string       THRESHOLDS_FILE = "",
    parameter string       RAM_STYLE = "auto",
    localparam int unsigned ACC_W = $clog2(MW + 1) + 1,
    localparam int unsigned OUT_W = N_THRESH > 0 ? $clog2(N_THRESH + 1) : ACC_W
) (
    input  logic                clk,
    input  logic                rst,
    input  logic [SIMD-1:0]     s_axis_tdata,
    input  logic                s_axis_tvalid,
    output logic                s_axis_tready,
    output logic [PE*OUT_W-1:0] m_axis_tdata,
    output logic                m_axis_tvalid,
    input  logic                m_axis_tready
);
    mvau_core #(
        .MW(MW), .MH(MH), .PE(PE), .SIMD(SIMD),
        .XNOR(1), .XNOR_BIPOLAR(BIPOLAR), .IN_W(1), .IN_SIGNED(0), .W_W(1), .W_SIGNED(0),
        .ACC_W(ACC_W), .N_THRESH(N_THRESH),
        .WEIGHTS_FILE(WEIGHTS_FILE), .THRESHOLDS_FILE(THRESHOLDS_FILE), .RAM_STYLE(RAM_STYLE)
    ) u_core (.*);
endmodule : mvau_xnor
