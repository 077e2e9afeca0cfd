// stream_pos_add -- add a per-token, per-channel constant table (position
// embedding) to a token stream, with saturation.
//
// Stream format (in and out): a frame is T tokens of C channels; a token
//   arrives as C/PE beats of PE signed W-bit lanes (channel f*PE+l of beat f
//   at tdata[l*W +: W], LSB-first); frames follow back to back.
// Output: lane = sat_W(x + E[t][c]), sat_W clamps to [-2^(W-1), 2^(W-1)-1].
// Table E: T x C signed W-bit constants loaded by $readmemh from INIT_FILE:
//   T*C/PE lines (token-major, then channel group), each line one beat's PE
//   lanes packed LSB-first as a (PE*W)-bit hex word (W-bit two's complement
//   per lane). Read through a registered (prefetched) ROM port, so it maps
//   to BRAM or LUTROM.
// Ports: clk, rst (active-high synchronous); s_axis_*, m_axis_* with
//   tdata[PE*W-1:0], no tlast. Position restarts at token 0 channel 0
//   after reset.
// Timing: one output register, latency 1 cycle, one beat per cycle.
// Errors: elaboration $error if PE does not divide C.
module stream_pos_add #(
    parameter int    T         = 4,
    parameter int    C         = 8,
    parameter int    PE        = 1,
    parameter int    W         = 8,
    parameter string INIT_FILE = ""
) (
    input  logic            clk,
    input  logic            rst,
    input  logic [PE*W-1:0] s_axis_tdata,
    input  logic            s_axis_tvalid,
    output logic            s_axis_tready,
    output logic [PE*W-1:0] m_axis_tdata,
    output logic            m_axis_tvalid,
    input  logic            m_axis_tready
);
    localparam int NW = T * C / PE;           // table words (beats per frame)
    localparam int AW = $clog2(NW + 1);

    generate
        if (C % PE != 0 || W < 2 || T < 1) begin : g_bad_params
            $error("stream_pos_add: PE must divide C, W >= 2, T >= 1");
        end
    endgenerate

    logic [PE*W-1:0] tab [NW];
    initial begin
        if (INIT_FILE != "") $readmemh(INIT_FILE, tab);
    end

    logic [AW-1:0]   addr, addr_next;
    logic [PE*W-1:0] rom_q;           // = tab[addr] at all times after reset

    assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
    wire go = s_axis_tvalid && s_axis_tready;

    always_comb begin
        if (rst) addr_next = '0;
        else if (go) addr_next = (addr == AW'(NW - 1)) ? '0 : addr + 1'b1;
        else addr_next = addr;
    end

    always_ff @(posedge clk) begin
        addr  <= addr_next;
        rom_q <= tab[int'(addr_next)];
    end

    logic [PE*W-1:0] sum;
    lanes_add_sat #(.W(W), .LANES(PE)) u_add (.a(s_axis_tdata), .b(rom_q), .sum(sum));

    always_ff @(posedge clk) begin
        if (rst) m_axis_tvalid <= 1'b0;
        else if (s_axis_tready) m_axis_tvalid <= s_axis_tvalid;
        if (go) m_axis_tdata <= sum;
    end
endmodule
