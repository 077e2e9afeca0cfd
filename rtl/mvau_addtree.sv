// mvau_addtree: combinational balanced adder tree.
//
// sum = d[0] + d[1] + ... + d[N-1], operands IW bits (two's complement when
// SIGNED, else unsigned), result OW bits (the caller sizes OW so the sum
// cannot overflow). A balanced tree (depth ceil(log2 N)) rather than a chain,
// so synthesis builds N-1 short adders of logarithmic depth.
//
// With POPCOUNT=1 the operands are single bits (IW must be 1) and the sum is
// a compressor tree: 6:3 counters (one LUT6 per result bit) on groups of six
// bits, then, per bit weight 1/2/4, the NG counter outputs of that weight
// counted by this module again (recursion ends at N <= 6, one LUT level),
// and the three column counts added with their weights (a single carry-chain
// adder while they are at most 2 bits wide).
module mvau_addtree #(
    parameter int unsigned N = 2,
    parameter int unsigned IW = 1,
    parameter int unsigned OW = 2,
    parameter bit          SIGNED = 0,
    parameter bit          POPCOUNT = 0
) (
    input  logic [N-1:0][IW-1:0] d,
    output logic [OW-1:0]        sum
);
    localparam int unsigned G = POPCOUNT ? 6 : 1;          // operands per leaf
    localparam int unsigned LEAVES = (N + G - 1) / G;
    localparam int unsigned L = LEAVES > 1 ? 2 ** $clog2(LEAVES) : 1;  // padded to 2^k

    initial begin
        if (POPCOUNT && IW != 1) $error("mvau_addtree: POPCOUNT needs IW=1, got IW=%0d", IW);
    end

    if (POPCOUNT && N > 6) begin : g_pop
        // Popcount as a compressor tree: 6:3 counters (one LUT6 per output
        // bit) on groups of six bits, then the NG carry bits of each weight
        // (1, 2, 4) counted by the same module, and the three column counts
        // added with their weights.
        localparam int unsigned NG = (N + 5) / 6;   // groups of six
        localparam int unsigned CW = $clog2(NG + 1);
        logic [NG*6-1:0] dp;
        logic [2:0][NG-1:0] col;
        logic [2:0][CW-1:0] cs;
        assign dp = (NG*6)'(d);
        for (genvar g = 0; g < NG; g++) begin : g_grp
            logic [2:0] c;
            always_comb begin
                c = '0;
                for (int unsigned k = 0; k < 6; k++) c = c + 3'(dp[g*6+k]);
            end
            for (genvar b = 0; b < 3; b++) begin : g_b
                assign col[b][g] = c[b];
            end
        end
        for (genvar b = 0; b < 3; b++) begin : g_col
            mvau_addtree #(.N(NG), .IW(1), .OW(CW), .SIGNED(0), .POPCOUNT(1)) u_col (.d(col[b]), .sum(cs[b]));
        end
        if (CW <= 2) begin : g_two
            // cs[0] and cs[2] << 2 do not overlap: one adder
            assign sum = OW'({cs[2], cs[0]}) + (OW'(cs[1]) << 1);
        end else begin : g_three
            assign sum = OW'(cs[0]) + (OW'(cs[1]) << 1) + (OW'(cs[2]) << 2);
        end
    end else if (POPCOUNT) begin : g_leaf
        always_comb begin
            sum = '0;
            for (int unsigned k = 0; k < N; k++) sum = sum + OW'(d[k]);
        end
    end else begin : g_tree
        // Operand bits padded with zeros to whole popcount groups.
        logic [LEAVES*G-1:0][IW-1:0] dp;
        assign dp = (LEAVES*G*IW)'(d);

        // Heap of nodes: node i has children 2i+1 and 2i+2; leaves are nodes
        // L-1 .. 2L-2. One generate block per node (rather than one array) keeps
        // the simulator from seeing the tree as a combinational loop.
        for (genvar i = 0; i < 2 * L - 1; i++) begin : g_n
            logic [OW-1:0] v;
            if (i < L - 1) begin : g_add
                assign v = g_n[2*i+1].v + g_n[2*i+2].v;
            end else if (i - (L - 1) < LEAVES) begin : g_leaf
                localparam int unsigned LI = i - (L - 1);
                if (POPCOUNT) begin : g_pop
                    always_comb begin
                        v = '0;
                        for (int unsigned k = 0; k < G; k++) v = v + OW'(dp[LI*G+k]);
                    end
                end else if (SIGNED) begin : g_signed
                    assign v = OW'($signed(dp[LI]));
                end else begin : g_unsigned
                    assign v = OW'(dp[LI]);
                end
            end else begin : g_pad
                assign v = '0;
            end
        end
        assign sum = g_n[0].v;
    end
endmodule : mvau_addtree
