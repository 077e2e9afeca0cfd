// stream_token_insert -- prepend N constant tokens to every frame of a token
// stream (DeiT's CLS token: Touvron et al., ICML 2021).
//
// Stream format (in and out): a token is C channels as C/PE beats of PE
//   W-bit lanes (channel f*PE+l of beat f at tdata[l*W +: W], LSB-first, the
//   FINN packing). An input frame is T tokens; the output frame is the N
//   constant tokens followed by the T input tokens, unchanged.
// Constants: TOKENS holds the N*C lanes, token-major (lane n*C + c at bits
//   [(n*C + c)*W +: W]), so output beat b < N*C/PE is TOKENS[b*PE*W +: PE*W].
// Ports: clk, rst (active-high synchronous); s_axis_*, m_axis_* with
//   tdata[PE*W-1:0], no tlast. The constant beats of a frame go out once
//   the frame's first input beat is valid (it waits, not consumed, in
//   s_axis_tdata meanwhile); the input is not ready while they go out. Position restarts at the first constant beat after reset.
// Timing: one output register (latency 1 cycle), one beat per cycle:
//   (N + T) * C / PE cycles per frame.
// Errors: elaboration $error if PE does not divide C, or N, T or W < 1.
module stream_token_insert #(
    parameter int T  = 4,
    parameter int N  = 1,
    parameter int C  = 8,
    parameter int PE = 1,
    parameter int W  = 8,
    parameter logic [N*C*W-1:0] TOKENS = '0
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
    localparam int F  = C / PE;               // beats per token
    localparam int NB = (N + T) * F;          // output beats per frame
    localparam int NC = N * F;                // constant beats per frame
    localparam int BW = $clog2(NB + 1);

    generate
        if (C % PE != 0 || N < 1 || T < 1 || W < 1 || PE < 1) begin : g_bad_params
            $error("stream_token_insert: PE must divide C; N, T, W >= 1");
        end
    endgenerate

    logic [BW-1:0] beat;
    wire in_const = (beat < BW'(NC));
    wire load     = !m_axis_tvalid || m_axis_tready;   // output register free
    assign s_axis_tready = load && !in_const;
    // a frame's constant beats start once its first input beat is offered
    // (so no frame is begun that has no input, and the output of n input
    // frames is exactly n output frames)
    wire go = load && (in_const ? (beat != '0 || s_axis_tvalid) : s_axis_tvalid);

    // constant beat: a ROM addressed by the low clog2(NC) bits of the beat
    // counter (beat < NC there), one LUT6 per output bit per 64 words
    logic [PE*W-1:0] const_word;
    if (NC == 1) begin : g_one
        assign const_word = TOKENS[PE*W-1:0];
    end else begin : g_rom
        localparam int CW = $clog2(NC);
        logic [PE*W-1:0] words [2**CW];
        for (genvar b = 0; b < 2**CW; b++) begin : g_word
            assign words[b] = (b < NC) ? TOKENS[(b < NC ? b : 0)*PE*W +: PE*W] : '0;
        end
        assign const_word = words[beat[CW-1:0]];
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            beat <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (load) m_axis_tvalid <= go;
            if (go) beat <= (beat == BW'(NB - 1)) ? '0 : beat + 1'b1;
        end
        if (go) m_axis_tdata <= in_const ? const_word : s_axis_tdata;
    end
endmodule
