// CPU kernels of the fused EDM steps: OpenMP over rows, per-row coefficients computed once,
// the inner loop over d is a plain vectorisable loop. Rows are disjoint: no atomics.
#include <algorithm>
#include <cmath>

#include "ops/diffusion_step.h"

namespace pygad::cpu {

namespace {
// Below this many elements the OpenMP fork costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

template <typename T>
void edm_precondition(const T* x, const T* sigma, const T* sigma_hat, const T* eps, double s_noise, double sigma_data,
                      int64_t repeat, T* x_hat, T* net_in, T* c_noise, int64_t b, int64_t d, int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data), sn = T(s_noise);
  const bool churn = sigma_hat != nullptr;
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T* xi = x + i * d;
    T* ni = net_in + i * d;
    T level = sigma[i];
    if (churn) {
      const T s = sigma[i], sh = sigma_hat[i];
      const T scale = std::sqrt(std::max(sh * sh - s * s, T(0))) * sn;
      const T* ei = eps + i * d;
      T* hi = x_hat + i * d;
      const T c_in = edm_coef(sh, sd, sd2).c_in;
      for (int64_t j = 0; j < d; ++j) {
        const T v = xi[j] + scale * ei[j];
        hi[j] = v;
        ni[j] = c_in * v;
      }
      level = sh;
    } else {
      const T c_in = edm_coef(level, sd, sd2).c_in;
      for (int64_t j = 0; j < d; ++j) ni[j] = c_in * xi[j];
    }
    for (int64_t r = 1; r < repeat; ++r) std::copy(ni, ni + d, net_in + (r * b + i) * d);
    c_noise[i] = std::log(level) / T(4);
  }
}

template <typename T>
void edm_step(const T* x, const T* f_cond, const T* f_uncond, const T* sigma, const T* sigma_next, double guidance,
              double sigma_data, int64_t repeat, T* x_next, T* deriv, T* net_in_next, int64_t b, int64_t d,
              int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data), w = T(guidance);
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T s = sigma[i], s_next = sigma_next[i], h = s_next - s;
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    const T c_in_next = edm_coef(s_next, sd, sd2).c_in;
    const T* xi = x + i * d;
    const T* fc = f_cond + i * d;
    T* xn = x_next + i * d;
    T* dv = deriv + i * d;
    if (f_uncond) {
      const T* fu = f_uncond + i * d;
      for (int64_t j = 0; j < d; ++j) {
        const T f = fu[j] + w * (fc[j] - fu[j]);
        const T den = c.c_skip * xi[j] + c.c_out * f;
        const T g = (xi[j] - den) / s;
        dv[j] = g;
        xn[j] = xi[j] + h * g;
      }
    } else {
      for (int64_t j = 0; j < d; ++j) {
        const T den = c.c_skip * xi[j] + c.c_out * fc[j];
        const T g = (xi[j] - den) / s;
        dv[j] = g;
        xn[j] = xi[j] + h * g;
      }
    }
    if (net_in_next) {
      T* ni = net_in_next + i * d;
      for (int64_t j = 0; j < d; ++j) ni[j] = c_in_next * xn[j];
      for (int64_t r = 1; r < repeat; ++r) std::copy(ni, ni + d, net_in_next + (r * b + i) * d);
    }
  }
}

template <typename T>
void edm_heun(const T* x_hat, const T* deriv, const T* x_next, const T* f_cond, const T* f_uncond,
              const T* sigma_hat, const T* sigma_next, double guidance, double sigma_data, T* out, int64_t b,
              int64_t d, int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data), w = T(guidance), half = T(0.5);
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T sh = sigma_hat[i], s_next = sigma_next[i], h = s_next - sh;
    const T* xh = x_hat + i * d;
    const T* dv = deriv + i * d;
    const T* xn = x_next + i * d;
    T* o = out + i * d;
    if (s_next == T(0)) {  // last step: Euler only
      std::copy(xn, xn + d, o);
      continue;
    }
    const EdmCoef<T> c = edm_coef(s_next, sd, sd2);
    const T* fc = f_cond + i * d;
    if (f_uncond) {
      const T* fu = f_uncond + i * d;
      for (int64_t j = 0; j < d; ++j) {
        const T f = fu[j] + w * (fc[j] - fu[j]);
        const T den = c.c_skip * xn[j] + c.c_out * f;
        const T g2 = (xn[j] - den) / s_next;
        o[j] = xh[j] + h * (half * dv[j] + half * g2);
      }
    } else {
      for (int64_t j = 0; j < d; ++j) {
        const T den = c.c_skip * xn[j] + c.c_out * fc[j];
        const T g2 = (xn[j] - den) / s_next;
        o[j] = xh[j] + h * (half * dv[j] + half * g2);
      }
    }
  }
}

template <typename T>
void edm_noise(const T* z0, const T* eps, const T* sigma, double sigma_data, T* net_in, T* c_noise, int64_t b,
               int64_t d, int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data);
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T s = sigma[i], c_in = edm_coef(s, sd, sd2).c_in;
    const T* zi = z0 + i * d;
    const T* ei = eps + i * d;
    T* ni = net_in + i * d;
    for (int64_t j = 0; j < d; ++j) ni[j] = c_in * (zi[j] + s * ei[j]);
    c_noise[i] = std::log(s) / T(4);
  }
}

template <typename T>
void edm_loss(const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data, T* loss, int64_t b, int64_t d,
              int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data);
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T s = sigma[i];
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    const T ssd = s * sd, lam = (s * s + sd2) / (ssd * ssd);
    const T* fi = f + i * d;
    const T* zi = z0 + i * d;
    const T* ei = eps + i * d;
    double acc = 0;  // double accumulation for float too
    for (int64_t j = 0; j < d; ++j) {
      const T z = zi[j] + s * ei[j];
      const T r = c.c_skip * z + c.c_out * fi[j] - zi[j];
      acc += double(r) * double(r);
    }
    loss[i] = lam * T(acc / double(d));
  }
}

template <typename T>
void edm_loss_backward(const T* grad_loss, const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data,
                       T* grad_f, int64_t b, int64_t d, int threads) {
  const T sd = T(sigma_data), sd2 = T(sigma_data * sigma_data);
#pragma omp parallel for num_threads(threads) schedule(static) if (b * d >= kParallelMin)
  for (int64_t i = 0; i < b; ++i) {
    const T s = sigma[i];
    const EdmCoef<T> c = edm_coef(s, sd, sd2);
    const T ssd = s * sd, lam = (s * s + sd2) / (ssd * ssd);
    const T k = grad_loss[i] * T(2) * lam * c.c_out / T(d);
    const T* fi = f + i * d;
    const T* zi = z0 + i * d;
    const T* ei = eps + i * d;
    T* gi = grad_f + i * d;
    for (int64_t j = 0; j < d; ++j) {
      const T z = zi[j] + s * ei[j];
      gi[j] = k * (c.c_skip * z + c.c_out * fi[j] - zi[j]);
    }
  }
}

#define PYGAD_INSTANTIATE(T)                                                                                      \
  template void edm_precondition<T>(const T*, const T*, const T*, const T*, double, double, int64_t, T*, T*, T*, \
                                    int64_t, int64_t, int);                                                       \
  template void edm_step<T>(const T*, const T*, const T*, const T*, const T*, double, double, int64_t, T*, T*, T*, \
                            int64_t, int64_t, int);                                                               \
  template void edm_heun<T>(const T*, const T*, const T*, const T*, const T*, const T*, const T*, double, double,  \
                            T*, int64_t, int64_t, int);                                                           \
  template void edm_noise<T>(const T*, const T*, const T*, double, T*, T*, int64_t, int64_t, int);                \
  template void edm_loss<T>(const T*, const T*, const T*, const T*, double, T*, int64_t, int64_t, int);           \
  template void edm_loss_backward<T>(const T*, const T*, const T*, const T*, const T*, double, T*, int64_t,       \
                                     int64_t, int);
PYGAD_INSTANTIATE(float)
PYGAD_INSTANTIATE(double)
#undef PYGAD_INSTANTIATE

}  // namespace pygad::cpu
