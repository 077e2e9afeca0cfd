// stream_ops.hpp: the stream ops of xnorvit's dataflow graphs, Vitis-HLS style
// (header only). Each kernel is the C++ twin of an RTL kernel in rtl/ (or of
// the finn-rtllib core the graph uses) and follows the semantics of the FINN
// op's execute_node:
//
//   thresholding      Thresholding_rtl   out = #{i : x >= T[c][i]} + ACT_VAL     (finn-rtllib thresholding)
//   residual_add      ResidualAdd_rtl    out = clamp(a + b) to signed OUT_W       (rtl/stream_add_sat.sv)
//   pos_add           PosAdd_rtl         out = clamp(x + E[t][c]) to signed OUT_W (rtl/stream_pos_add.sv)
//   token_pool        TokenPool_rtl      out[c] = sum_t x[t][c]                   (rtl/stream_token_pool.sv)
//   duplicate_streams DuplicateStreams   out_j = in, j < N                        (rtl/stream_fork.sv)
//   dwc               (stitch-inserted)  width conversion, same element order     (rtl/stream_dwc.sv)
//   fmpadding         FMPadding_rtl      zero border [top, left, bottom, right]    (finn-rtllib fmpadding)
//   swg               ConvolutionInputGenerator_rtl  im2col, (ky, kx, c) order; parallel window (finn-rtllib swg)
//
// Streams follow FINN's convention: a beat holds the innermost dimension of
// the op's folded shape (PE or SIMD lanes of the element width, lane 0 in the
// LSBs). Every kernel handles `frames` frames and reads/writes exactly the
// beats of its folded shapes; loops are written for II = 1 where the RTL has it.
#pragma once
#include <ap_int.h>
#include <hls_stream.h>

namespace xnorvit {

// Lane k of a beat as a signed 64-bit value (two's complement if SIGNED).
template <unsigned W, bool SIGNED, int N>
inline long long lane(const ap_uint<N> &beat, unsigned k) {
    const ap_uint<W> r = beat.range(k * W + W - 1, k * W);
    return SIGNED ? (long long)ap_int<W>(r) : (long long)r;
}

template <unsigned W>
inline long long sat(long long v) {  // clamp to the signed range of W bits
    const long long lo = -(1LL << (W - 1)), hi = (1LL << (W - 1)) - 1;
    return v < lo ? lo : (v > hi ? hi : v);
}

// Thresholding_rtl: C channels, PE lanes per beat, `vectors` vectors of C per frame.
// T_ROWS = C (per-channel thresholds) or 1 (shared). Thresholds are integers:
// for integer x, x >= t holds exactly when x >= ceil(t).
template <unsigned C, unsigned PE, unsigned IN_W, bool IN_SIGNED, unsigned T_ROWS, unsigned N_STEPS, int ACT_VAL,
          unsigned OUT_W>
void thresholding(hls::stream<ap_uint<PE * IN_W> > &in, hls::stream<ap_uint<PE * OUT_W> > &out,
                  const long long thresholds[T_ROWS][N_STEPS], unsigned vectors) {
    static_assert(C % PE == 0, "PE must divide C");
    for (unsigned v = 0; v < vectors; v++) {
        for (unsigned f = 0; f < C / PE; f++) {
#pragma HLS PIPELINE II = 1
            const ap_uint<PE * IN_W> x = in.read();
            ap_uint<PE * OUT_W> y = 0;
            for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
                const long long xv = lane<IN_W, IN_SIGNED>(x, pe);
                const unsigned row = T_ROWS == 1 ? 0 : f * PE + pe;
                long long c = ACT_VAL;
                for (unsigned i = 0; i < N_STEPS; i++) c += xv >= thresholds[row][i];
                y.range(pe * OUT_W + OUT_W - 1, pe * OUT_W) = ap_uint<OUT_W>(c);
            }
            out.write(y);
        }
    }
}

// ResidualAdd_rtl: beats = C/PE per token, `beats` beats in all.
template <unsigned PE, unsigned A_W, bool A_SIGNED, unsigned B_W, bool B_SIGNED, unsigned OUT_W>
void residual_add(hls::stream<ap_uint<PE * A_W> > &a, hls::stream<ap_uint<PE * B_W> > &b,
                  hls::stream<ap_uint<PE * OUT_W> > &out, unsigned beats) {
    for (unsigned n = 0; n < beats; n++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<PE * A_W> x = a.read();
        const ap_uint<PE * B_W> z = b.read();
        ap_uint<PE * OUT_W> y = 0;
        for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
            y.range(pe * OUT_W + OUT_W - 1, pe * OUT_W) =
                ap_uint<OUT_W>(sat<OUT_W>(lane<A_W, A_SIGNED>(x, pe) + lane<B_W, B_SIGNED>(z, pe)));
        }
        out.write(y);
    }
}

// PosAdd_rtl: x (T tokens x C channels per frame) + table[t][c], saturating.
template <unsigned T, unsigned C, unsigned PE, unsigned IN_W, bool IN_SIGNED, unsigned OUT_W>
void pos_add(hls::stream<ap_uint<PE * IN_W> > &in, hls::stream<ap_uint<PE * OUT_W> > &out,
             const long long table[T][C], unsigned frames) {
    for (unsigned fr = 0; fr < frames; fr++)
        for (unsigned t = 0; t < T; t++)
            for (unsigned f = 0; f < C / PE; f++) {
#pragma HLS PIPELINE II = 1
                const ap_uint<PE * IN_W> x = in.read();
                ap_uint<PE * OUT_W> y = 0;
                for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
                    y.range(pe * OUT_W + OUT_W - 1, pe * OUT_W) =
                        ap_uint<OUT_W>(sat<OUT_W>(lane<IN_W, IN_SIGNED>(x, pe) + table[t][f * PE + pe]));
                }
                out.write(y);
            }
}

// TokenPool_rtl: per frame, the sum over T tokens of each of C channels (C/PE output beats).
template <unsigned T, unsigned C, unsigned PE, unsigned IN_W, bool IN_SIGNED, unsigned OUT_W>
void token_pool(hls::stream<ap_uint<PE * IN_W> > &in, hls::stream<ap_uint<PE * OUT_W> > &out, unsigned frames) {
    long long acc[C];
    for (unsigned fr = 0; fr < frames; fr++) {
        for (unsigned c = 0; c < C; c++) acc[c] = 0;
        for (unsigned t = 0; t < T; t++)
            for (unsigned f = 0; f < C / PE; f++) {
#pragma HLS PIPELINE II = 1
                const ap_uint<PE * IN_W> x = in.read();
                for (unsigned pe = 0; pe < PE; pe++) acc[f * PE + pe] += lane<IN_W, IN_SIGNED>(x, pe);
            }
        for (unsigned f = 0; f < C / PE; f++) {
            ap_uint<PE * OUT_W> y = 0;
            for (unsigned pe = 0; pe < PE; pe++) y.range(pe * OUT_W + OUT_W - 1, pe * OUT_W) = ap_uint<OUT_W>(acc[f * PE + pe]);
            out.write(y);
        }
    }
}

// TokenInsert_rtl: per frame, the N constant tokens (C/PE beats each), then the T input tokens unchanged.
template <unsigned T, unsigned N, unsigned C, unsigned PE, unsigned W>
void token_insert(hls::stream<ap_uint<PE * W> > &in, hls::stream<ap_uint<PE * W> > &out, const long long tokens[N][C],
                  unsigned frames) {
    for (unsigned fr = 0; fr < frames; fr++) {
        for (unsigned n = 0; n < N; n++)
            for (unsigned f = 0; f < C / PE; f++) {
                ap_uint<PE * W> y = 0;
                for (unsigned pe = 0; pe < PE; pe++) y.range(pe * W + W - 1, pe * W) = ap_uint<W>(tokens[n][f * PE + pe]);
                out.write(y);
            }
        for (unsigned b = 0; b < T * (C / PE); b++) out.write(in.read());
    }
}

// TokenSelect_rtl: per frame, token INDEX of T (C/PE beats) passed, the others dropped.
template <unsigned T, unsigned C, unsigned PE, unsigned W, unsigned INDEX>
void token_select(hls::stream<ap_uint<PE * W> > &in, hls::stream<ap_uint<PE * W> > &out, unsigned frames) {
    for (unsigned fr = 0; fr < frames; fr++)
        for (unsigned t = 0; t < T; t++)
            for (unsigned f = 0; f < C / PE; f++) {
                const ap_uint<PE * W> x = in.read();
                if (t == INDEX) out.write(x);
            }
}

// DuplicateStreams_rtl: every beat to each of N outputs.
template <unsigned N, unsigned W>
void duplicate_streams(hls::stream<ap_uint<W> > &in, hls::stream<ap_uint<W> > out[N], unsigned beats) {
    for (unsigned n = 0; n < beats; n++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<W> x = in.read();
        for (unsigned j = 0; j < N; j++) out[j].write(x);
    }
}

// Width converter: IN_W-bit beats to OUT_W-bit beats, LSB first (FINN's
// StreamingDataWidthConverter order); `in_beats * IN_W` must be a multiple of OUT_W.
template <unsigned IN_W, unsigned OUT_W>
void dwc(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out, unsigned in_beats) {
    ap_uint<IN_W + OUT_W> buf = 0;
    unsigned held = 0;
    for (unsigned n = 0; n < in_beats; n++) {
        ap_uint<IN_W + OUT_W> x = in.read();
        buf |= x << held;
        held += IN_W;
        while (held >= OUT_W) {
            out.write(ap_uint<OUT_W>(buf.range(OUT_W - 1, 0)));
            buf >>= OUT_W;
            held -= OUT_W;
        }
    }
}

// FMPadding_rtl: an H x W image of C channels (SIMD per beat) framed by zero pixels.
template <unsigned H, unsigned W, unsigned C, unsigned SIMD, unsigned BITS, unsigned PT, unsigned PL, unsigned PB,
          unsigned PR>
void fmpadding(hls::stream<ap_uint<SIMD * BITS> > &in, hls::stream<ap_uint<SIMD * BITS> > &out, unsigned frames) {
    for (unsigned fr = 0; fr < frames; fr++)
        for (unsigned y = 0; y < PT + H + PB; y++)
            for (unsigned x = 0; x < PL + W + PR; x++)
                for (unsigned f = 0; f < C / SIMD; f++) {
#pragma HLS PIPELINE II = 1
                    const bool inside = y >= PT && y < PT + H && x >= PL && x < PL + W;
                    out.write(inside ? in.read() : ap_uint<SIMD * BITS>(0));
                }
}

// ConvolutionInputGenerator_rtl (not depthwise): for each output pixel (oy, ox), the
// K_H x K_W window in (ky, kx, channel) order, SIMD channels per beat; with PARALLEL
// (FINN's parallel_window, SIMD = C) the whole window in one beat, element (ky, kx, c)
// at lane (ky*KW + kx)*C + c. The frame is buffered (a C-simulation model of the
// sliding window; the RTL uses line buffers).
template <unsigned IH, unsigned IW, unsigned C, unsigned SIMD, unsigned BITS, unsigned KH, unsigned KW, unsigned SH,
          unsigned SW, unsigned DH, unsigned DW, unsigned OH, unsigned OW, bool PARALLEL>
void swg(hls::stream<ap_uint<SIMD * BITS> > &in,
         hls::stream<ap_uint<(PARALLEL ? KH * KW * (C / SIMD) : 1) * SIMD * BITS> > &out, unsigned frames) {
    const unsigned G = SIMD * BITS;  // bits of one group of SIMD channels
    static ap_uint<SIMD * BITS> img[IH][IW][C / SIMD];
    for (unsigned fr = 0; fr < frames; fr++) {
        for (unsigned y = 0; y < IH; y++)
            for (unsigned x = 0; x < IW; x++)
                for (unsigned f = 0; f < C / SIMD; f++) img[y][x][f] = in.read();
        for (unsigned oy = 0; oy < OH; oy++)
            for (unsigned ox = 0; ox < OW; ox++) {
                ap_uint<(PARALLEL ? KH * KW * (C / SIMD) : 1) * SIMD * BITS> window = 0;
                unsigned k = 0;
                for (unsigned ky = 0; ky < KH; ky++)
                    for (unsigned kx = 0; kx < KW; kx++)
                        for (unsigned f = 0; f < C / SIMD; f++, k++) {
#pragma HLS PIPELINE II = 1
                            const ap_uint<SIMD * BITS> g = img[oy * SH + ky * DH][ox * SW + kx * DW][f];
                            if (PARALLEL)
                                window.range(k * G + G - 1, k * G) = g;
                            else
                                out.write(g);
                        }
                if (PARALLEL) out.write(window);
            }
    }
}

}  // namespace xnorvit
