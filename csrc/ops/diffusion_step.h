// Fused per-step arithmetic of EDM latent diffusion (Karras et al. 2022) over a batch [B, d].
//
// Per row i, with noise level s = sigma[i] and sd = sigma_data (a scalar):
//   c_skip = sd^2 / (s^2 + sd^2)     c_out = s sd / sqrt(s^2 + sd^2)
//   c_in   = 1 / sqrt(s^2 + sd^2)    c_noise = ln(s) / 4
//   denoised D = c_skip x + c_out F, with the network output F guided when an unconditional
//   evaluation is given: F = F_u + w (F_c - F_u)  (classifier-free guidance, D is linear in F)
//
// Sampling: edm_precondition (churn noise + network input), edm_step (Euler update; also the
// next network input), edm_heun (Heun's 2nd-order correction). Training: edm_noise (noised
// network input) and edm_loss (+ backward). Noise levels are per row ([B] arrays) so one call
// serves any mix of levels; the MLP between the calls stays in torch GEMMs.
// Every kernel makes one pass over its [B, d] operands; the math is done in the array dtype.
#pragma once
#include <cmath>

#include "common.h"

namespace pygad {

// x [B, d], sigma [B] -> net_in [R*B, d] (rows r*B + i = c_in x[i], R = repeat >= 1 copies for a
// stacked conditional/unconditional evaluation), c_noise [B].
// Churn when sigma_hat [B], eps [B, d] and x_hat [B, d] are given (else all nullptr):
//   x_hat = x + sqrt(max(sigma_hat^2 - sigma^2, 0)) * s_noise * eps, and the preconditioning is
//   that of x_hat at level sigma_hat.
void edm_precondition(const Array& x, const Array& sigma, const Array* sigma_hat, const Array* eps, double s_noise,
                      double sigma_data, int64_t repeat, const Array* x_hat, const Array& net_in,
                      const Array& c_noise, int threads, uintptr_t stream);

// Euler step from level sigma to sigma_next. x [B, d], f_cond [B, d], f_uncond [B, d] or nullptr,
// sigma, sigma_next [B] ->
//   deriv [B, d] = (x - D) / sigma,   x_next [B, d] = x + (sigma_next - sigma) deriv,
//   net_in_next [R*B, d] = c_in(sigma_next) x_next (R = repeat copies; skipped when repeat == 0 and
//   net_in_next == nullptr).
void edm_step(const Array& x, const Array& f_cond, const Array* f_uncond, const Array& sigma, const Array& sigma_next,
              double guidance, double sigma_data, int64_t repeat, const Array& x_next, const Array& deriv,
              const Array* net_in_next, int threads, uintptr_t stream);

// Heun correction of an Euler step x_hat (level sigma_hat) -> x_next (level sigma_next), from the
// network output at x_next: deriv2 = (x_next - D(x_next)) / sigma_next,
//   out [B, d] = x_hat + (sigma_next - sigma_hat) (0.5 deriv + 0.5 deriv2);
// rows with sigma_next == 0 keep out = x_next (the final Euler step).
void edm_heun(const Array& x_hat, const Array& deriv, const Array& x_next, const Array& f_cond,
              const Array* f_uncond, const Array& sigma_hat, const Array& sigma_next, double guidance,
              double sigma_data, const Array& out, int threads, uintptr_t stream);

// Training input. z0 [B, d], eps [B, d], sigma [B] -> net_in [B, d] = c_in (z0 + sigma eps), c_noise [B].
void edm_noise(const Array& z0, const Array& eps, const Array& sigma, double sigma_data, const Array& net_in,
               const Array& c_noise, int threads, uintptr_t stream);

// Weighted denoising loss per row. f [B, d] (network output at z = z0 + sigma eps) ->
//   loss [B] = lambda / d * sum_j (c_skip z + c_out f - z0)_j^2,  lambda = (s^2 + sd^2) / (s sd)^2.
void edm_loss(const Array& f, const Array& z0, const Array& eps, const Array& sigma, double sigma_data,
              const Array& loss, int threads, uintptr_t stream);
// grad_loss [B] -> grad_f [B, d] = grad_loss * 2 lambda c_out / d * (c_skip z + c_out f - z0).
void edm_loss_backward(const Array& grad_loss, const Array& f, const Array& z0, const Array& eps,
                       const Array& sigma, double sigma_data, const Array& grad_f, int threads, uintptr_t stream);

namespace cpu {
template <typename T>
void edm_precondition(const T* x, const T* sigma, const T* sigma_hat, const T* eps, double s_noise, double sigma_data,
                      int64_t repeat, T* x_hat, T* net_in, T* c_noise, int64_t b, int64_t d, int threads);
template <typename T>
void edm_step(const T* x, const T* f_cond, const T* f_uncond, const T* sigma, const T* sigma_next, double guidance,
              double sigma_data, int64_t repeat, T* x_next, T* deriv, T* net_in_next, int64_t b, int64_t d,
              int threads);
template <typename T>
void edm_heun(const T* x_hat, const T* deriv, const T* x_next, const T* f_cond, const T* f_uncond,
              const T* sigma_hat, const T* sigma_next, double guidance, double sigma_data, T* out, int64_t b,
              int64_t d, int threads);
template <typename T>
void edm_noise(const T* z0, const T* eps, const T* sigma, double sigma_data, T* net_in, T* c_noise, int64_t b,
               int64_t d, int threads);
template <typename T>
void edm_loss(const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data, T* loss, int64_t b, int64_t d,
              int threads);
template <typename T>
void edm_loss_backward(const T* grad_loss, const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data,
                       T* grad_f, int64_t b, int64_t d, int threads);
}  // namespace cpu

namespace cuda {
template <typename T>
void edm_precondition(const T* x, const T* sigma, const T* sigma_hat, const T* eps, double s_noise, double sigma_data,
                      int64_t repeat, T* x_hat, T* net_in, T* c_noise, int64_t b, int64_t d, uintptr_t stream);
template <typename T>
void edm_step(const T* x, const T* f_cond, const T* f_uncond, const T* sigma, const T* sigma_next, double guidance,
              double sigma_data, int64_t repeat, T* x_next, T* deriv, T* net_in_next, int64_t b, int64_t d,
              uintptr_t stream);
template <typename T>
void edm_heun(const T* x_hat, const T* deriv, const T* x_next, const T* f_cond, const T* f_uncond,
              const T* sigma_hat, const T* sigma_next, double guidance, double sigma_data, T* out, int64_t b,
              int64_t d, uintptr_t stream);
template <typename T>
void edm_noise(const T* z0, const T* eps, const T* sigma, double sigma_data, T* net_in, T* c_noise, int64_t b,
               int64_t d, uintptr_t stream);
template <typename T>
void edm_loss(const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data, T* loss, int64_t b, int64_t d,
              uintptr_t stream);
template <typename T>
void edm_loss_backward(const T* grad_loss, const T* f, const T* z0, const T* eps, const T* sigma, double sigma_data,
                       T* grad_f, int64_t b, int64_t d, uintptr_t stream);
}  // namespace cuda

// Per-row EDM coefficients in the array dtype T (host and device). sd and sd2 = sd^2 arrive
// already rounded to T (as torch rounds a Python scalar), so the reference twins match closely.
template <typename T>
struct EdmCoef {
  T c_skip, c_out, c_in;
};

#if defined(__CUDACC__)
#define PYGAD_EDM_HD __host__ __device__ __forceinline__
#else
#define PYGAD_EDM_HD inline
#endif

template <typename T>
PYGAD_EDM_HD EdmCoef<T> edm_coef(T s, T sd, T sd2) {
  using std::sqrt;
  const T v = s * s + sd2;
  const T r = sqrt(v);
  return {sd2 / v, s * sd / r, T(1) / r};
}

}  // namespace pygad
