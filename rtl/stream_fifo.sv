// stream_fifo -- synchronous first-word-fall-through AXI-stream FIFO.
//
// Ports: clk, rst (active-high synchronous); s_axis_* in, m_axis_* out,
//   tdata[W-1:0], no tlast.
// Parameters: W data bits, DEPTH entries (>= 1, any value, not only powers
//   of two).
// Behaviour: a beat accepted in cycle n is visible on m_axis in cycle n+1
//   (latency 1); one beat per cycle in and out; s_axis_tready = (count !=
//   DEPTH) and m_axis_tvalid = (count != 0) come from registers only (no
//   combinational path between the two sides). DEPTH = 1 therefore runs at
//   half rate; use DEPTH >= 2 for full throughput.
// Storage: DEPTH x W bits with asynchronous read (distributed RAM / FFs).
// Written because finn-rtllib's StreamingFIFO does not lint in Verilator.
module stream_fifo #(
    parameter int W     = 8,
    parameter int DEPTH = 4
) (
    input  logic         clk,
    input  logic         rst,
    input  logic [W-1:0] s_axis_tdata,
    input  logic         s_axis_tvalid,
    output logic         s_axis_tready,
    output logic [W-1:0] m_axis_tdata,
    output logic         m_axis_tvalid,
    input  logic         m_axis_tready
);
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;  // pointer width
    localparam int CW = $clog2(DEPTH + 1);                // count width

    // Elaboration-time parameter check (Icarus 11 cannot elaborate $error here).
`ifndef __ICARUS__
    generate
        if (DEPTH < 1 || W < 1) begin : g_bad_params
            $error("stream_fifo: DEPTH and W must be >= 1");
        end
    endgenerate
`endif

    logic [W-1:0]  mem [DEPTH];
    logic [AW-1:0] wp, rp;
    logic [CW-1:0] count;

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = m_axis_tvalid && m_axis_tready;

    function automatic logic [AW-1:0] inc(input logic [AW-1:0] p);
        return (p == AW'(DEPTH - 1)) ? '0 : p + 1'b1;
    endfunction

    assign s_axis_tready = (count != CW'(DEPTH));
    assign m_axis_tvalid = (count != '0);
    assign m_axis_tdata  = mem[rp];

    always_ff @(posedge clk) begin
        if (rst) begin
            wp <= '0; rp <= '0; count <= '0;
        end else begin
            if (push) wp <= inc(wp);
            if (pop)  rp <= inc(rp);
            count <= count + CW'(push) - CW'(pop);
        end
    end

    always_ff @(posedge clk) if (push) mem[wp] <= s_axis_tdata;
endmodule
