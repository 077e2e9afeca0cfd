// stream_fork -- duplicate one AXI stream onto N outputs, each with its own
// tready (e.g. the token stream feeding the Q, K and V MVAUs and the
// residual branch).
//
// Ports: clk, rst (active-high synchronous);
//   s_axis_tdata[W-1:0], s_axis_tvalid, s_axis_tready;
//   m_axis_tdata[N*W-1:0] (output i at [i*W +: W], a copy of s_axis_tdata),
//   m_axis_tvalid[N-1:0], m_axis_tready[N-1:0].
// Behaviour: every input beat is delivered exactly once on every output, in
//   order. Output i may take the beat in any cycle independently of the
//   others (a per-output "taken" flag remembers it); the input beat is
//   consumed in the cycle the last output takes it. Zero latency (tvalid and
//   tdata pass through combinationally, s_axis_tready depends
//   combinationally on m_axis_tready), one beat per cycle when all outputs
//   are ready. Outputs never run more than one beat apart: put a FIFO on a
//   branch that must run ahead (e.g. a residual branch around a long
//   pipeline).
module stream_fork #(
    parameter int W = 8,
    parameter int N = 2
) (
    input  logic           clk,
    input  logic           rst,
    input  logic [W-1:0]   s_axis_tdata,
    input  logic           s_axis_tvalid,
    output logic           s_axis_tready,
    output logic [N*W-1:0] m_axis_tdata,
    output logic [N-1:0]   m_axis_tvalid,
    input  logic [N-1:0]   m_axis_tready
);
    // Elaboration-time parameter check (Icarus 11 cannot elaborate $error here).
`ifndef __ICARUS__
    generate
        if (N < 1 || W < 1) begin : g_bad_params
            $error("stream_fork: N and W must be >= 1");
        end
    endgenerate
`endif

    logic [N-1:0] taken;  // output i already took the current input beat

    assign m_axis_tdata  = {N{s_axis_tdata}};
    assign m_axis_tvalid = {N{s_axis_tvalid}} & ~taken;
    assign s_axis_tready = &(taken | m_axis_tready);

    always_ff @(posedge clk) begin
        if (rst || (s_axis_tvalid && s_axis_tready)) taken <= '0;
        else taken <= taken | (m_axis_tvalid & m_axis_tready);
    end
endmodule
