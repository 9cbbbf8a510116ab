// BatchNorm2d (training mode) -> 2x2 max-pool with stride 2 -> ReLU, forward and backward, in one pass
// each, for float32 tensors on the CPU: contiguous NCHW (`forward`, `backward`) or channels_last
// (`forward_nhwc`, `backward_nhwc`, for a stacked group's grouped layers). Built by lenet_exp/fused_cpu.py.
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

void check_input(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 && x.is_contiguous(),
              "bn_pool_relu: expected a contiguous NCHW float32 CPU tensor");
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "bn_pool_relu: planes must be at least 2x2");
}

void check_input_nhwc(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 &&
                  x.is_contiguous(at::MemoryFormat::ChannelsLast),
              "bn_pool_relu: expected a channels_last float32 CPU tensor");
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "bn_pool_relu: planes must be at least 2x2");
}

// The channels_last loops run over a pixel's C contiguous channels. As functions of restrict pointers
// (not lambdas reading captured ones, which GCC leaves scalar) they vectorise.

// One 2x2 window of forward's: four input pixels p0..p3 (top left, top right, bottom left, bottom right).
void pool_window(const float* __restrict p0, const float* __restrict p1, const float* __restrict p2,
                 const float* __restrict p3, const float* __restrict scale, const float* __restrict shift,
                 float* __restrict out, uint8_t* __restrict argmax, float* __restrict x_at_max, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {  // the same selection as forward's, channel by channel
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

}  // namespace

// Returns (output, argmax 0-3 per window as uint8, input value at each maximum, batch mean, 1/std).
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                   torch::Tensor running_mean, torch::Tensor running_var, double momentum,
                                   double eps) {
  check_input(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = H / 2, OW = W / 2, HW = H * W, OHW = OH * OW, M = N * HW;
  auto out = torch::empty({N, C, OH, OW}, x.options());
  auto argmax = torch::empty({N, C, OH, OW}, x.options().dtype(at::kByte));
  auto x_at_max = torch::empty({N, C, OH, OW}, x.options());
  auto mean = torch::empty({C}, x.options());
  auto invstd = torch::empty({C}, x.options());
  const float* xp = x.data_ptr<float>();
  float* meanp = mean.data_ptr<float>();
  float* invstdp = invstd.data_ptr<float>();
  float* rmp = running_mean.data_ptr<float>();
  float* rvp = running_var.data_ptr<float>();

  // Statistics: one channel per task, so each sum has a fixed order whatever the thread count.
  at::parallel_for(0, C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double sum = 0;
      for (int64_t n = 0; n < N; ++n) sum += plane_sum(xp + (n * C + c) * HW, HW);
      const double mu = sum / M;
      double squares = 0;
      for (int64_t n = 0; n < N; ++n) squares += plane_squared_deviation(xp + (n * C + c) * HW, HW, (float)mu);
      const double var = squares / M;
      meanp[c] = (float)mu;
      invstdp[c] = (float)(1.0 / std::sqrt(var + eps));
      rmp[c] = (float)((1 - momentum) * rmp[c] + momentum * mu);
      rvp[c] = (float)((1 - momentum) * rvp[c] + momentum * var * M / (M > 1 ? M - 1 : 1));
    }
  });

  const float* wp = weight.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* op = out.data_ptr<float>();
  uint8_t* ap = argmax.data_ptr<uint8_t>();
  float* xmp = x_at_max.data_ptr<float>();
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % C;
      const float scale = wp[c] * invstdp[c];
      const float shift = bp[c] - meanp[c] * scale;
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
  return {out, argmax, x_at_max, mean, invstd};
}

// Returns (grad input, grad weight, grad bias).
std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor x, torch::Tensor weight,
                                    torch::Tensor out, torch::Tensor argmax, torch::Tensor x_at_max,
                                    torch::Tensor mean, torch::Tensor invstd) {
  check_input(x);
  grad_out = grad_out.contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = H / 2, OW = W / 2, HW = H * W, OHW = OH * OW, M = N * HW;
  auto grad_x = torch::empty_like(x);
  auto grad_weight = torch::empty({C}, x.options());
  auto grad_bias = torch::empty({C}, x.options());
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
  at::parallel_for(0, C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float mu = meanp[c], is = invstdp[c];
      double sum_g = 0, sum_g_xhat = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t offset = (n * C + c) * OHW;
        const float* g = gp + offset;
        const float* o = op + offset;
        const float* xm = xmp + offset;
        float s = 0, sx = 0;
#pragma omp simd reduction(+ : s, sx)
        for (int64_t q = 0; q < OHW; ++q) {
          const float gv = g[q], passed = o[q] > 0.0f ? gv : 0.0f;
          s += passed;
          sx += passed * (xm[q] - mu) * is;
        }
        sum_g += s;
        sum_g_xhat += sx;
      }
      gbp[c] = (float)sum_g;
      gwp[c] = (float)sum_g_xhat;
    }
  });

  // grad x = weight/std * (g - mean(g) - x-hat * mean(g * x-hat)), where g is nonzero only at the maxima
  float* gxp = grad_x.data_ptr<float>();
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % C;
      const float mu = meanp[c], is = invstdp[c], scale = wp[c] * is;
      const float mean_g = gbp[c] / M, mean_g_xhat = gwp[c] / M;
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
  return {grad_x, grad_weight, grad_bias};
}

// forward's results for a channels_last x [N, H, W, C in memory]: the outputs are channels_last too.
// Every inner loop runs over the channels, contiguous here.
std::vector<torch::Tensor> forward_nhwc(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                        torch::Tensor running_mean, torch::Tensor running_var, double momentum,
                                        double eps) {
  check_input_nhwc(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = H / 2, OW = W / 2, HW = H * W, M = N * HW;
  const auto nhwc = x.options().memory_format(at::MemoryFormat::ChannelsLast);
  auto out = torch::empty({N, C, OH, OW}, nhwc);
  auto argmax = torch::empty({N, C, OH, OW}, nhwc.dtype(at::kByte));
  auto x_at_max = torch::empty({N, C, OH, OW}, nhwc);
  auto mean = torch::empty({C}, x.options());
  auto invstd = torch::empty({C}, x.options());
  const float* xp = x.data_ptr<float>();
  float* meanp = mean.data_ptr<float>();
  float* invstdp = invstd.data_ptr<float>();
  float* rmp = running_mean.data_ptr<float>();
  float* rvp = running_var.data_ptr<float>();

  const std::vector<double> sums =
      channel_sums_nhwc<1>(N, HW, C, [=](int64_t pixel, float* acc) { add_pixel(xp + pixel * C, acc, C); });
  std::vector<float> mu(C);
  for (int64_t c = 0; c < C; ++c) mu[c] = (float)(sums[c] / M);
  const float* mup = mu.data();
  const std::vector<double> squares = channel_sums_nhwc<1>(
      N, HW, C, [=](int64_t pixel, float* acc) { add_squared_deviation(xp + pixel * C, mup, acc, C); });
  std::vector<float> scale(C), shift(C);
  const float* wp = weight.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double m = sums[c] / M, var = squares[c] / M;
    meanp[c] = (float)m;
    invstdp[c] = (float)(1.0 / std::sqrt(var + eps));
    rmp[c] = (float)((1 - momentum) * rmp[c] + momentum * m);
    rvp[c] = (float)((1 - momentum) * rvp[c] + momentum * var * M / (M > 1 ? M - 1 : 1));
    scale[c] = wp[c] * invstdp[c];
    shift[c] = bp[c] - meanp[c] * scale[c];
  }

  float* op = out.data_ptr<float>();
  uint8_t* ap = argmax.data_ptr<uint8_t>();
  float* xmp = x_at_max.data_ptr<float>();
  const float* sc = scale.data();
  const float* sh = shift.data();
  at::parallel_for(0, N * OH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {  // row = n * OH + i
      const int64_t n = row / OH, i = row % OH;
      for (int64_t j = 0; j < OW; ++j) {
        const float* p0 = xp + ((n * H + 2 * i) * W + 2 * j) * C;  // the window's four pixels
        const float* p1 = p0 + C;
        const float* p2 = p0 + W * C;
        const float* p3 = p2 + C;
        const int64_t o = (row * OW + j) * C;
        pool_window(p0, p1, p2, p3, sc, sh, op + o, ap + o, xmp + o, C);
      }
    }
  });
  return {out, argmax, x_at_max, mean, invstd};
}

// backward's results for forward_nhwc's tensors; grad x is channels_last.
std::vector<torch::Tensor> backward_nhwc(torch::Tensor grad_out, torch::Tensor x, torch::Tensor weight,
                                         torch::Tensor out, torch::Tensor argmax, torch::Tensor x_at_max,
                                         torch::Tensor mean, torch::Tensor invstd) {
  check_input_nhwc(x);
  grad_out = grad_out.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = H / 2, OW = W / 2, HW = H * W, OHW = OH * OW, M = N * HW;
  auto grad_x = torch::empty_like(x, at::MemoryFormat::ChannelsLast);
  auto grad_weight = torch::empty({C}, x.options());
  auto grad_bias = torch::empty({C}, x.options());
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

  // the sums of backward, over each image's pooled pixels: gradients that pass the ReLU, and those times x-hat
  const std::vector<double> sums = channel_sums_nhwc<2>(N, OHW, C, [=](int64_t pixel, float* acc) {
    const int64_t at = pixel * C;
    add_passed_gradient(gp + at, op + at, xmp + at, meanp, invstdp, acc, acc + C, C);
  });
  std::vector<float> scale(C), mean_g(C), mean_g_xhat(C);
  for (int64_t c = 0; c < C; ++c) {
    gbp[c] = (float)sums[c];
    gwp[c] = (float)sums[C + c];
    scale[c] = wp[c] * invstdp[c];
    mean_g[c] = gbp[c] / M;
    mean_g_xhat[c] = gwp[c] / M;
  }

  // grad x = weight/std * (g - mean(g) - x-hat * mean(g * x-hat)): each image's base term, then the pooled g
  float* gxp = grad_x.data_ptr<float>();
  const float* sc = scale.data();
  const float* mg = mean_g.data();
  const float* mgx = mean_g_xhat.data();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
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
  return {grad_x, grad_weight, grad_bias};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "BatchNorm2d (training) -> 2x2 max-pool -> ReLU");
  m.def("backward", &backward, "gradients of forward: input, weight, bias");
  m.def("forward_nhwc", &forward_nhwc, "forward for channels_last tensors");
  m.def("backward_nhwc", &backward_nhwc, "backward for channels_last tensors");
}
