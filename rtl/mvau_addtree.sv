// mvau_addtree: combinational balanced adder tree.
//
// sum = d[0] + d[1] + ... + d[N-1], operands IW bits (two's complement when
// SIGNED, else unsigned), result OW bits (the caller sizes OW so the sum
// cannot overflow). A balanced tree (depth ceil(log2 N)) rather than a chain,
// so synthesis builds N-1 short adders of logarithmic depth.
//
// With POPCOUNT=1 the operands are single bits (IW must be 1) and the leaves
// are popcounts of 6-bit groups (one LUT6 per result bit), which the tree
// then adds: the usual LUT-efficient popcount.
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
endmodule : mvau_addtree
