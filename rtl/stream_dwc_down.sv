// stream_dwc_down -- AXI-stream down-converter IBITS -> OBITS for an integer
// ratio K = IBITS / OBITS >= 2.
//
// Semantics (FINN's, as rtl/stream_dwc.sv): the bit stream is LSB-first;
//   slice k of input beat b (bits [k*OBITS +: OBITS]) is output beat b*K + k.
// Micro-architecture: the input word is held in a register and a slice
//   counter selects the output slice through a K:1 multiplexer per output
//   bit. finn-rtllib's vpc (what stream_dwc uses, and the stitcher for
//   other ratios) serializes through a shift register instead: a 2:1 mux
//   (one LUT) per bit of IBITS on every shift, e.g. 462 Yosys LUTs for
//   binary_attention's 448-bit rows into 7-bit lanes, where this takes 209
//   (about OBITS * K/2 LUTs for K > 4, OBITS for K <= 4;
//   benchmarks/streams.py measures both, benchmarks/results/streams.md).
// Ports: clk, rst (active-high synchronous); s_axis_tdata[IBITS-1:0],
//   m_axis_tdata[OBITS-1:0]; no tlast.
// Timing: one output beat per cycle with a valid input; the next word is
//   loaded in the cycle its predecessor's last slice leaves, so
//   s_axis_tready = !held || (m_axis_tready && last slice) (a combinational
//   path from m_axis_tready; the stitcher puts a FIFO behind every
//   converter). m_axis_tdata comes from the register through the mux.
// Errors: elaboration $error unless OBITS divides IBITS with K >= 2.
module stream_dwc_down #(
    parameter int IBITS = 64,
    parameter int OBITS = 8
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
    localparam int K = IBITS / OBITS;
    localparam int CW = K > 1 ? $clog2(K) : 1;

    generate
        if (OBITS < 1 || IBITS % OBITS != 0 || K < 2) begin : g_bad_params
            $error("stream_dwc_down: OBITS must divide IBITS with IBITS / OBITS >= 2");
        end
    endgenerate

    logic [IBITS-1:0] word;
    logic             held;
    logic [CW-1:0]    slice;
    wire last = (slice == CW'(K - 1));

    assign s_axis_tready = !held || (m_axis_tready && last);
    assign m_axis_tvalid = held;
    assign m_axis_tdata = word[int'(slice)*OBITS +: OBITS];

    always_ff @(posedge clk) begin
        if (rst) begin
            held <= 1'b0;
            slice <= '0;
        end else begin
            if (held && m_axis_tready) slice <= last ? '0 : slice + 1'b1;
            if (s_axis_tready) held <= s_axis_tvalid;
        end
        if (s_axis_tvalid && s_axis_tready) word <= s_axis_tdata;
    end
endmodule : stream_dwc_down
