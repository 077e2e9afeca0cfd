// binary_attention.hpp: multi-head binary self-attention with BiViT's
// softmax-aware binarization (the C++ twin of rtl/binary_attention.sv, one
// head per instance there; BinaryAttention.execute_node is the reference):
//
//   Q_i, K_j, V_j in {-1,+1}^D (bit 1 = +1), D = C / HEADS, head h owns channels h*D ..
//   S[i][j] = 2 * popcount(XNOR(Q_i, K_j)) - D
//   P[i][j] = S[i][j] >= max_j' S[i][j'] - C_INT
//   O[i][d] = sum_{j : P[i][j]} V_j[d]            (signed OW-bit lanes, in [-T, T])
//
// Streams: q, k, v carry one token per beat (C bits, channel c at bit c), T beats
// per frame; the output one token per beat, C lanes of OW bits (channel c at
// bits c*OW ..). The frame's Q/K/V are buffered (the RTL's frame buffers).
#pragma once
#include <ap_int.h>
#include <hls_stream.h>

namespace xnorvit {

template <unsigned T, unsigned C, unsigned HEADS, unsigned C_INT, unsigned OW>
void binary_attention(hls::stream<ap_uint<C> > &q_in, hls::stream<ap_uint<C> > &k_in, hls::stream<ap_uint<C> > &v_in,
                      hls::stream<ap_uint<C * OW> > &out, unsigned frames) {
    static_assert(C % HEADS == 0, "HEADS must divide C");
    const unsigned D = C / HEADS;
    static ap_uint<C> q[T], k[T], v[T];
    for (unsigned fr = 0; fr < frames; fr++) {
        for (unsigned t = 0; t < T; t++) q[t] = q_in.read();
        for (unsigned t = 0; t < T; t++) k[t] = k_in.read();
        for (unsigned t = 0; t < T; t++) v[t] = v_in.read();
        for (unsigned i = 0; i < T; i++) {
            ap_uint<C * OW> y = 0;
            for (unsigned h = 0; h < HEADS; h++) {
                int s[T];
                int smax = -(int)D;
                for (unsigned j = 0; j < T; j++) {
                    int pop = 0;
                    for (unsigned d = 0; d < D; d++) pop += q[i][h * D + d] == k[j][h * D + d];
                    s[j] = 2 * pop - (int)D;
                    if (s[j] > smax) smax = s[j];
                }
                for (unsigned d = 0; d < D; d++) {
                    int o = 0;
                    for (unsigned j = 0; j < T; j++)
                        if (s[j] >= smax - (int)C_INT) o += v[j][h * D + d] ? 1 : -1;
                    const unsigned c = h * D + d;
                    y.range(c * OW + OW - 1, c * OW) = ap_uint<OW>(o);
                }
            }
            out.write(y);
        }
    }
}

}  // namespace xnorvit
