// stream_fifo -- synchronous first-word-fall-through AXI-stream FIFO.
//
// Ports: clk, rst (active-high synchronous); s_axis_* in, m_axis_* out,
//   tdata[W-1:0], no tlast.
// Parameters: W data bits, DEPTH entries (>= 1, any value, not only powers
//   of two), BLOCK_RAM (0: distributed storage, 1: block-RAM storage).
// Behaviour: one beat per cycle in and out; s_axis_tready = (count !=
//   DEPTH) and m_axis_tvalid come from registers only (no combinational
//   path between the two sides); count is every beat accepted and not yet
//   taken, so the FIFO holds exactly DEPTH beats in both variants.
//   BLOCK_RAM = 0: a beat accepted in cycle n is visible on m_axis in cycle
//     n+1 (latency 1); storage DEPTH x W bits with asynchronous read
//     (LUT-RAM / FFs). DEPTH = 1 runs at half rate; use DEPTH >= 2.
//   BLOCK_RAM = 1: synchronous-read storage (* ram_style = "block" *) behind
//     a two-register prefetch (the RAM's read register, then the output
//     register), the usual way to keep first-word-fall-through and full
//     rate on a block RAM: a beat accepted in cycle n is visible in cycle
//     n+3 (latency 3) when the FIFO was empty; full rate for DEPTH >= 4
//     (three beats are in flight between push and pop).
//     For deep streams (a residual skip holds a whole frame: 49 tokens x 64
//     channels = 3,136 beats), where LUT-RAM costs ~W*DEPTH/48 LUTs plus
//     read multiplexers and one RAMB36 holds 4,096 x 9 bits.
// Written because finn-rtllib's StreamingFIFO does not lint in Verilator.
module stream_fifo #(
    parameter int W     = 8,
    parameter int DEPTH = 4,
    parameter bit BLOCK_RAM = 1'b0
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

    logic [CW-1:0] count;   // beats accepted and not yet taken
    logic [AW-1:0] wp, rp;

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = m_axis_tvalid && m_axis_tready;

    function automatic logic [AW-1:0] inc(input logic [AW-1:0] p);
        return (p == AW'(DEPTH - 1)) ? '0 : p + 1'b1;
    endfunction

    assign s_axis_tready = (count != CW'(DEPTH));

    always_ff @(posedge clk) begin
        if (rst) count <= '0;
        else     count <= count + CW'(push) - CW'(pop);
    end

    always_ff @(posedge clk) begin
        if (rst)       wp <= '0;
        else if (push) wp <= inc(wp);
    end

    generate
        if (!BLOCK_RAM) begin : g_dist
            (* ram_style = "distributed" *) logic [W-1:0] mem [DEPTH];
            assign m_axis_tvalid = (count != '0);
            assign m_axis_tdata  = mem[rp];
            always_ff @(posedge clk) begin
                if (rst)      rp <= '0;
                else if (pop) rp <= inc(rp);
            end
            always_ff @(posedge clk) if (push) mem[wp] <= s_axis_tdata;
        end else begin : g_block
            (* ram_style = "block" *) logic [W-1:0] mem [DEPTH];
            logic [CW-1:0] stored;          // beats in the RAM, not yet read
            logic          r_valid, o_valid; // read register / output register full
            logic [W-1:0]  r_data, o_data;
            // the output register loads when it is empty or being taken
            wire o_load = !o_valid || pop;
            // the read register passes its beat on, or is empty
            wire r_free = !r_valid || o_load;
            wire rd     = (stored != '0) && r_free;
            assign m_axis_tvalid = o_valid;
            assign m_axis_tdata  = o_data;
            always_ff @(posedge clk) begin
                if (rst) begin
                    rp <= '0; stored <= '0; r_valid <= 1'b0; o_valid <= 1'b0;
                end else begin
                    stored <= stored + CW'(push) - CW'(rd);
                    if (rd) rp <= inc(rp);
                    if (r_free) r_valid <= rd;
                    if (o_load) o_valid <= r_valid;
                end
            end
            always_ff @(posedge clk) begin
                if (push) mem[wp] <= s_axis_tdata;
                if (rd)   r_data <= mem[rp];
                if (o_load && r_valid) o_data <= r_data;
            end
        end
    endgenerate
endmodule
