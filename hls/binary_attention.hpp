// binary_attention.hpp: multi-head binary self-attention with BiViT's
// softmax-aware binarization or BiT's elastic {0, alpha} probabilities (the
// C++ twin of rtl/binary_attention.sv, one head per instance there;
// BinaryAttention.execute_node is the reference):
//
//   Q_i, K_j, V_j in {-1,+1}^D (bit 1 = +1), D = C / HEADS, head h owns channels h*D ..
//   S[i][j] = 2 * popcount(XNOR(Q_i, K_j)) - D
//   P[i][j] = S[i][j] >= max_j' S[i][j'] - C_INT                       (binary_attention)
//   P[i][j] = E_i <= EMAX[k_ij], E_i = sum_j TBL[k_ij], k_ij the popcount
//             gap to the row maximum                                   (binary_attention_elastic)
//   O[i][d] = sum_{j : P[i][j]} V_j[d]            (signed OW-bit lanes, in [-T, T])
//
// Streams: q, k, v carry one token per beat (C bits, channel c at bit c), T beats
// per frame; the output one token per beat, C lanes of OW bits (channel c at
// bits c*OW ..). The frame's Q/K/V are buffered (the RTL's frame buffers).
#pragma once
#include <ap_int.h>
#include <hls_stream.h>

namespace xnorvit {

// One frame of multi-head attention; keep(h, pop, pmax, row_sum) decides each
// key from its popcount pop = popcount(XNOR(Q_i, K_j)) in head h, the row's
// maximum popcount and (for the elastic rule) the row's exp-table sum.
template <unsigned T, unsigned C, unsigned HEADS, unsigned OW, class Rule>
void attention_frames(hls::stream<ap_uint<C> > &q_in, hls::stream<ap_uint<C> > &k_in, hls::stream<ap_uint<C> > &v_in,
                      hls::stream<ap_uint<C * OW> > &out, unsigned frames, const Rule &rule) {
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
                int pop[T];
                int pmax = 0;
                for (unsigned j = 0; j < T; j++) {
                    pop[j] = 0;
                    for (unsigned d = 0; d < D; d++) pop[j] += q[i][h * D + d] == k[j][h * D + d];
                    if (pop[j] > pmax) pmax = pop[j];
                }
                const long long row_sum = rule.row_sum(pop, pmax);
                for (unsigned d = 0; d < D; d++) {
                    int o = 0;
                    for (unsigned j = 0; j < T; j++)
                        if (rule.keep(pop[j], pmax, row_sum)) o += v[j][h * D + d] ? 1 : -1;
                    const unsigned c = h * D + d;
                    y.range(c * OW + OW - 1, c * OW) = ap_uint<OW>(o);
                }
            }
            out.write(y);
        }
    }
}

// BiViT: S = 2*pop - D >= max S - C_INT  <=>  pop >= pmax - floor(C_INT / 2).
template <unsigned C_INT>
struct SabRule {
    template <class P>
    long long row_sum(const P &, int) const { return 0; }
    bool keep(int pop, int pmax, long long) const { return pop + (int)(C_INT / 2) >= pmax; }
};

// Elastic {0, alpha}: E = sum_j TBL[pmax - pop_j]; keep iff E <= EMAX[pmax - pop_j]
// (TBL, EMAX: D+1 entries from BinaryAttention.elastic_constants, as rtl/binary_attention.sv's ELASTIC=1).
template <unsigned T>
struct ElasticRule {
    const long long *tbl, *emax;
    template <class P>
    long long row_sum(const P &pop, int pmax) const {
        long long e = 0;
        for (unsigned j = 0; j < T; j++) e += tbl[pmax - pop[j]];
        return e;
    }
    bool keep(int pop, int pmax, long long e) const { return e <= emax[pmax - pop]; }
};

template <unsigned T, unsigned C, unsigned HEADS, unsigned C_INT, unsigned OW>
void binary_attention(hls::stream<ap_uint<C> > &q_in, hls::stream<ap_uint<C> > &k_in, hls::stream<ap_uint<C> > &v_in,
                      hls::stream<ap_uint<C * OW> > &out, unsigned frames) {
    attention_frames<T, C, HEADS, OW>(q_in, k_in, v_in, out, frames, SabRule<C_INT>());
}

template <unsigned T, unsigned C, unsigned HEADS, unsigned OW>
void binary_attention_elastic(hls::stream<ap_uint<C> > &q_in, hls::stream<ap_uint<C> > &k_in,
                              hls::stream<ap_uint<C> > &v_in, hls::stream<ap_uint<C * OW> > &out,
                              const long long tbl[], const long long emax[], unsigned frames) {
    ElasticRule<T> rule;
    rule.tbl = tbl;
    rule.emax = emax;
    attention_frames<T, C, HEADS, OW>(q_in, k_in, v_in, out, frames, rule);
}

}  // namespace xnorvit
