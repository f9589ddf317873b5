// CUDA kernels of the fused EDM steps.
//
// Elementwise kernels: one thread per (row, column), grid-stride; consecutive threads take
// consecutive columns of a row (coalesced), each thread recomputes its row's coefficients (a
// few flops, the kernels are memory bound). The loss: one warp per row, a butterfly sum over
// the warp. Every kernel runs on the caller's stream; nothing synchronises.
#include "cuda_utils.cuh"
#include "ops/diffusion_step.h"

namespace pygad::cuda {

namespace {

template <typename T>
__device__ __forceinline__ T sqrt_(T v) {
  return sqrt(v);
}

template <typename T>
__global__ void c_noise_kernel(const T* __restrict__ level, T* __restrict__ c_noise, int64_t b) {
  for (int64_t i = global_thread(); i < b; i += global_threads()) c_noise[i] = log_(level[i]) / T(4);
}

template <typename T>
__global__ void edm_precondition_kernel(const T* __restrict__ x, const T* __restrict__ sigma,
                                        const T* __restrict__ sigma_hat, const T* __restrict__ eps, T s_noise, T sd,
                                        T sd2, int64_t repeat, T* __restrict__ x_hat, T* __restrict__ net_in,
                                        T* __restrict__ c_noise, int64_t b, int64_t d) {
  const int64_t n = b * d;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t i = t / d, j = t - i * d;
    T level = sigma[i];
    T v = x[t];
    if (sigma_hat != nullptr) {
      const T s = sigma[i], sh = sigma_hat[i];
      T a = sh * sh - s * s;
      a = a > T(0) ? a : T(0);
      const T scale = sqrt_(a) * s_noise;
      v = v + scale * eps[t];
      x_hat[t] = v;
      level = sh;
    }
    const T c_in = edm_coef(level, sd, sd2).c_in;
    const T o = c_in * v;
    for (int64_t r = 0; r < repeat; ++r) net_in[r * n + t] = o;
    if (j == 0) c_noise[i] = log_(level) / T(4);
  }
}

template <typename T>
__global__ void edm_step_kernel(const T* __restrict__ x, const T* __restrict__ f_cond,
                                const T* __restrict__ f_uncond, const T* __restrict__ sigma,
                                const T* __restrict__ sigma_next, T w, T sd, T sd2, int64_t repeat,
                                T* __restrict__ x_next, T* __restrict__ deriv, T* __restrict__ net_in_next, int64_t b,
                                int64_t d) {
  const int64_t n = b * d;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t i = t / d;
    const T s = sigma[i], s_next = sigma_next[i];
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    const T xv = x[t];
    T f = f_cond[t];
    if (f_uncond != nullptr) {
      const T fu = f_uncond[t];
      f = fu + w * (f - fu);
    }
    const T den = c.c_skip * xv + c.c_out * f;
    const T g = (xv - den) / s;
    const T xn = xv + (s_next - s) * g;
    deriv[t] = g;
    x_next[t] = xn;
    if (net_in_next != nullptr) {
      const T o = edm_coef(s_next, sd, sd2).c_in * xn;
      for (int64_t r = 0; r < repeat; ++r) net_in_next[r * n + t] = o;
    }
  }
}

template <typename T>
__global__ void edm_heun_kernel(const T* __restrict__ x_hat, const T* __restrict__ deriv,
                                const T* __restrict__ x_next, const T* __restrict__ f_cond,
                                const T* __restrict__ f_uncond, const T* __restrict__ sigma_hat,
                                const T* __restrict__ sigma_next, T w, T sd, T sd2, T* __restrict__ out, int64_t b,
                                int64_t d) {
  const int64_t n = b * d;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t i = t / d;
    const T sh = sigma_hat[i], s_next = sigma_next[i];
    const T xn = x_next[t];
    if (s_next == T(0)) {
      out[t] = xn;
      continue;
    }
    const EdmCoef<T> c = edm_coef(s_next, sd, sd2);
    T f = f_cond[t];
    if (f_uncond != nullptr) {
      const T fu = f_uncond[t];
      f = fu + w * (f - fu);
    }
    const T den = c.c_skip * xn + c.c_out * f;
    const T g2 = (xn - den) / s_next;
    out[t] = x_hat[t] + (s_next - sh) * (T(0.5) * deriv[t] + T(0.5) * g2);
  }
}

template <typename T>
__global__ void edm_noise_kernel(const T* __restrict__ z0, const T* __restrict__ eps, const T* __restrict__ sigma,
                                 T sd, T sd2, T* __restrict__ net_in, T* __restrict__ c_noise, int64_t b, int64_t d) {
  const int64_t n = b * d;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t i = t / d, j = t - i * d;
    const T s = sigma[i];
    net_in[t] = edm_coef(s, sd, sd2).c_in * (z0[t] + s * eps[t]);
    if (j == 0) c_noise[i] = log_(s) / T(4);
  }
}

// One warp per row.
template <typename T>
__global__ void edm_loss_kernel(const T* __restrict__ f, const T* __restrict__ z0, const T* __restrict__ eps,
                                const T* __restrict__ sigma, T sd, T sd2, T* __restrict__ loss, int64_t b,
                                int64_t d) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = global_thread() >> 5, warps = global_threads() >> 5;
  for (int64_t i = warp; i < b; i += warps) {
    const T s = sigma[i];
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    double acc = 0;
    for (int64_t j = lane; j < d; j += 32) {
      const int64_t t = i * d + j;
      const T z = z0[t] + s * eps[t];
      const T r = c.c_skip * z + c.c_out * f[t] - z0[t];
      acc += double(r) * double(r);
    }
    acc = group_sum(acc, 0xffffffffu, 32);
    if (lane == 0) {
      const T ssd = s * sd, lam = (s * s + sd2) / (ssd * ssd);
      loss[i] = lam * T(acc / double(d));
    }
  }
}

template <typename T>
__global__ void edm_loss_backward_kernel(const T* __restrict__ grad_loss, const T* __restrict__ f,
                                         const T* __restrict__ z0, const T* __restrict__ eps,
                                         const T* __restrict__ sigma, T sd, T sd2, T* __restrict__ grad_f, int64_t b,
                                         int64_t d) {
  const int64_t n = b * d;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t i = t / d;
    const T s = sigma[i];
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    const T ssd = s * sd, lam = (s * s + sd2) / (ssd * ssd);
    const T k = grad_loss[i] * T(2) * lam * c.c_out / T(d);
    const T z = z0[t] + s * eps[t];
    grad_f[t] = k * (c.c_skip * z + c.c_out * f[t] - z0[t]);
  }
}

}  // namespace

template <typename T>
void edm_precondition(const T* x, const T* sigma, const T* sigma_hat, const T* eps, double s_noise, double sigma_data,
                      int64_t repeat, T* x_hat, T* net_in, T* c_noise, int64_t b, int64_t d, uintptr_t stream) {
  if (b == 0) return;
  DeviceGuard guard(sigma);
  const cudaStream_t st = as_stream(stream);
  if (d == 0) {  // no columns: c_noise only
    c_noise_kernel<T><<<grid_for(b), kBlock, 0, st>>>(sigma_hat != nullptr ? sigma_hat : sigma, c_noise, b);
  } else {
    edm_precondition_kernel<T><<<grid_for(b * d), kBlock, 0, st>>>(x, sigma, sigma_hat, eps, T(s_noise),
                                                                   T(sigma_data), T(sigma_data * sigma_data), repeat,
                                                                   x_hat, net_in, c_noise, b, d);
  }
  PYGAD_CUDA_CHECK_LAUNCH("edm_precondition_kernel");
}

template <typename T>
void edm_step(const T* x, const T* f_cond, const T* f_uncond, const T* sigma, const T* sigma_next, double guidance,
              double sigma_data, int64_t repeat, T* x_next, T* deriv, T* net_in_next, int64_t b, int64_t d,
              uintptr_t stream) {
  if (b * d == 0) return;
  DeviceGuard guard(x);
  edm_step_kernel<T><<<grid_for(b * d), kBlock, 0, as_stream(stream)>>>(
      x, f_cond, f_uncond, sigma, sigma_next, T(guidance), T(sigma_data), T(sigma_data * sigma_data), repeat, x_next,
      deriv, net_in_next, b, d);
  PYGAD_CUDA_CHECK_LAUNCH("edm_step_kernel");
}

template <typename T>
void edm_heun(const T* x_hat, const T* deriv, const T* x_next, const T* f_cond, const T* f_uncond,
              const T* sigma_hat, const T* sigma_next, double guidance, double sigma_data, T* out, int64_t b,
              int64_t d, uintptr_t stream) {
  if (b * d == 0) return;
  DeviceGuard guard(x_hat);
  edm_heun_kernel<T><<<grid_for(b * d), kBlock, 0, as_stream(stream)>>>(
      x_hat, deriv, x_next, f_cond, f_uncond, sigma_hat, sigma_next, T(guidance), T(sigma_data),
      T(sigma_data * sigma_data), out, b, d);
  PYGAD_CUDA_CHECK_LAUNCH("edm_heun_kernel");
}

template <typename T>
void edm_noise(const T* z0, const T* eps, const T* sigma, double sigma_data, T* net_in, T* c_noise, int64_t b,
               int64_t d, uintptr_t stream) {
  if (b == 0) return;
  DeviceGuard guard(sigma);
  const cudaStream_t st = as_stream(stream);
  if (d == 0) {  // no columns: c_noise only
    c_noise_kernel<T><<<grid_for(b), kBlock, 0, st>>>(sigma, c_noise, b);
  } else {
    edm_noise_kernel<T><<<grid_for(b * d), kBlock, 0, st>>>(z0, eps, sigma, T(sigma_data), T(sigma_data * sigma_data),
                                                            net_in, c_noise, b, d);
  }
  PYGAD_CUDA_CHECK_LAUNCH("edm_noise_kernel");
}

template <typename T>
void edm_loss(const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data, T* loss, int64_t b, int64_t d,
              uintptr_t stream) {
  if (b == 0) return;
  DeviceGuard guard(sigma);
  edm_loss_kernel<T><<<grid_for(b * 32), kBlock, 0, as_stream(stream)>>>(f, z0, eps, sigma, T(sigma_data),
                                                                         T(sigma_data * sigma_data), loss, b, d);
  PYGAD_CUDA_CHECK_LAUNCH("edm_loss_kernel");
}

template <typename T>
void edm_loss_backward(const T* grad_loss, const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data,
                       T* grad_f, int64_t b, int64_t d, uintptr_t stream) {
  if (b * d == 0) return;
  DeviceGuard guard(f);
  edm_loss_backward_kernel<T><<<grid_for(b * d), kBlock, 0, as_stream(stream)>>>(
      grad_loss, f, z0, eps, sigma, T(sigma_data), T(sigma_data * sigma_data), grad_f, b, d);
  PYGAD_CUDA_CHECK_LAUNCH("edm_loss_backward_kernel");
}

#define PYGAD_INSTANTIATE(T)                                                                                      \
  template void edm_precondition<T>(const T*, const T*, const T*, const T*, double, double, int64_t, T*, T*, T*, \
                                    int64_t, int64_t, uintptr_t);                                                 \
  template void edm_step<T>(const T*, const T*, const T*, const T*, const T*, double, double, int64_t, T*, T*, T*, \
                            int64_t, int64_t, uintptr_t);                                                         \
  template void edm_heun<T>(const T*, const T*, const T*, const T*, const T*, const T*, const T*, double, double,  \
                            T*, int64_t, int64_t, uintptr_t);                                                     \
  template void edm_noise<T>(const T*, const T*, const T*, double, T*, T*, int64_t, int64_t, uintptr_t);          \
  template void edm_loss<T>(const T*, const T*, const T*, const T*, double, T*, int64_t, int64_t, uintptr_t);     \
  template void edm_loss_backward<T>(const T*, const T*, const T*, const T*, const T*, double, T*, int64_t,       \
                                     int64_t, uintptr_t);
PYGAD_INSTANTIATE(float)
PYGAD_INSTANTIATE(double)
#undef PYGAD_INSTANTIATE

}  // namespace pygad::cuda
