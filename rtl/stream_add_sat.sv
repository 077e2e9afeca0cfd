// stream_add_sat -- elementwise saturating add of two AXI streams (the
// residual add of the 8-bit residual stream).
//
// Ports: clk, rst (active-high synchronous);
//   s_axis_a_*, s_axis_b_*: tdata[LANES*W-1:0], LANES signed two's-complement
//     lanes of W bits, lane l at [l*W +: W] (LSB-first);
//   m_axis_*: tdata[LANES*W-1:0], lane l = sat_W(a_l + b_l), where sat_W
//     clamps to [-2^(W-1), 2^(W-1)-1].
// Behaviour: beat n of a is added to beat n of b (a join: both must be
//   valid). One output register: latency 1 cycle, one beat per cycle;
//   s_axis_*_tready = (output register free or being read) and the other
//   input valid.
module stream_add_sat #(
    parameter int W     = 8,
    parameter int LANES = 1
) (
    input  logic               clk,
    input  logic               rst,
    input  logic [LANES*W-1:0] s_axis_a_tdata,
    input  logic               s_axis_a_tvalid,
    output logic               s_axis_a_tready,
    input  logic [LANES*W-1:0] s_axis_b_tdata,
    input  logic               s_axis_b_tvalid,
    output logic               s_axis_b_tready,
    output logic [LANES*W-1:0] m_axis_tdata,
    output logic               m_axis_tvalid,
    input  logic               m_axis_tready
);
    // Elaboration-time parameter check (Icarus 11 cannot elaborate $error here).
`ifndef __ICARUS__
    generate
        if (W < 2 || LANES < 1) begin : g_bad_params
            $error("stream_add_sat: W must be >= 2 and LANES >= 1");
        end
    endgenerate
`endif

    wire ready = !m_axis_tvalid || m_axis_tready;
    assign s_axis_a_tready = ready && s_axis_b_tvalid;
    assign s_axis_b_tready = ready && s_axis_a_tvalid;
    wire go = ready && s_axis_a_tvalid && s_axis_b_tvalid;

    logic [LANES*W-1:0] sum;
    lanes_add_sat #(.W(W), .LANES(LANES)) u_add (.a(s_axis_a_tdata), .b(s_axis_b_tdata), .sum(sum));

    always_ff @(posedge clk) begin
        if (rst) m_axis_tvalid <= 1'b0;
        else if (ready) m_axis_tvalid <= go;
        if (go) m_axis_tdata <= sum;
    end
endmodule
