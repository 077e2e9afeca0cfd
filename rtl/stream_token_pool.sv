// stream_token_pool -- global average pooling over the tokens of a frame
// (BinaryViT's GAP head), emitted as the integer SUM.
//
// Input: a frame is T tokens of C channels; a token is C/PE beats of PE
//   signed W-bit lanes (channel f*PE+l of beat f at tdata[l*W +: W]).
// Output: one vector per frame, C/PE beats of PE signed OW-bit lanes,
//   OW = W + clog2(T): lane = sum over the T tokens of that channel (exact,
//   no overflow possible). The division by T is NOT done here: it is folded
//   downstream (into the classifier's scale / thresholds), so the result
//   stays an exact integer.
// Ports: clk, rst (active-high synchronous); s_axis_tdata[PE*W-1:0],
//   m_axis_tdata[PE*OW-1:0], no tlast.
// Timing: the output beats leave through one output register while the last
//   token of the frame streams in (output beat f is issued with input beat f
//   of token T-1): one input beat per cycle, latency 1 cycle from the last
//   token's beat, no stall between frames. Storage: C*OW bits of
//   accumulators (flip-flops).
module stream_token_pool #(
    parameter int T  = 4,
    parameter int C  = 8,
    parameter int PE = 1,
    parameter int W  = 8,
    localparam int OW = W + $clog2(T)
) (
    input  logic             clk,
    input  logic             rst,
    input  logic [PE*W-1:0]  s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [PE*OW-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready
);
    localparam int NF = C / PE;               // beats per token
    localparam int FW = $clog2(NF + 1);
    localparam int TW = $clog2(T + 1);

    generate
        if (C % PE != 0 || T < 1 || W < 1) begin : g_bad_params
            $error("stream_token_pool: PE must divide C, T >= 1, W >= 1");
        end
    endgenerate

    logic [PE*OW-1:0] acc [NF];
    logic [FW-1:0]    fold;
    logic [TW-1:0]    tok;
    wire last_tok = (tok == TW'(T - 1));

    assign s_axis_tready = !last_tok || !m_axis_tvalid || m_axis_tready;
    wire go = s_axis_tvalid && s_axis_tready;

    logic [PE*OW-1:0] sum;
    always_comb begin
        for (int l = 0; l < PE; l++) begin
            sum[l*OW +: OW] = ((tok == '0) ? OW'(0) : acc[int'(fold)][l*OW +: OW])
                            + OW'($signed(s_axis_tdata[l*W +: W]));
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            fold <= '0; tok <= '0; m_axis_tvalid <= 1'b0;
        end else begin
            if (go) begin
                if (fold == FW'(NF - 1)) begin
                    fold <= '0;
                    tok  <= last_tok ? '0 : tok + 1'b1;
                end else begin
                    fold <= fold + 1'b1;
                end
            end
            if (go && last_tok) m_axis_tvalid <= 1'b1;
            else if (m_axis_tready) m_axis_tvalid <= 1'b0;
        end
        if (go && !last_tok) acc[int'(fold)] <= sum;
        if (go && last_tok) m_axis_tdata <= sum;
    end
endmodule
