// mvau.hpp: folded matrix-vector-threshold unit, Vitis-HLS style (header only).
//
// Semantics: FINN's MVAU as xnorvit's RTL implements it (rtl/mvau_xnor.sv,
// rtl/mvau_int.sv; reference xnorvit.flows.ops.mvau.mvau_reference):
//   XNOR = true : acc = popcount(XNOR(x, w)) over MW bits (FINN binaryXnorMode)
//   XNOR = false: acc = sum_k x[k] * w[k][n] (IN_W / W_W bit integers; W_BIPOLAR:
//                 1-bit weights, bit 1 = +1, bit 0 = -1)
//   N_THRESH > 0: out = #{i : acc >= T[n][i]} + ACT_VAL, else out = acc
// Streams (FINN's convention): input beat = SIMD lanes of IN_W bits, output
// beat = PE lanes of OUT_W bits, LSB-first. Folding: NF = MH/PE output folds,
// SF = MW/SIMD input folds; one (nf, sf) step per cycle (II = 1), the input
// vector is read during nf = 0 and kept, so a vector takes NF*SF cycles
// (FINN's get_exp_cycles per vector).
#pragma once
#include <ap_int.h>
#include <hls_stream.h>

namespace xnorvit {

template <unsigned MW, unsigned MH, unsigned PE, unsigned SIMD, bool XNOR, unsigned IN_W, bool IN_SIGNED,
          unsigned W_W, bool W_SIGNED, bool W_BIPOLAR, unsigned N_THRESH, int ACT_VAL, unsigned OUT_W, bool OUT_SIGNED>
void mvau(hls::stream<ap_uint<SIMD * IN_W> > &in, hls::stream<ap_uint<PE * OUT_W> > &out,
          const ap_uint<W_W> weights[MH][MW], const int thresholds[MH][N_THRESH > 0 ? N_THRESH : 1],
          unsigned vectors) {
    static_assert(MW % SIMD == 0, "SIMD must divide MW");
    static_assert(MH % PE == 0, "PE must divide MH");
    const unsigned NF = MH / PE, SF = MW / SIMD;
    ap_uint<SIMD * IN_W> buf[MW / SIMD];
    long long acc[PE];
#pragma HLS ARRAY_PARTITION variable = acc complete
#pragma HLS ARRAY_PARTITION variable = weights complete dim = 1
    for (unsigned v = 0; v < vectors; v++) {
        for (unsigned nf = 0; nf < NF; nf++) {
            for (unsigned sf = 0; sf < SF; sf++) {
#pragma HLS PIPELINE II = 1
                if (nf == 0) buf[sf] = in.read();
                const ap_uint<SIMD * IN_W> x = buf[sf];
                for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
                    if (sf == 0) acc[pe] = 0;
                    long long s = 0;
                    for (unsigned k = 0; k < SIMD; k++) {
#pragma HLS UNROLL
                        const ap_uint<IN_W> xr = x.range(k * IN_W + IN_W - 1, k * IN_W);
                        const ap_uint<W_W> wr = weights[nf * PE + pe][sf * SIMD + k];
                        if (XNOR) {
                            s += (xr == wr) ? 1 : 0;
                        } else {
                            const long long xv = IN_SIGNED ? (long long)ap_int<IN_W>(xr) : (long long)xr;
                            const long long wv = W_BIPOLAR ? (wr[0] ? 1LL : -1LL)
                                                 : W_SIGNED ? (long long)ap_int<W_W>(wr) : (long long)wr;
                            s += xv * wv;
                        }
                    }
                    acc[pe] += s;
                }
                if (sf == SF - 1) {
                    ap_uint<PE * OUT_W> beat = 0;
                    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
                        long long y = acc[pe];
                        if (N_THRESH > 0) {
                            long long c = ACT_VAL;
                            for (unsigned i = 0; i < N_THRESH; i++) c += (acc[pe] >= thresholds[nf * PE + pe][i]);
                            y = c;
                        }
                        beat.range(pe * OUT_W + OUT_W - 1, pe * OUT_W) = ap_uint<OUT_W>(y);  // low OUT_W bits
                    }
                    out.write(beat);
                }
            }
        }
    }
}

}  // namespace xnorvit
