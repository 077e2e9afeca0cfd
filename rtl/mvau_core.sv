// mvau_core: folded matrix-vector(-threshold) unit shared by mvau_xnor and mvau_int.
//
// Use the wrappers (mvau_xnor.sv, mvau_int.sv); they document the semantics
// and compute ACC_W. This core holds the control, memories and pipeline.
//
// Folding (FINN's rule): NF = MH/PE output folds, SF = MW/SIMD input folds.
// Per input vector the core runs NF*SF steps; step (nf, sf) multiplies the
// SIMD activations of input beat sf with the PE x SIMD weights of word
// nf*SF+sf and adds the PE partial sums into PE accumulators. The input beat
// is taken from s_axis during the nf=0 pass and written into an SF-deep
// buffer that the passes nf=1..NF-1 read back; the nf=0 pass of the next
// vector follows the last pass of the current one with no gap.
//
// Pipeline (one global enable en; en = !skid_valid is a register, so no
// combinational path runs from m_axis_tready to s_axis_tready):
//   issue  counters, input buffer write/read, weight ROM read
//   S1     weight word (block RAM, integer mode) or weight ROM address (XNOR
//          LUT ROM, the word then read combinationally in S2) + activation
//          beat registered
//   S2     PE partial dot products (XNOR + popcount / adder trees) registered
//   S3     PE accumulators; threshold ROM word for this nf registered
//   S4     output value: accumulator (raw) or threshold count, registered
//   out    2-entry skid buffer (m_axis register + skid register)
// Latency from the last input beat of a vector to its first output beat is
// 5 cycles; throughput is one step per cycle without backpressure.
// With a LUT ROM (mvau_rom RAM_STYLE "distributed", REG_ADDR) each XNOR lane
// is one LUT of the ROM address bits and the activation bit. With one
// threshold per channel (N_THRESH = 1) the threshold (its ROM addressed in
// S1) is folded into the accumulator's start value and the output bit is the
// accumulator's sign: no comparator.
//
// Lanes are packed LSB-first: activation s of a beat at [s*IN_W +: IN_W],
// output channel pe of a beat at [pe*OUT_W +: OUT_W].
module mvau_core #(
    parameter int unsigned MW = 8,          // input vector length
    parameter int unsigned MH = 8,          // output channels
    parameter int unsigned PE = 1,          // output channels per cycle, divides MH
    parameter int unsigned SIMD = 1,        // inputs per cycle, divides MW
    parameter bit          XNOR = 1,        // 1: binary x binary XNOR-popcount; 0: integer
    parameter bit          XNOR_BIPOLAR = 0,// XNOR: 0 = popcount, 1 = 2*popcount - MW
    parameter int unsigned IN_W = 1,        // activation bits
    parameter bit          IN_SIGNED = 0,   // activations are two's complement
    parameter int unsigned W_W = 1,         // weight bits (1 = bipolar +-1 in integer mode)
    parameter bit          W_SIGNED = 1,    // weights (W_W > 1) are two's complement
    parameter bit          USE_DSP = 1,     // W_W > 1: 1 = x*w (DSP48), 0 = shift-add over the IN_W activation bits (LUTs)
    parameter bit          DSP_PACK = 0,    // USE_DSP: two channels' products of one activation in one multiplier
    parameter int unsigned ACC_W = 8,       // accumulator bits (signed)
    parameter int unsigned N_THRESH = 0,    // 0: raw accumulator output; else thresholds/channel
    parameter string       WEIGHTS_FILE = "",
    parameter string       THRESHOLDS_FILE = "",
    parameter string       RAM_STYLE = "auto",
    parameter string       THRESH_RAM_STYLE = "distributed",
    localparam int unsigned T_W = ACC_W + 1,
    localparam int unsigned OUT_W = N_THRESH > 0 ? $clog2(N_THRESH + 1) : ACC_W
) (
    input  logic                     clk,
    input  logic                     rst,
    input  logic [SIMD*IN_W-1:0]     s_axis_tdata,
    input  logic                     s_axis_tvalid,
    output logic                     s_axis_tready,
    output logic [PE*OUT_W-1:0]      m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready
);
    localparam int unsigned NF = MH / PE;
    localparam int unsigned SF = MW / SIMD;
    localparam int unsigned WMEM = NF * SF;
    localparam int unsigned NF_W = NF > 1 ? $clog2(NF) : 1;
    localparam int unsigned SF_W = SF > 1 ? $clog2(SF) : 1;
    localparam int unsigned WA_W = WMEM > 1 ? $clog2(WMEM) : 1;
    // Partial sum of one step and one PE.
    localparam int unsigned P_W = XNOR ? $clog2(SIMD + 1) + 1
                                       : (W_W == 1 ? IN_W + 1 : IN_W + W_W + 2) + $clog2(SIMD) + 1;
    // ram_style "auto": block RAM for deep memories (FINN's rule of thumb for
    // embedded weights: more than 128 words), LUT-RAM otherwise.
    localparam string W_STYLE = RAM_STYLE != "auto" ? RAM_STYLE : (WMEM > 128 ? "block" : "distributed");

    initial begin
        if (MH % PE != 0) $error("mvau_core: PE=%0d must divide MH=%0d", PE, MH);
        if (MW % SIMD != 0) $error("mvau_core: SIMD=%0d must divide MW=%0d", SIMD, MW);
        if (XNOR && (IN_W != 1 || W_W != 1)) $error("mvau_core: XNOR mode needs IN_W=W_W=1");
        if (DSP_PACK && (XNOR || W_W < 2 || !USE_DSP || PE % 2 != 0 || IN_W + 2 * W_W + 3 > 25))
            $error("mvau_core: DSP_PACK needs integer W_W > 1, USE_DSP, even PE and IN_W + 2*W_W + 3 <= 25");
    end

    // ------------------------------------------------------------------ issue
    logic en;                               // pipeline advances
    logic [SF_W-1:0] sf;
    logic [NF_W-1:0] nf;
    logic [WA_W-1:0] waddr;
    logic need_in, issue;
    assign need_in = (nf == '0);
    assign issue = en && (!need_in || s_axis_tvalid);
    assign s_axis_tready = en && need_in;

    always_ff @(posedge clk) begin
        if (rst) begin
            sf <= '0;
            nf <= '0;
            waddr <= '0;
        end else if (issue) begin
            if (sf == SF_W'(SF - 1)) begin
                sf <= '0;
                nf <= (nf == NF_W'(NF - 1)) ? '0 : nf + 1'b1;
            end else begin
                sf <= sf + 1'b1;
            end
            waddr <= (waddr == WA_W'(WMEM - 1)) ? '0 : waddr + 1'b1;
        end
    end

    // Input buffer: the SF beats of the current vector, reused NF times.
    logic [SIMD*IN_W-1:0] ibuf [SF];
    always_ff @(posedge clk) begin
        if (issue && need_in) ibuf[sf] <= s_axis_tdata;
    end

    // --------------------------------------------------------------------- S1
    logic [PE*SIMD*W_W-1:0] w1;
    // XNOR: address register, so the ROM merges into each lane's XNOR LUT
    mvau_rom #(.DEPTH(WMEM), .WIDTH(PE*SIMD*W_W), .INIT_FILE(WEIGHTS_FILE), .RAM_STYLE(W_STYLE), .REG_ADDR(XNOR)) u_wmem (
        .clk(clk), .en(en), .addr(waddr), .rdata(w1)
    );
    logic [SIMD*IN_W-1:0] a1;
    logic v1, first1, last1;
    logic [NF_W-1:0] nf1;
    always_ff @(posedge clk) begin
        if (en) begin
            a1 <= need_in ? s_axis_tdata : ibuf[sf];
            first1 <= (sf == '0);
            last1 <= (sf == SF_W'(SF - 1));
            nf1 <= nf;
        end
    end
    always_ff @(posedge clk) begin
        if (rst) v1 <= 1'b0;
        else if (en) v1 <= issue;
    end

    // DSP packing (USE_DSP && DSP_PACK): channels 2k and 2k+1 multiply the
    // same activation x, so one multiplier computes x * (w0 + w1 * 2^F) =
    // x*w0 + (x*w1) * 2^F with F = MUL_W bits per field (IN_W + W_W + 2 >=
    // the signed product's width); the low field is x*w0 (signed), the high
    // field x*w1 minus the borrow of a negative low field. The operands fit
    // one DSP48E1 (25 x 18) for IN_W + 2*W_W + 3 <= 25, e.g. 4-bit x 8-bit.
    localparam int unsigned MUL_W = IN_W + W_W + 2;
    logic signed [MUL_W-1:0] pk [PE][SIMD];
    if (!XNOR && W_W > 1 && USE_DSP && DSP_PACK) begin : g_pack
        for (genvar pp = 0; pp < PE / 2; pp++) begin : g_pair
            for (genvar s = 0; s < SIMD; s++) begin : g_lane
                logic [IN_W-1:0] a;
                logic [W_W-1:0] w0, w1v;
                logic signed [IN_W:0] ax;
                logic signed [W_W:0] wx0, wx1;
                logic signed [MUL_W + W_W:0] wpk;            // w0 + w1 * 2^F
                logic signed [MUL_W + W_W + IN_W + 1:0] p;   // x * wpk
                assign a = a1[s*IN_W +: IN_W];
                assign w0 = w1[((2*pp)*SIMD+s)*W_W +: W_W];
                assign w1v = w1[((2*pp+1)*SIMD+s)*W_W +: W_W];
                assign ax = IN_SIGNED ? $signed({a[IN_W-1], a}) : $signed({1'b0, a});
                assign wx0 = W_SIGNED ? $signed({w0[W_W-1], w0}) : $signed({1'b0, w0});
                assign wx1 = W_SIGNED ? $signed({w1v[W_W-1], w1v}) : $signed({1'b0, w1v});
                assign wpk = ($signed(wx1) <<< MUL_W) + wx0;
                assign p = ax * wpk;
                assign pk[2*pp][s] = p[MUL_W-1:0];
                assign pk[2*pp+1][s] = p[2*MUL_W-1:MUL_W] + MUL_W'(p[MUL_W-1]);
            end
        end
    end else begin : g_nopack
        assign pk = '{default: '0};
    end

    // --------------------------------------------------------------------- S2
    logic [PE-1:0][P_W-1:0] p2_d, p2;
    logic v2, first2, last2;
    // nf2 addresses the threshold memory; unused in raw-accumulator mode.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [NF_W-1:0] nf2;
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar pe = 0; pe < PE; pe++) begin : g_dot
        if (XNOR) begin : g_xnor
            logic [SIMD-1:0] match;
            assign match = ~(w1[pe*SIMD +: SIMD] ^ a1);
            mvau_addtree #(.N(SIMD), .IW(1), .OW(P_W), .SIGNED(0), .POPCOUNT(1)) u_pop (
                .d(match), .sum(p2_d[pe])
            );
        end else begin : g_int
            localparam int unsigned PR_W = W_W == 1 ? IN_W + 1 : IN_W + W_W + 2;
            logic [SIMD-1:0][PR_W-1:0] prod;
            for (genvar s = 0; s < SIMD; s++) begin : g_lane
                logic [IN_W-1:0] a;
                logic [W_W-1:0] w;
                logic signed [IN_W:0] ax;   // activation extended by one bit
                assign a = a1[s*IN_W +: IN_W];
                assign w = w1[(pe*SIMD+s)*W_W +: W_W];
                assign ax = IN_SIGNED ? $signed({a[IN_W-1], a}) : $signed({1'b0, a});
                if (W_W == 1) begin : g_bip
                    // bipolar weight: bit 1 = +1, bit 0 = -1 (add / subtract, no multiplier)
                    assign prod[s] = w[0] ? PR_W'(ax) : PR_W'(-ax);
                end else begin : g_mul
                    logic signed [W_W:0] wx;
                    assign wx = W_SIGNED ? $signed({w[W_W-1], w}) : $signed({1'b0, w});
                    if (USE_DSP && DSP_PACK) begin : g_packed
                        assign prod[s] = PR_W'(pk[pe][s]);
                    end else if (USE_DSP) begin : g_dsp
                        assign prod[s] = PR_W'(ax * wx);
                    end else begin : g_lut
                        // x * w = sum_b x[b] * (w << b), the MSB term negative
                        // for signed x: IN_W partial products, no multiplier.
                        logic signed [PR_W-1:0] part [IN_W+1];
                        assign part[0] = '0;
                        for (genvar b = 0; b < IN_W; b++) begin : g_pp
                            logic signed [PR_W-1:0] term;
                            assign term = a[b] ? PR_W'(wx) <<< b : '0;
                            if (IN_SIGNED && b == IN_W - 1) begin : g_neg
                                assign part[b+1] = part[b] - term;
                            end else begin : g_pos
                                assign part[b+1] = part[b] + term;
                            end
                        end
                        assign prod[s] = part[IN_W];
                    end
                end
            end
            mvau_addtree #(.N(SIMD), .IW(PR_W), .OW(P_W), .SIGNED(1)) u_sum (.d(prod), .sum(p2_d[pe]));
        end
    end
    always_ff @(posedge clk) begin
        if (en) begin
            p2 <= p2_d;
            first2 <= first1;
            last2 <= last1;
            nf2 <= nf1;
        end
    end
    always_ff @(posedge clk) begin
        if (rst) v2 <= 1'b0;
        else if (en) v2 <= v1;
    end

    // --------------------------------------------------------------------- S3
    logic v3;
    always_ff @(posedge clk) begin
        if (rst) v3 <= 1'b0;
        else if (en) v3 <= v2 && last2;
    end
    // --------------------------------------------------------------------- S4
    logic [PE-1:0][OUT_W-1:0] o4_d, o4;
    logic v4;
    if (N_THRESH == 1) begin : g_fused
        // One threshold per channel: the accumulator starts at -t instead of
        // 0, so the output bit is its sign (acc >= t <=> acc - t >= 0) and
        // no comparator follows it; the threshold ROM (addressed one stage
        // early, by nf1) and the accumulator's start-value multiplexer merge
        // into the adder's LUTs. In bipolar XNOR mode the threshold t on
        // 2p - MW becomes ceil((t + MW) / 2) on the popcount p. t is clamped
        // to the accumulator's range plus one (a constant function of the ROM
        // address, so free), which keeps acc - t within ACC_W bits for a
        // popcount in [0, MW] and ACC_W + 1 bits for a signed accumulator.
        localparam int unsigned D_W = XNOR ? ACC_W : ACC_W + 1;
        localparam int signed T_LO = XNOR ? 0 : -(2 ** (ACC_W - 1));
        localparam int signed T_HI = XNOR ? MW + 1 : 2 ** (ACC_W - 1);
        logic [PE*T_W-1:0] t2;
        mvau_rom #(.DEPTH(NF), .WIDTH(PE*T_W), .INIT_FILE(THRESHOLDS_FILE), .RAM_STYLE(THRESH_RAM_STYLE), .REG_ADDR(1)) u_tmem (
            .clk(clk), .en(en), .addr(nf1), .rdata(t2)
        );
        for (genvar pe = 0; pe < PE; pe++) begin : g_pe
            logic signed [T_W+1:0] tr, tb, tc;
            logic signed [D_W-1:0] start, pext, dacc;
            assign tr = (T_W+2)'($signed(t2[pe*T_W +: T_W]));
            // MW is unsigned: cast, or the sum (and its shift) would be unsigned
            assign tb = (XNOR && XNOR_BIPOLAR) ? (tr + $signed((T_W+2)'(MW + 1))) >>> 1 : tr;
            assign tc = tb < (T_W+2)'(T_LO) ? (T_W+2)'(T_LO) : (tb > (T_W+2)'(T_HI) ? (T_W+2)'(T_HI) : tb);
            assign start = D_W'(-tc);
            // popcounts are unsigned, integer partial sums signed
            assign pext = XNOR ? D_W'(p2[pe]) : D_W'($signed(p2[pe]));
            always_ff @(posedge clk) begin
                if (en && v2) dacc <= (first2 ? start : dacc) + pext;
            end
            assign o4_d[pe] = OUT_W'(!dacc[D_W-1]);
        end
    end else begin : g_acc
        logic [PE-1:0][ACC_W-1:0] acc;
        for (genvar pe = 0; pe < PE; pe++) begin : g_pe
            logic [ACC_W-1:0] pext;
            // popcounts are unsigned, integer partial sums signed
            assign pext = XNOR ? ACC_W'(p2[pe]) : ACC_W'($signed(p2[pe]));
            always_ff @(posedge clk) begin
                if (en && v2) acc[pe] <= (first2 ? '0 : acc[pe]) + pext;
            end
        end

        // Accumulator value as defined by the mode.
        logic [PE-1:0][ACC_W-1:0] val;
        for (genvar pe = 0; pe < PE; pe++) begin : g_val
            if (XNOR && XNOR_BIPOLAR) begin : g_bip
                assign val[pe] = {acc[pe][ACC_W-2:0], 1'b0} - ACC_W'(MW);
            end else begin : g_raw
                assign val[pe] = acc[pe];
            end
        end

        if (N_THRESH > 0) begin : g_thresh
            localparam int unsigned TA_W = NF > 1 ? $clog2(NF) : 1;
            logic [PE*N_THRESH*T_W-1:0] t3;
            mvau_rom #(.DEPTH(NF), .WIDTH(PE*N_THRESH*T_W), .INIT_FILE(THRESHOLDS_FILE), .RAM_STYLE(THRESH_RAM_STYLE)) u_tmem (
                .clk(clk), .en(en), .addr(TA_W'(nf2)), .rdata(t3)
            );
            for (genvar pe = 0; pe < PE; pe++) begin : g_pe
                logic [N_THRESH-1:0] ge;
                for (genvar i = 0; i < N_THRESH; i++) begin : g_cmp
                    assign ge[i] = $signed(t3[(pe*N_THRESH+i)*T_W +: T_W]) <= $signed(T_W'($signed(val[pe])));
                end
                mvau_addtree #(.N(N_THRESH), .IW(1), .OW(OUT_W), .SIGNED(0), .POPCOUNT(1)) u_cnt (
                    .d(ge), .sum(o4_d[pe])
                );
            end
        end else begin : g_raw
            assign o4_d = val;
        end
    end
    always_ff @(posedge clk) begin
        if (en) o4 <= o4_d;
    end
    always_ff @(posedge clk) begin
        if (rst) v4 <= 1'b0;
        else if (en) v4 <= v3;
    end

    // ---------------------------------------------------------- skid buffer
    logic skid_valid;
    logic [PE*OUT_W-1:0] skid_data;
    logic in_fire;
    assign en = !skid_valid;
    assign in_fire = en && v4;
    always_ff @(posedge clk) begin
        if (rst) begin
            m_axis_tvalid <= 1'b0;
            skid_valid <= 1'b0;
        end else if (!m_axis_tvalid || m_axis_tready) begin
            if (skid_valid) begin
                m_axis_tdata <= skid_data;
                m_axis_tvalid <= 1'b1;
                skid_valid <= 1'b0;
            end else begin
                m_axis_tdata <= o4;
                m_axis_tvalid <= in_fire;
            end
        end else if (in_fire) begin
            skid_data <= o4;
            skid_valid <= 1'b1;
        end
    end
endmodule : mvau_core
