// BatchNorm2d (training mode) -> 2x2 max-pool with stride 2 -> ReLU, forward and backward, in one pass
// each, for contiguous NCHW float32 tensors on the CPU. Built by lenet_exp/fused_cpu.py.
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "BatchNorm2d (training) -> 2x2 max-pool -> ReLU");
  m.def("backward", &backward, "gradients of forward: input, weight, bias");
}
