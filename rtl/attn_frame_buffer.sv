// attn_frame_buffer -- double-buffered frame store for binary_attention.
//
// Stores the T tokens (D bits each) of one frame of a bit stream so that a
// consumer can read them in any order, while the next frame is loaded into
// the other bank (ping-pong).
//
// Write side (AXI-stream, one token per beat):
//   s_axis_tdata[D-1:0]  token bits, LSB-first (bit 1 = +1, bit 0 = -1).
//   Token n of a frame lands in lane (n % L), word (n / L) of the write bank.
//   s_axis_tready = !full[write bank] (registered state only, no
//   combinational path from the read side).
//
// Read side (consumer):
//   rd_full     : the consumer's current bank holds a complete frame.
//   rd_addr     : word address 0 .. T/L-1 (the tokens addr*L .. addr*L+L-1).
//   rd_data     : registered read, valid one cycle after rd_addr;
//                 lane l (tokens addr*L+l) at rd_data[l*D +: D].
//   rd_release  : one-cycle pulse, issued together with the last read of the
//                 frame; the bank is marked free from the next cycle (the read
//                 issued in the same cycle still returns the old frame) and
//                 the consumer moves on to the other bank.
//
// Parameters: T tokens per frame, D bits per token, L read lanes (L | T).
// Storage: 2*T*D bits, as L memories of 2*T/L words x D bits.
// Latency: a frame becomes readable the cycle after its last token is
// accepted; a released bank accepts tokens the cycle after rd_release.
module attn_frame_buffer #(
    parameter int T = 49,
    parameter int D = 32,
    parameter int L = 1
) (
    input  logic             clk,
    input  logic             rst,
    input  logic [D-1:0]     s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic             rd_full,
    input  logic [$clog2(T/L+1)-1:0] rd_addr,
    output logic [L*D-1:0]   rd_data,
    input  logic             rd_release
);
    localparam int NA = T / L;              // words per bank
    localparam int AW = $clog2(NA + 1);     // word address width
    localparam int LW = $clog2(L + 1);      // lane index width

    generate
        if (T % L != 0 || L < 1) begin : g_bad_params
            $error("attn_frame_buffer: L must divide T");
        end
    endgenerate

    logic [1:0] full;
    logic       wbank, rbank;
    logic [AW-1:0] waddr;
    logic [LW-1:0] wlane;

    wire wr = s_axis_tvalid && s_axis_tready;
    wire wlast = (waddr == AW'(NA - 1)) && (wlane == LW'(L - 1));

    assign s_axis_tready = !full[wbank];
    assign rd_full = full[rbank];

    always_ff @(posedge clk) begin
        if (rst) begin
            full  <= '0;
            wbank <= 1'b0;
            rbank <= 1'b0;
            waddr <= '0;
            wlane <= '0;
        end else begin
            if (wr) begin
                if (wlane == LW'(L - 1)) begin
                    wlane <= '0;
                    waddr <= wlast ? '0 : waddr + 1'b1;
                end else begin
                    wlane <= wlane + 1'b1;
                end
                if (wlast) wbank <= !wbank;
            end
            if (rd_release) rbank <= !rbank;
            // A bank is only written while free and only released while full,
            // so set and clear never hit the same bank in one cycle.
            for (int b = 0; b < 2; b++) begin
                if (wr && wlast && wbank == b[0]) full[b] <= 1'b1;
                if (rd_release && rbank == b[0]) full[b] <= 1'b0;
            end
        end
    end

    // One memory per lane; word address = bank * NA + addr.
    for (genvar l = 0; l < L; l++) begin : g_lane
        logic [D-1:0] mem [2*NA];
        always_ff @(posedge clk) begin
            if (wr && wlane == LW'(l)) mem[(wbank ? NA : 0) + int'(waddr)] <= s_axis_tdata;
        end
        always_ff @(posedge clk) begin
            rd_data[l*D +: D] <= mem[(rbank ? NA : 0) + int'(rd_addr)];
        end
    end
endmodule
