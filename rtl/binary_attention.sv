// binary_attention -- one binary attention head with BiViT softmax-aware
// binarization (ELASTIC = 0) or elastic {0, alpha} probabilities (ELASTIC =
// 1; BiT / BinaryViT), streaming frame after frame (instantiate one per head).
//
// Semantics (integers, per frame of T tokens, head dimension D):
//   Q_i, K_j, V_j in {-1,+1}^D (bit 1 = +1, bit 0 = -1)
//   S[i][j] = Q_i . K_j = 2*popcount(XNOR(Q_i, K_j)) - D        (in [-D, D])
//   P[i][j] = (S[i][j] >= max_j' S[i][j'] - C)                  (C >= 0)
//   O[i][d] = sum_{j : P[i][j] = 1} V_j[d]                       (in [-T, T])
// Implemented on popcounts p = popcount(XNOR): S >= Smax - C  <=>
// p >= pmax - floor(C/2), exactly (p integer), so no signed score is stored.
// Every row has at least one P = 1 (its maximum).
//
// Elastic mode (ELASTIC = 1; C unused): per row, with the popcount gap
// k_j = pmax - p_j in 0..D (score gap 2*k_j) and the exp table TBL,
//   E       = sum_j TBL[k_j]                      (integer, < 2^EW)
//   P[i][j] = (E <= EMAX[k_j])
//   O[i][d] = sum_{j : P[i][j] = 1} V_j[d]        (as above)
// This is the exported model's p = float32(e) / float32(E) >= alpha/2 with
// e = TBL[k_j], exactly: EMAX[k] is the largest E that keeps a key of gap k
// (xnorvit.flows.ops.binary_attention.elastic_row_bounds). A row may keep
// no key (then O_i = 0). EMAX is non-increasing in k, so P[i][j] = 1 <=>
// k_j < KP1 with KP1 = #{k in 0..D : E <= EMAX[k]}, i.e. p_j + KP1 > pmax:
// SAB's comparator p_j + floor(C/2) >= pmax with a per-row bound.
//
// Ports (clk, rst active-high synchronous; AXI-stream without tlast):
//   s_axis_q_*, s_axis_k_*, s_axis_v_*: tdata[D-1:0], one token per beat,
//       bit d = dimension d (LSB-first); T beats per frame on each stream.
//       The three streams are independent (each from its own MVAU) and are
//       each double-buffered inside: the whole next frame of Q, K and V is
//       accepted while the current one is computed, so a lock-step fork
//       upstream of the three MVAUs cannot deadlock (no external Q FIFO).
//   m_axis_*: tdata[D*OW-1:0], one token O_i per beat, lane d (signed,
//       two's complement, OW = clog2(T+1)+1 bits) at tdata[d*OW +: OW];
//       T beats per frame, in token order. Backpressure stalls the kernel,
//       nothing is dropped.
//
// Parameters: T tokens, D head dimension, C margin (>= 0, score units),
//   PAR_T keys per cycle (divides T), PAR_D dimensions per cycle (divides D),
//   ELASTIC (0: SAB with margin C; 1: elastic probabilities),
//   TW bits of an exp-table entry (>= 1), EW = TW + clog2(T) bits of a row sum,
//   TBL[(D+1)*TW]: TBL[k] = TBL[k*TW +: TW] = exp table at popcount gap k
//       (score gap 2k), non-increasing in k,
//   EMAX[(D+1)*EW]: EMAX[k] = EMAX[k*EW +: EW], non-increasing in k.
//   TW, TBL and EMAX are unused when ELASTIC = 0.
//
// Micro-architecture: two stages (three in elastic mode) joined by an
// SB-bank score buffer (SB = 3; elastic mode: below).
//   A (scores)  for each query row i: for jg < T/PAR_T, dg < D/PAR_D:
//               PAR_T XNOR-popcounts of PAR_D bits, accumulated over dg;
//               the row's T popcounts and their maximum go to a score bank.
//   B (outputs) for each row: for dg < D/PAR_D, jg < T/PAR_T: binarize
//               PAR_T scores against the row maximum and add the selected
//               +-1 V bits into PAR_D accumulators; after the jg loop the
//               PAR_D lanes of O_i are final. A row ends in a 2-entry output
//               buffer (credit-checked before the row starts).
//   M (bounds)  elastic mode only, between A and B: for each complete
//               score bank, in row order, read its NJ = T/PAR_T words (a
//               second read port) one per cycle, add the PAR_T table values
//               TBL[pmax - p] of each word into E; one cycle after the row's
//               last word E is final (register), the next cycle counts
//               KP1 = #{k : E <= EMAX[k]} into the bank's KP1 register and
//               marks the bank done. B starts a row only on a done bank and
//               keeps key j iff p_j + KP1 > pmax.
// Stages A and B take N = (T/PAR_T)*(D/PAR_D) cycles per row and overlap (B
// works on row i-1 while A computes row i), and input banks are released
// with the last read of a frame; stage M takes NJ <= N cycles per row, and
// elastic mode has SB = 2 + ceil((NJ+3)/N) score banks (3 when N >= NJ+3,
// at most 6) so that A never waits for B to free a bank. So with inputs
// always valid and the output always ready:
//     cycles per frame (steady state) = T * (T/PAR_T) * (D/PAR_D)  (both modes)
//     latency from the last input beat of a frame to its first output beat
//         = 2*N + 3 cycles when the pipeline is idle (bank-full flag 1,
//           A issue N + compute 1, B issue N + compute 1; B finishes O_0's
//           last dimension group only at the end of its row);
//         = 2*N + NJ + 5 cycles in elastic mode (M adds: issue NJ + sum 1 +
//           bound 1).
// Throughput is bounded below by T cycles per frame (one token per cycle
// per input stream); at full parallelism (N = 1) the loaders and the compute
// both run at exactly T cycles per frame.
//
// Storage: Q, K, V 2 banks x T x D bits each (LUTRAM/BRAM); scores
// SB x T x clog2(D+1) bits (elastic: two read ports); output 2 x D x OW bits
// of flip-flops. Elastic mode adds SB x clog2(D+2) bits of KP1 and an EW-bit
// row-sum register.
// Errors: elaboration $error if PAR_T does not divide T, PAR_D does not
// divide D, C < 0, ELASTIC is not 0 or 1, or (elastic) TW < 1 or TBL or
// EMAX increases with k.
module binary_attention #(
    parameter int T     = 49,
    parameter int D     = 32,
    parameter int C     = 1,
    parameter int PAR_T = 7,
    parameter int PAR_D = 8,
    parameter int ELASTIC = 0,
    parameter int TW    = 17,
    localparam int EW   = TW + $clog2(T),
    parameter logic [(D+1)*TW-1:0] TBL  = '0,
    parameter logic [(D+1)*EW-1:0] EMAX = '0,
    localparam int OW   = $clog2(T + 1) + 1
) (
    input  logic            clk,
    input  logic            rst,
    input  logic [D-1:0]    s_axis_q_tdata,
    input  logic            s_axis_q_tvalid,
    output logic            s_axis_q_tready,
    input  logic [D-1:0]    s_axis_k_tdata,
    input  logic            s_axis_k_tvalid,
    output logic            s_axis_k_tready,
    input  logic [D-1:0]    s_axis_v_tdata,
    input  logic            s_axis_v_tvalid,
    output logic            s_axis_v_tready,
    output logic [D*OW-1:0] m_axis_tdata,
    output logic            m_axis_tvalid,
    input  logic            m_axis_tready
);
    localparam int NJ  = T / PAR_T;            // key groups per row
    localparam int ND  = D / PAR_D;            // dimension groups per row
    localparam int N_ROW = NJ * ND;            // cycles per row (N)
    localparam int PW  = $clog2(D + 1);        // popcount width (0..D)
    localparam int C2  = C / 2;                // margin in popcount units
    localparam int RW  = $clog2(T + 1);        // row counter width
    localparam int JW  = $clog2(NJ + 1);       // key-group counter width
    localparam int DW  = $clog2(ND + 1);       // dim-group counter width
    localparam int QAW = $clog2(T + 1);        // Q buffer address width (L=1)
    localparam int NPW = $clog2(PAR_T + 1);    // width of a count over PAR_T
    localparam int KW  = $clog2(D + 2);        // width of KP1 (0..D+1)
    // score banks: A starts a bank's next row (SB-1)*N - 1 cycles after the
    // bank's row is complete, B frees it N (elastic: N + NJ + 2) cycles
    // after; no stall iff (SB-2)*N >= 1 (elastic: NJ + 3)
    localparam int SB  = (ELASTIC != 0) ? 2 + (NJ + 3 + N_ROW - 1) / N_ROW : 3;
    localparam int SBW = $clog2(SB);           // bank index width

    generate
        if (T % PAR_T != 0 || D % PAR_D != 0 || PAR_T < 1 || PAR_D < 1) begin : g_bad_par
            $error("binary_attention: PAR_T must divide T and PAR_D must divide D");
        end
        if (C < 0) begin : g_bad_c
            $error("binary_attention: C must be >= 0");
        end
        if (ELASTIC != 0 && ELASTIC != 1) begin : g_bad_elastic
            $error("binary_attention: ELASTIC must be 0 or 1");
        end
        if (ELASTIC != 0 && TW < 1) begin : g_bad_tw
            $error("binary_attention: TW must be >= 1");
        end
        if (ELASTIC != 0 && TW >= 1) begin : g_chk_tables
            for (genvar k = 1; k <= D; k++) begin : g_k
                if (TBL[k*TW +: TW] > TBL[(k-1)*TW +: TW]) begin : g_bad_tbl
                    $error("binary_attention: TBL must be non-increasing in k");
                end
                if (EMAX[k*EW +: EW] > EMAX[(k-1)*EW +: EW]) begin : g_bad_emax
                    $error("binary_attention: EMAX must be non-increasing in k");
                end
            end
        end
    endgenerate

    // ------------------------------------------------------------------
    // Frame buffers
    // ------------------------------------------------------------------
    logic                 q_full, k_full, v_full;
    logic                 q_release, v_release;
    logic [QAW-1:0]       q_addr;
    logic [JW-1:0]        k_addr, v_addr;
    logic [D-1:0]         q_rd;
    logic [PAR_T*D-1:0]   k_rd, v_rd;

    attn_frame_buffer #(.T(T), .D(D), .L(1)) u_qbuf (
        .clk, .rst,
        .s_axis_tdata(s_axis_q_tdata), .s_axis_tvalid(s_axis_q_tvalid), .s_axis_tready(s_axis_q_tready),
        .rd_full(q_full), .rd_addr(q_addr), .rd_data(q_rd), .rd_release(q_release));
    attn_frame_buffer #(.T(T), .D(D), .L(PAR_T)) u_kbuf (
        .clk, .rst,
        .s_axis_tdata(s_axis_k_tdata), .s_axis_tvalid(s_axis_k_tvalid), .s_axis_tready(s_axis_k_tready),
        .rd_full(k_full), .rd_addr(k_addr), .rd_data(k_rd), .rd_release(q_release));
    attn_frame_buffer #(.T(T), .D(D), .L(PAR_T)) u_vbuf (
        .clk, .rst,
        .s_axis_tdata(s_axis_v_tdata), .s_axis_tvalid(s_axis_v_tvalid), .s_axis_tready(s_axis_v_tready),
        .rd_full(v_full), .rd_addr(v_addr), .rd_data(v_rd), .rd_release(v_release));

    // ------------------------------------------------------------------
    // Score buffer: SB banks x NJ words x PAR_T popcounts, plus row maxima
    // ------------------------------------------------------------------
    logic [PAR_T*PW-1:0] smem [SB*NJ];
    logic [PW-1:0]       pmax [SB];
    logic [SB-1:0]       sfull;

    function automatic logic [SBW-1:0] inc_bank(input logic [SBW-1:0] b);
        return (b == SBW'(SB - 1)) ? SBW'(0) : b + SBW'(1);
    endfunction

    // ------------------------------------------------------------------
    // Stage A: scores. Issue (cycle 0) reads Q and K; cycle 1 computes.
    // ------------------------------------------------------------------
    logic [RW-1:0] a_row;
    logic [JW-1:0] a_jg;
    logic [DW-1:0] a_dg;
    logic [SBW-1:0] a_sb;
    wire a_inrow   = (a_jg != '0) || (a_dg != '0);
    wire a_go      = a_inrow || (q_full && k_full && !sfull[a_sb]);
    wire a_dlast   = (a_dg == DW'(ND - 1));
    wire a_lastit  = a_dlast && (a_jg == JW'(NJ - 1));
    assign q_release = a_go && a_lastit && (a_row == RW'(T - 1));
    assign q_addr = QAW'(a_row);
    assign k_addr = a_jg;

    always_ff @(posedge clk) begin
        if (rst) begin
            a_row <= '0; a_jg <= '0; a_dg <= '0; a_sb <= '0;
        end else if (a_go) begin
            a_dg <= a_dlast ? '0 : a_dg + 1'b1;
            if (a_dlast) a_jg <= a_lastit ? '0 : a_jg + 1'b1;
            if (a_lastit) begin
                a_row <= (a_row == RW'(T - 1)) ? '0 : a_row + 1'b1;
                a_sb  <= inc_bank(a_sb);
            end
        end
    end

    logic          a1_v, a1_dlast, a1_rowlast;
    logic [JW-1:0] a1_jg;
    logic [DW-1:0] a1_dg;
    logic [SBW-1:0] a1_sb;
    always_ff @(posedge clk) begin
        if (rst) a1_v <= 1'b0;
        else     a1_v <= a_go;
        a1_jg <= a_jg; a1_dg <= a_dg; a1_sb <= a_sb;
        a1_dlast <= a_dlast; a1_rowlast <= a_lastit;
    end

    logic [PW-1:0] a_pacc [PAR_T];     // partial popcounts over dim groups
    logic [PW-1:0] a_sum  [PAR_T];
    logic [PW-1:0] a_blkmax, a_rowmax, a_runmax;
    logic [PAR_D-1:0] a_q;

    always_comb begin
        a_q = q_rd[int'(a1_dg)*PAR_D +: PAR_D];
        for (int t = 0; t < PAR_T; t++) begin
            logic [PAR_D-1:0] x;
            logic [PW-1:0] pc;
            x = ~(a_q ^ k_rd[t*D + int'(a1_dg)*PAR_D +: PAR_D]);
            pc = '0;
            for (int b = 0; b < PAR_D; b++) pc = pc + PW'(x[b]);
            a_sum[t] = ((a1_dg == '0) ? '0 : a_pacc[t]) + pc;
        end
        a_blkmax = a_sum[0];
        for (int t = 1; t < PAR_T; t++) if (a_sum[t] > a_blkmax) a_blkmax = a_sum[t];
        a_rowmax = (a1_jg != '0 && a_runmax > a_blkmax) ? a_runmax : a_blkmax;
    end

    logic [PAR_T*PW-1:0] a_word;
    always_comb for (int t = 0; t < PAR_T; t++) a_word[t*PW +: PW] = a_sum[t];

    always_ff @(posedge clk) begin
        if (a1_v) begin
            for (int t = 0; t < PAR_T; t++) a_pacc[t] <= a_sum[t];
            if (a1_dlast) begin
                smem[int'(a1_sb)*NJ + int'(a1_jg)] <= a_word;
                a_runmax <= a_rowmax;
            end
            if (a1_rowlast) pmax[a1_sb] <= a_rowmax;
        end
    end

    // ------------------------------------------------------------------
    // Stage B: outputs. Issue (cycle 0) reads V and scores; cycle 1 adds.
    // ------------------------------------------------------------------
    logic [RW-1:0] b_row;
    logic [JW-1:0] b_jg;
    logic [DW-1:0] b_dg;
    logic [SBW-1:0] b_sb;
    logic          b_rdy;     // B's bank is ready (SAB: full; elastic: KP1 done)
    logic [1:0]    oused;     // rows started by B and not yet popped (<= 2)
    logic [1:0]    ocount;    // rows complete in the output buffer
    logic          owp, orp;
    logic [D*OW-1:0] out_mem [2];
    wire pop      = m_axis_tvalid && m_axis_tready;
    wire b_inrow  = (b_jg != '0) || (b_dg != '0);
    wire b_start  = !b_inrow && b_rdy && v_full && (oused != 2'd2 || pop);
    wire b_go     = b_inrow || b_start;
    wire b_jlast  = (b_jg == JW'(NJ - 1));
    wire b_lastit = b_jlast && (b_dg == DW'(ND - 1));
    assign v_release = b_go && b_lastit && (b_row == RW'(T - 1));
    assign v_addr = b_jg;

    always_ff @(posedge clk) begin
        if (rst) begin
            b_row <= '0; b_jg <= '0; b_dg <= '0; b_sb <= '0;
        end else if (b_go) begin
            b_jg <= b_jlast ? '0 : b_jg + 1'b1;
            if (b_jlast) b_dg <= b_lastit ? '0 : b_dg + 1'b1;
            if (b_lastit) begin
                b_row <= (b_row == RW'(T - 1)) ? '0 : b_row + 1'b1;
                b_sb  <= inc_bank(b_sb);
            end
        end
    end

    // Score bank flags: A sets a bank when its row is written, B frees it
    // with the last read of the row (the read issued that cycle still sees
    // the old contents; A cannot write it before the next cycle).
    always_ff @(posedge clk) begin
        if (rst) sfull <= '0;
        else begin
            for (int b = 0; b < SB; b++) begin
                if (a1_v && a1_rowlast && a1_sb == SBW'(b)) sfull[b] <= 1'b1;
                if (b_go && b_lastit && b_sb == SBW'(b))  sfull[b] <= 1'b0;
            end
        end
    end

    logic          b1_v, b1_jfirst, b1_jlast, b1_rowlast;
    logic [DW-1:0] b1_dg;
    logic [PW-1:0] b1_pmax;
    logic [PAR_T*PW-1:0] b1_s;
    always_ff @(posedge clk) begin
        if (rst) b1_v <= 1'b0;
        else     b1_v <= b_go;
        b1_dg <= b_dg; b1_jfirst <= (b_jg == '0); b1_jlast <= b_jlast;
        b1_rowlast <= b_lastit;
        b1_pmax <= pmax[b_sb];
        b1_s <= smem[int'(b_sb)*NJ + int'(b_jg)];
    end

    logic [PAR_T-1:0] b_p;                       // binarized probabilities

    generate
        if (ELASTIC != 0) begin : g_elastic
            // ----------------------------------------------------------
            // Stage M: row sum E and keep bound KP1 per score bank.
            // Issue (cycle 0) reads a score word; cycle 1 adds its table
            // values into E; the cycle after the row's last word counts
            // KP1 from the final E and marks the bank done.
            // ----------------------------------------------------------
            logic [SB-1:0]  mdone;          // KP1 of the bank is ready for B
            logic [KW-1:0]  kmem [SB];
            logic [SBW-1:0] m_sb;
            logic [JW-1:0]  m_jg;
            // M visits the banks in row order. A bank it has just finished
            // still reads full and not done for 3 cycles; M comes back to it
            // only after SB-1 >= 2 other rows of >= 1 cycle each (>= 3 cycles).
            wire m_go   = (m_jg != '0) || (sfull[m_sb] && !mdone[m_sb]);
            wire m_last = (m_jg == JW'(NJ - 1));

            always_ff @(posedge clk) begin
                if (rst) begin
                    m_jg <= '0; m_sb <= '0;
                end else if (m_go) begin
                    m_jg <= m_last ? '0 : m_jg + 1'b1;
                    if (m_last) m_sb <= inc_bank(m_sb);
                end
            end

            logic                m1_v, m1_first, m1_last;
            logic [SBW-1:0]      m1_sb;
            logic [PW-1:0]       m1_pmax;
            logic [PAR_T*PW-1:0] m1_s;
            always_ff @(posedge clk) begin
                if (rst) m1_v <= 1'b0;
                else     m1_v <= m_go;
                m1_first <= (m_jg == '0); m1_last <= m_last; m1_sb <= m_sb;
                m1_pmax <= pmax[m_sb];
                m1_s <= smem[int'(m_sb)*NJ + int'(m_jg)];
            end

            logic [EW-1:0] m_wsum, m_e, m_acc;   // m_acc: E of the row so far
            always_comb begin
                m_wsum = '0;
                for (int t = 0; t < PAR_T; t++) begin
                    logic [PW-1:0] gap;             // pmax - p in 0..D
                    gap = m1_pmax - m1_s[t*PW +: PW];
                    m_wsum = m_wsum + EW'(TBL[int'(gap)*TW +: TW]);
                end
                m_e = (m1_first ? '0 : m_acc) + m_wsum;
            end

            // E is final in m_acc the cycle after the row's last word (the
            // next row's first word overwrites it only at that cycle's end)
            logic           m2_v;
            logic [SBW-1:0] m2_sb;
            always_ff @(posedge clk) begin
                if (m1_v) m_acc <= m_e;
                if (rst) m2_v <= 1'b0;
                else     m2_v <= m1_v && m1_last;
                m2_sb <= m1_sb;
            end

            logic [KW-1:0] m_kp1;               // #{k : E <= EMAX[k]}
            always_comb begin
                m_kp1 = '0;
                for (int k = 0; k <= D; k++) m_kp1 = m_kp1 + KW'(m_acc <= EMAX[k*EW +: EW]);
            end

            always_ff @(posedge clk) begin
                if (m2_v) kmem[m2_sb] <= m_kp1;
                if (rst) mdone <= '0;
                else begin
                    for (int b = 0; b < SB; b++) begin
                        if (m2_v && m2_sb == SBW'(b))                mdone[b] <= 1'b1;
                        if (b_go && b_lastit && b_sb == SBW'(b))    mdone[b] <= 1'b0;
                    end
                end
            end

            logic [KW-1:0] b1_kp1;
            always_ff @(posedge clk) b1_kp1 <= kmem[b_sb];
            assign b_rdy = mdone[b_sb];
            always_comb
                for (int t = 0; t < PAR_T; t++)
                    b_p[t] = (int'(b1_s[t*PW +: PW]) + int'(b1_kp1) > int'(b1_pmax));
        end else begin : g_sab
            assign b_rdy = sfull[b_sb];
            always_comb
                for (int t = 0; t < PAR_T; t++)
                    b_p[t] = (int'(b1_s[t*PW +: PW]) + C2 >= int'(b1_pmax));
        end
    endgenerate

    logic [NPW-1:0]   b_np;                      // popcount(b_p)
    logic signed [OW-1:0] b_acc [PAR_D];
    logic signed [OW-1:0] b_accn [PAR_D];
    always_comb begin
        b_np = '0;
        for (int t = 0; t < PAR_T; t++) b_np = b_np + NPW'(b_p[t]);
        for (int d = 0; d < PAR_D; d++) begin
            logic [NPW-1:0] npos;
            npos = '0;
            for (int t = 0; t < PAR_T; t++)
                npos = npos + NPW'(b_p[t] & v_rd[t*D + int'(b1_dg)*PAR_D + d]);
            // contribution 2*npos - np in [-PAR_T, PAR_T], fits OW bits
            b_accn[d] = (b1_jfirst ? OW'(0) : b_acc[d]) + OW'(2 * int'(npos) - int'(b_np));
        end
    end

    always_ff @(posedge clk) begin
        if (b1_v) begin
            for (int d = 0; d < PAR_D; d++) b_acc[d] <= b_accn[d];
            if (b1_jlast)
                for (int d = 0; d < PAR_D; d++)
                    out_mem[owp][(int'(b1_dg)*PAR_D + d)*OW +: OW] <= b_accn[d];
        end
    end

    // Output buffer: 2 entries; B reserves an entry (oused) when it starts a
    // row, so a completed row always has room.
    wire push = b1_v && b1_rowlast;
    always_ff @(posedge clk) begin
        if (rst) begin
            oused <= '0; ocount <= '0; owp <= 1'b0; orp <= 1'b0;
        end else begin
            oused  <= oused + 2'(b_start) - 2'(pop);
            ocount <= ocount + 2'(push) - 2'(pop);
            if (push) owp <= !owp;
            if (pop)  orp <= !orp;
        end
    end
    assign m_axis_tvalid = (ocount != '0);
    assign m_axis_tdata  = out_mem[orp];
endmodule
