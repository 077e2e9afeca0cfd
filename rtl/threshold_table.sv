// threshold_table -- a MultiThreshold evaluated as a lookup table.
//
// Semantics (FINN MultiThreshold, channels last): for input x of channel c,
//   y = BIAS + #{ i < N : T[c][i] <= x }
// The thresholds are not in the hardware: for a narrow input (WI bits) the
// whole function is tabulated, table[c][x] = y, and each output is one ROM
// read. This replaces finn-rtllib's binary search (clog2(N+1) comparator
// stages and their threshold memories) where the table is small (at most
// twice the thresholds' bits: xnorvit.flows.ops.threshold_table.prefer_table), e.g. the 255-level (8-bit) requantizers after 7-bit
// popcounts: 64 channels x 128 inputs x 8 bits = 2 RAMB36 and a handful of
// LUTs instead of 255 x 64 thresholds in a comparator pipeline.
//
// Streams: s_axis beat = PE inputs of WI bits (LSB-first; two's complement
// if SIGNED_IN), C/PE beats per vector, channel of lane pe in beat cf =
// cf*PE+pe; m_axis beat = PE outputs of WO bits (the table's words). One
// beat per cycle, latency 1 (the ROM's read register is the output
// register). Backpressure stalls the read (clock enable), nothing is lost.
//
// Tables: lane pe reads "<INIT_PREFIX><pe>.hex" ($readmemh, one WO-bit hex
// word per line): C/PE blocks of 2^WI words, block cf for channel cf*PE+pe,
// word i of a block = y for x = i (unsigned) or x = i - 2^(WI-1) (signed,
// i.e. the input with its sign bit flipped is the offset). Address =
// {cf, x ^ sign}, so the ROM holds exactly C/PE * 2^WI words. Written by
// xnorvit.flows.ops.threshold_table.table_hex; an empty INIT_PREFIX leaves
// the tables at zero.
//
// RAM_STYLE: mvau_rom's ("block", "distributed" or "auto").
// Errors: elaboration $error if PE does not divide C, or WI > 16.
module threshold_table #(
    parameter int unsigned C = 64,            // channels
    parameter int unsigned PE = 1,            // channels per beat, divides C
    parameter int unsigned WI = 7,            // input bits
    parameter int unsigned WO = 8,            // output bits
    parameter bit          SIGNED_IN = 0,     // input two's complement
    parameter string       INIT_PREFIX = "",  // table files "<INIT_PREFIX><pe>.hex"
    parameter string       RAM_STYLE = "block"
) (
    input  logic             clk,
    input  logic             rst,
    input  logic [PE*WI-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [PE*WO-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready
);
    localparam int unsigned CF = C / PE;                   // beats per vector
    localparam int unsigned CFW = CF > 1 ? $clog2(CF) : 1;
    localparam int unsigned DEPTH = CF << WI;              // table words per lane
    localparam int unsigned AW = $clog2(DEPTH);

    generate
        if (PE == 0 || C % PE != 0 || WI < 1 || WI > 16 || WO < 1) begin : g_bad_params
            $error("threshold_table: PE must divide C, 1 <= WI <= 16, WO >= 1");
        end
    endgenerate

    // The output register (the ROMs' read registers) is free or drained.
    assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
    wire go = s_axis_tvalid && s_axis_tready;

    always_ff @(posedge clk) begin
        if (rst) m_axis_tvalid <= 1'b0;
        else if (s_axis_tready) m_axis_tvalid <= s_axis_tvalid;
    end

    // channel group of the current beat
    logic [CFW-1:0] cf;
    always_ff @(posedge clk) begin
        if (rst) cf <= '0;
        else if (go) cf <= (CF == 1 || cf == CFW'(CF - 1)) ? '0 : cf + 1'b1;
    end

    for (genvar p = 0; p < PE; p++) begin : g_lane
        wire [WI-1:0] x = s_axis_tdata[p*WI +: WI];
        // offset code: the signed minimum is word 0
        wire [WI-1:0] xo = x ^ (WI'(SIGNED_IN) << (WI - 1));
        // {cf, xo} has one bit too many when CF = 1 (cf is then always 0)
        wire [AW-1:0] addr = AW'({cf, xo});
        mvau_rom #(
            .DEPTH(DEPTH), .WIDTH(WO), .RAM_STYLE(RAM_STYLE),
            .INIT_FILE(INIT_PREFIX == "" ? "" : $sformatf("%s%0d.hex", INIT_PREFIX, p))
        ) u_table (
            .clk(clk), .en(go), .addr(addr), .rdata(m_axis_tdata[p*WO +: WO])
        );
    end
endmodule : threshold_table
