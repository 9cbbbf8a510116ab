// BatchNorm2d (training mode) -> 2x2 max-pool with stride 2 -> ReLU, forward and backward, in one pass
// each, for float32 tensors on the CPU, contiguous NCHW or channels_last (the layout CPU runs train in
// with it; its results are channels_last too). Built by lenet_exp/fused_cpu.py.
//
// ATen runs these as three to five kernels that each walk the whole activation, and its CPU max-pool
// is scalar code writing int64 indices: on LeNet's first block (64x6x28x28) the three layers cost
// ~1.6 ms per training step, this ~0.45 ms. Every hot loop is branch-free so that it vectorises
// (data-dependent branches mispredict on every other window); -fno-trapping-math lets GCC if-convert
// the float comparisons.
//
// Semantics match torch: batch statistics with the biased variance for normalising and the unbiased
// one for the running variance; each window's gradient goes to its first maximum in row-major order
// (as max_pool2d's indices); ReLU's gradient is zero where its output is not positive; odd heights or
// widths drop the last row or column from pooling (floor), while their values still count in the
// statistics. Any NaN or inf in the input makes the statistics NaN, hence every output NaN.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int kLanes = 16;  // independent partial sums: the adds vectorise and do not wait on each other

double plane_sum(const float* p, int64_t n) {
  float acc[kLanes] = {0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += p[i + k];
  double sum = 0;
  for (; i < n; ++i) sum += p[i];
  for (int k = 0; k < kLanes; ++k) sum += acc[k];
  return sum;
}

double plane_squared_deviation(const float* p, int64_t n, float mean) {
  float acc[kLanes] = {0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const float d = p[i + k] - mean;
      acc[k] += d * d;
    }
  double sum = 0;
  for (; i < n; ++i) {
    const float d = p[i] - mean;
    sum += d * d;
  }
  for (int k = 0; k < kLanes; ++k) sum += acc[k];
  return sum;
}

// Whether x is channels_last (and not also contiguous NCHW, where the NCHW loops read it as it is).
bool check_input(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
              "bn_pool_relu: expected a 4-d float32 CPU tensor");
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "bn_pool_relu: planes must be at least 2x2");
  const bool nhwc = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK(nhwc || x.is_contiguous(), "bn_pool_relu: expected a contiguous NCHW or channels_last tensor");
  return nhwc;
}

struct Sizes {
  int64_t N, C, H, W, OH, OW, HW, OHW, M;  // M: the values per channel
  explicit Sizes(const torch::Tensor& x)
      : N(x.size(0)), C(x.size(1)), H(x.size(2)), W(x.size(3)), OH(H / 2), OW(W / 2), HW(H * W),
        OHW(OH * OW), M(N * HW) {}
};

// ---- NCHW: each loop runs along a row of one channel's plane

// Per-channel sum of x, or of its squared deviation from mean: one channel per task, so each sum has a
// fixed order whatever the thread count.
std::vector<double> channel_sums_nchw(const Sizes& s, const float* x, const float* mean) {
  std::vector<double> sums(s.C, 0.0);
  at::parallel_for(0, s.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      for (int64_t n = 0; n < s.N; ++n) {
        const float* plane = x + (n * s.C + c) * s.HW;
        sums[c] += mean ? plane_squared_deviation(plane, s.HW, mean[c]) : plane_sum(plane, s.HW);
      }
  });
  return sums;
}

void pool_nchw(const Sizes& s, const float* xp, const float* sc, const float* sh, float* op, uint8_t* ap,
               float* xmp) {
  const int64_t H = s.H, W = s.W, OH = s.OH, OW = s.OW, C = s.C, HW = s.HW, OHW = s.OHW;
  at::parallel_for(0, s.N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float scale = sc[plane % C], shift = sh[plane % C];
      for (int64_t i = 0; i < OH; ++i) {
        const float* r0 = xp + plane * HW + (2 * i) * W;
        const float* r1 = r0 + W;
        float* out_row = op + plane * OHW + i * OW;
        uint8_t* argmax_row = ap + plane * OHW + i * OW;
        float* x_at_max_row = xmp + plane * OHW + i * OW;
#pragma omp simd
        for (int64_t j = 0; j < OW; ++j) {
          const float x0 = r0[2 * j], x1 = r0[2 * j + 1], x2 = r1[2 * j], x3 = r1[2 * j + 1];
          const float v0 = x0 * scale + shift, v1 = x1 * scale + shift;
          const float v2 = x2 * scale + shift, v3 = x3 * scale + shift;
          // strict comparisons keep the earlier of two equal values: top before bottom, left before right
          const bool top_right = v1 > v0, bottom_right = v3 > v2;
          const float top = top_right ? v1 : v0, bottom = bottom_right ? v3 : v2;
          const bool lower = bottom > top;
          const float best = lower ? bottom : top;
          out_row[j] = ((best > 0.0f) | (best != best)) ? best : 0.0f;  // ReLU that keeps a NaN
          // the position in the window, selected in floats (a bool-to-byte select does not vectorise)
          const float top_k = top_right ? 1.0f : 0.0f, bottom_k = bottom_right ? 3.0f : 2.0f;
          argmax_row[j] = (uint8_t)(int)(lower ? bottom_k : top_k);
          const float x_top = top_right ? x1 : x0, x_bottom = bottom_right ? x3 : x2;
          x_at_max_row[j] = lower ? x_bottom : x_top;  // the backward then needs no gather
        }
      }
    }
  });
}

// backward's two sums per channel, [2][C]: the gradients that pass the ReLU, and those times x-hat.
std::vector<double> gradient_sums_nchw(const Sizes& s, const float* gp, const float* op, const float* xmp,
                                       const float* meanp, const float* invstdp) {
  std::vector<double> sums(2 * s.C, 0.0);
  at::parallel_for(0, s.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float mu = meanp[c], is = invstdp[c];
      for (int64_t n = 0; n < s.N; ++n) {
        const int64_t offset = (n * s.C + c) * s.OHW;
        const float* g = gp + offset;
        const float* o = op + offset;
        const float* xm = xmp + offset;
        float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t q = 0; q < s.OHW; ++q) {
          const float gv = g[q], passed = o[q] > 0.0f ? gv : 0.0f;
          sg += passed;
          sgx += passed * (xm[q] - mu) * is;
        }
        sums[c] += sg;
        sums[s.C + c] += sgx;
      }
    }
  });
  return sums;
}

void grad_input_nchw(const Sizes& s, const float* gp, const float* xp, const float* op, const uint8_t* ap,
                     const float* meanp, const float* invstdp, const float* sc, const float* mg, const float* mgx,
                     float* gxp) {
  const int64_t W = s.W, OH = s.OH, OW = s.OW, C = s.C, HW = s.HW, OHW = s.OHW;
  at::parallel_for(0, s.N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % C;
      const float mu = meanp[c], is = invstdp[c], scale = sc[c], mean_g = mg[c], mean_g_xhat = mgx[c];
      const float* p = xp + plane * HW;
      float* gx = gxp + plane * HW;
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) gx[i] = -scale * (mean_g + (p[i] - mu) * is * mean_g_xhat);
      for (int64_t i = 0; i < OH; ++i) {
        float* __restrict r0 = gx + (2 * i) * W;
        float* __restrict r1 = r0 + W;
        const float* g_row = gp + plane * OHW + i * OW;
        const float* out_row = op + plane * OHW + i * OW;
        const uint8_t* argmax_row = ap + plane * OHW + i * OW;
        // four masked adds instead of a scatter to the maximum: they vectorise
#pragma omp simd
        for (int64_t j = 0; j < OW; ++j) {
          const float gv = g_row[j], ov = out_row[j];
          const float add = ov > 0.0f ? scale * gv : 0.0f;
          const float k = (float)(int)argmax_row[j];
          const float a0 = k == 0.0f ? add : 0.0f, a1 = k == 1.0f ? add : 0.0f;
          const float a2 = k == 2.0f ? add : 0.0f, a3 = k == 3.0f ? add : 0.0f;
          const float y0 = r0[2 * j], y1 = r0[2 * j + 1], y2 = r1[2 * j], y3 = r1[2 * j + 1];
          r0[2 * j] = y0 + a0;
          r0[2 * j + 1] = y1 + a1;
          r1[2 * j] = y2 + a2;
          r1[2 * j + 1] = y3 + a3;
        }
      }
    }
  });
}

// ---- channels_last: each loop runs over one pixel's contiguous channels. As functions of restrict
// pointers (not lambdas reading captured ones, which GCC leaves scalar) they vectorise.

// One 2x2 window of forward's: four input pixels p0..p3 (top left, top right, bottom left, bottom right).
void pool_window(const float* __restrict p0, const float* __restrict p1, const float* __restrict p2,
                 const float* __restrict p3, const float* __restrict scale, const float* __restrict shift,
                 float* __restrict out, uint8_t* __restrict argmax, float* __restrict x_at_max, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {  // the same selection as pool_nchw's, channel by channel
    const float x0 = p0[c], x1 = p1[c], x2 = p2[c], x3 = p3[c];
    const float v0 = x0 * scale[c] + shift[c], v1 = x1 * scale[c] + shift[c];
    const float v2 = x2 * scale[c] + shift[c], v3 = x3 * scale[c] + shift[c];
    const bool top_right = v1 > v0, bottom_right = v3 > v2;
    const float top = top_right ? v1 : v0, bottom = bottom_right ? v3 : v2;
    const bool lower = bottom > top;
    const float best = lower ? bottom : top;
    out[c] = ((best > 0.0f) | (best != best)) ? best : 0.0f;
    const float top_k = top_right ? 1.0f : 0.0f, bottom_k = bottom_right ? 3.0f : 2.0f;
    argmax[c] = (uint8_t)(int)(lower ? bottom_k : top_k);
    const float x_top = top_right ? x1 : x0, x_bottom = bottom_right ? x3 : x2;
    x_at_max[c] = lower ? x_bottom : x_top;
  }
}

// backward's masked adds for one window: the pooled gradient to the maximum of the four pixels g0..g3.
void unpool_window(const float* __restrict grad, const float* __restrict out, const uint8_t* __restrict argmax,
                   const float* __restrict scale, float* __restrict g0, float* __restrict g1, float* __restrict g2,
                   float* __restrict g3, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float scaled = scale[c] * grad[c];  // loaded unconditionally: vectorises
    const float add = out[c] > 0.0f ? scaled : 0.0f;
    const float k = (float)(int)argmax[c];
    const float y0 = g0[c], y1 = g1[c], y2 = g2[c], y3 = g3[c];
    g0[c] = y0 + (k == 0.0f ? add : 0.0f);
    g1[c] = y1 + (k == 1.0f ? add : 0.0f);
    g2[c] = y2 + (k == 2.0f ? add : 0.0f);
    g3[c] = y3 + (k == 3.0f ? add : 0.0f);
  }
}

// The per-pixel terms of the channel sums: forward's two statistics, and backward's two sums in one pass.
void add_pixel(const float* __restrict x, float* __restrict acc, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) acc[c] += x[c];
}

void add_squared_deviation(const float* __restrict x, const float* __restrict mean, float* __restrict acc,
                           int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float d = x[c] - mean[c];
    acc[c] += d * d;
  }
}

void add_passed_gradient(const float* __restrict grad, const float* __restrict out, const float* __restrict x_at_max,
                         const float* __restrict mean, const float* __restrict invstd, float* __restrict sum_g,
                         float* __restrict sum_g_xhat, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float g = grad[c], xhat = (x_at_max[c] - mean[c]) * invstd[c];  // loaded unconditionally: vectorises
    const float passed = out[c] > 0.0f ? g : 0.0f;
    sum_g[c] += passed;
    sum_g_xhat[c] += passed * xhat;
  }
}

// K per-channel sums over the N images' `pixels` pixels each: `add(pixel, acc)` adds a pixel's terms
// to acc [K][C]. Float over a few pixels, double over the image, then over the images in order: the
// same sums whatever the thread count.
template <int K, typename Add>
std::vector<double> channel_sums_nhwc(int64_t N, int64_t pixels, int64_t C, Add add) {
  std::vector<double> partial(N * K * C, 0.0);
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(K * C);
    for (int64_t n = begin; n < end; ++n) {
      double* image = partial.data() + n * K * C;
      for (int64_t first = 0; first < pixels; first += kLanes) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        const int64_t last = std::min(pixels, first + kLanes);
        for (int64_t q = first; q < last; ++q) add(n * pixels + q, acc.data());
        for (int64_t k = 0; k < K * C; ++k) image[k] += acc[k];
      }
    }
  });
  std::vector<double> sums(K * C, 0.0);  // [K][C]
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K * C; ++k) sums[k] += partial[n * K * C + k];
  return sums;
}

void pool_nhwc(const Sizes& s, const float* xp, const float* sc, const float* sh, float* op, uint8_t* ap,
               float* xmp) {
  const int64_t H = s.H, W = s.W, OH = s.OH, OW = s.OW, C = s.C;
  at::parallel_for(0, s.N * OH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {  // row = n * OH + i
      const int64_t n = row / OH, i = row % OH;
      for (int64_t j = 0; j < OW; ++j) {
        const float* p0 = xp + ((n * H + 2 * i) * W + 2 * j) * C;  // the window's four pixels
        const float* p2 = p0 + W * C;
        const int64_t o = (row * OW + j) * C;
        pool_window(p0, p0 + C, p2, p2 + C, sc, sh, op + o, ap + o, xmp + o, C);
      }
    }
  });
}

void grad_input_nhwc(const Sizes& s, const float* gp, const float* xp, const float* op, const uint8_t* ap,
                     const float* meanp, const float* invstdp, const float* sc, const float* mg, const float* mgx,
                     float* gxp) {
  const int64_t H = s.H, W = s.W, OH = s.OH, OW = s.OW, C = s.C, HW = s.HW;
  at::parallel_for(0, s.N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {  // each image's base term, then its pooled gradients
      for (int64_t pixel = n * HW; pixel < (n + 1) * HW; ++pixel) {
        const float* p = xp + pixel * C;
        float* gx = gxp + pixel * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) gx[c] = -sc[c] * (mg[c] + (p[c] - meanp[c]) * invstdp[c] * mgx[c]);
      }
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          float* g0 = gxp + ((n * H + 2 * i) * W + 2 * j) * C;
          float* g2 = g0 + W * C;
          const int64_t o = ((n * OH + i) * OW + j) * C;
          unpool_window(gp + o, op + o, ap + o, sc, g0, g0 + C, g2, g2 + C, C);
        }
    }
  });
}

}  // namespace

// Returns (output, argmax 0-3 per window as uint8, input value at each maximum, batch mean, 1/std), the
// first three in x's layout.
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                   torch::Tensor running_mean, torch::Tensor running_var, double momentum,
                                   double eps) {
  const bool nhwc = check_input(x);
  const Sizes s(x);
  const auto pooled = x.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  auto out = torch::empty({s.N, s.C, s.OH, s.OW}, pooled);
  auto argmax = torch::empty({s.N, s.C, s.OH, s.OW}, pooled.dtype(at::kByte));
  auto x_at_max = torch::empty({s.N, s.C, s.OH, s.OW}, pooled);
  auto mean = torch::empty({s.C}, x.options());
  auto invstd = torch::empty({s.C}, x.options());
  const float* xp = x.data_ptr<float>();
  float* meanp = mean.data_ptr<float>();
  float* invstdp = invstd.data_ptr<float>();
  float* rmp = running_mean.data_ptr<float>();
  float* rvp = running_var.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();

  // statistics: the mean first, then the squared deviations from it
  const std::vector<double> sums =
      nhwc ? channel_sums_nhwc<1>(s.N, s.HW, s.C, [=](int64_t pixel, float* acc) { add_pixel(xp + pixel * s.C, acc, s.C); })
           : channel_sums_nchw(s, xp, nullptr);
  std::vector<float> mu(s.C);
  for (int64_t c = 0; c < s.C; ++c) mu[c] = (float)(sums[c] / s.M);
  const float* mup = mu.data();
  const std::vector<double> squares =
      nhwc ? channel_sums_nhwc<1>(s.N, s.HW, s.C, [=](int64_t pixel, float* acc) {
               add_squared_deviation(xp + pixel * s.C, mup, acc, s.C);
             })
           : channel_sums_nchw(s, xp, mup);
  std::vector<float> scale(s.C), shift(s.C);
  for (int64_t c = 0; c < s.C; ++c) {
    const double m = sums[c] / s.M, var = squares[c] / s.M;
    meanp[c] = (float)m;
    invstdp[c] = (float)(1.0 / std::sqrt(var + eps));
    rmp[c] = (float)((1 - momentum) * rmp[c] + momentum * m);
    rvp[c] = (float)((1 - momentum) * rvp[c] + momentum * var * s.M / (s.M > 1 ? s.M - 1 : 1));
    scale[c] = wp[c] * invstdp[c];
    shift[c] = bp[c] - meanp[c] * scale[c];
  }

  auto pool = nhwc ? pool_nhwc : pool_nchw;
  pool(s, xp, scale.data(), shift.data(), out.data_ptr<float>(), argmax.data_ptr<uint8_t>(), x_at_max.data_ptr<float>());
  return {out, argmax, x_at_max, mean, invstd};
}

// Returns (grad input, grad weight, grad bias), grad input in x's layout.
std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor x, torch::Tensor weight,
                                    torch::Tensor out, torch::Tensor argmax, torch::Tensor x_at_max,
                                    torch::Tensor mean, torch::Tensor invstd) {
  const bool nhwc = check_input(x);
  const Sizes s(x);
  const auto layout = nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  grad_out = grad_out.contiguous(layout);
  auto grad_x = torch::empty_like(x, layout);
  auto grad_weight = torch::empty({s.C}, x.options());
  auto grad_bias = torch::empty({s.C}, x.options());
  const float* gp = grad_out.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* op = out.data_ptr<float>();
  const uint8_t* ap = argmax.data_ptr<uint8_t>();
  const float* xmp = x_at_max.data_ptr<float>();
  const float* meanp = mean.data_ptr<float>();
  const float* invstdp = invstd.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  float* gwp = grad_weight.data_ptr<float>();
  float* gbp = grad_bias.data_ptr<float>();

  // grad bias = sum of the gradients that pass the ReLU; grad weight = the same, times x-hat at each maximum
  const std::vector<double> sums =
      nhwc ? channel_sums_nhwc<2>(s.N, s.OHW, s.C, [=](int64_t pixel, float* acc) {
               const int64_t at = pixel * s.C;
               add_passed_gradient(gp + at, op + at, xmp + at, meanp, invstdp, acc, acc + s.C, s.C);
             })
           : gradient_sums_nchw(s, gp, op, xmp, meanp, invstdp);
  std::vector<float> scale(s.C), mean_g(s.C), mean_g_xhat(s.C);
  for (int64_t c = 0; c < s.C; ++c) {
    gbp[c] = (float)sums[c];
    gwp[c] = (float)sums[s.C + c];
    scale[c] = wp[c] * invstdp[c];
    mean_g[c] = gbp[c] / s.M;
    mean_g_xhat[c] = gwp[c] / s.M;
  }

  // grad x = weight/std * (g - mean(g) - x-hat * mean(g * x-hat)), where g is nonzero only at the maxima
  auto grad_input = nhwc ? grad_input_nhwc : grad_input_nchw;
  grad_input(s, gp, xp, op, ap, meanp, invstdp, scale.data(), mean_g.data(), mean_g_xhat.data(),
             grad_x.data_ptr<float>());
  return {grad_x, grad_weight, grad_bias};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "BatchNorm2d (training) -> 2x2 max-pool -> ReLU");
  m.def("backward", &backward, "gradients of forward: input, weight, bias");
}
