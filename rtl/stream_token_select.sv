// stream_token_select -- keep one token of every frame of a token stream
// (DeiT's CLS-token readout: Touvron et al., ICML 2021).
//
// Stream format (in and out): a token is C channels as C/PE beats of PE
//   W-bit lanes (channel f*PE+l of beat f at tdata[l*W +: W], LSB-first, the
//   FINN packing). An input frame is T tokens; the output frame is token
//   INDEX of it (C/PE beats, unchanged); the other tokens are consumed and
//   dropped.
// Ports: clk, rst (active-high synchronous); s_axis_*, m_axis_* with
//   tdata[PE*W-1:0], no tlast. Dropped beats are accepted whatever the
//   output does. Position restarts at token 0 after reset.
// Timing: one output register (latency 1 cycle), one input beat per cycle:
//   T * C / PE cycles per frame.
// Errors: elaboration $error if PE does not divide C, or INDEX is not in
//   [0, T).
module stream_token_select #(
    parameter int T     = 4,
    parameter int C     = 8,
    parameter int PE    = 1,
    parameter int W     = 8,
    parameter int INDEX = 0
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
    localparam int NB = T * F;                // input beats per frame
    localparam int BW = $clog2(NB + 1);

    generate
        if (C % PE != 0 || T < 1 || W < 1 || PE < 1 || INDEX < 0 || INDEX >= T) begin : g_bad_params
            $error("stream_token_select: PE must divide C, 0 <= INDEX < T");
        end
    endgenerate

    logic [BW-1:0] beat;
    logic keep;
    if (INDEX == 0) begin : g_first
        assign keep = (beat < BW'(F));
    end else begin : g_index
        assign keep = (beat >= BW'(INDEX * F)) && (beat < BW'((INDEX + 1) * F));
    end
    wire load = !m_axis_tvalid || m_axis_tready;      // output register free
    assign s_axis_tready = keep ? load : 1'b1;
    wire go = s_axis_tvalid && s_axis_tready;

    always_ff @(posedge clk) begin
        if (rst) begin
            beat <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (load) m_axis_tvalid <= go && keep;
            if (go) beat <= (beat == BW'(NB - 1)) ? '0 : beat + 1'b1;
        end
        if (go && keep) m_axis_tdata <= s_axis_tdata;
    end
endmodule
