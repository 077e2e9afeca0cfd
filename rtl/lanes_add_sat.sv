// lanes_add_sat -- combinational lane-wise saturating add (shared by
// stream_add_sat, the residual add, and stream_pos_add, the position
// embedding add).
//
// a, b, sum: LANES signed two's-complement lanes of W bits, lane l at
// [l*W +: W] (LSB-first); sum_l = clamp(a_l + b_l, -2^(W-1), 2^(W-1)-1).
// Purely combinational: 0 cycles; the callers register the result.
module lanes_add_sat #(
    parameter int W     = 8,
    parameter int LANES = 1
) (
    input  logic [LANES*W-1:0] a,
    input  logic [LANES*W-1:0] b,
    output logic [LANES*W-1:0] sum
);
    always_comb begin
        for (int l = 0; l < LANES; l++) begin
            logic signed [W:0] s;
            s = (W+1)'($signed(a[l*W +: W])) + (W+1)'($signed(b[l*W +: W]));
            if (s[W] != s[W-1])  // overflow: the true sign is s[W]
                sum[l*W +: W] = s[W] ? {1'b1, {(W-1){1'b0}}} : {1'b0, {(W-1){1'b1}}};
            else
                sum[l*W +: W] = s[W-1:0];
        end
    end
endmodule
