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

    // Heap layout: node i has children 2i+1, 2i+2; leaves at L-1 .. 2L-2.
    // split_var: the array is acyclic element by element; without it
    // the simulator reports UNOPTFLAT (circular logic) on the whole array.
    logic [OW-1:0] node [2*L-1] /* verilator split_var */;

    // Operand bits padded with zeros to whole popcount groups.
    logic [LEAVES*G-1:0][IW-1:0] dp;
    assign dp = (LEAVES*G*IW)'(d);

    for (genvar l = 0; l < L; l++) begin : g_leaf
        if (l < LEAVES) begin : g_used
            if (POPCOUNT) begin : g_pop
                always_comb begin
                    node[L-1+l] = '0;
                    for (int unsigned k = 0; k < G; k++) node[L-1+l] = node[L-1+l] + OW'(dp[l*G+k]);
                end
            end else if (SIGNED) begin : g_signed
                assign node[L-1+l] = OW'($signed(dp[l]));
            end else begin : g_unsigned
                assign node[L-1+l] = OW'(dp[l]);
            end
        end else begin : g_pad
            assign node[L-1+l] = '0;
        end
    end
    for (genvar i = 0; i < L - 1; i++) begin : g_node
        assign node[i] = node[2*i+1] + node[2*i+2];
    end
    assign sum = node[0];
endmodule : mvau_addtree
