// Argument checks and CPU/CUDA dispatch for the fused EDM diffusion steps.
#include "ops/diffusion_step.h"

#include <cmath>

namespace pygad {

namespace {

// A [B, d] float matrix (the first one fixes dtype and device for the others).
void check_rows(const Array& a) {
  check_float(a);
  check_shape(a, {-1, -1});
}

void check_like(const Array& ref, const Array& a, std::initializer_list<int64_t> shape) {
  check_same_dtype(ref, a);
  check_shape(a, shape);
  check_same_device(ref, a);
}

void check_sigma_data(double sigma_data) {
  if (!(sigma_data > 0) || !std::isfinite(sigma_data))
    throw ValueError(cat("'sigma_data' must be a positive finite number, got ", sigma_data));
}

void check_finite(double v, const char* name) {
  if (!std::isfinite(v)) throw ValueError(cat("'", name, "' must be finite, got ", v));
}

// Noise levels [B]: every entry finite and > 0 (>= 0 where `allow_zero`: a last step to 0).
// A 0 or NaN level would silently give NaN/inf rows (division by sigma, log(sigma)). CPU arrays
// are scanned (O(B)); CUDA arrays are not (that would synchronise every sampling step).
void check_levels(const Array& sigma, bool allow_zero) {
  if (sigma.is_cuda()) return;
  dispatch_float(sigma, [&](auto t) {
    using T = decltype(t);
    const T* s = sigma.ptr<T>();
    for (int64_t i = 0; i < sigma.numel(); ++i) {
      const bool ok = std::isfinite(s[i]) && (allow_zero ? s[i] >= 0 : s[i] > 0);
      if (!ok)
        throw ValueError(cat("'", sigma.name, "' must hold finite noise levels ", allow_zero ? ">= 0" : "> 0",
                             ", got ", static_cast<double>(s[i]), " at row ", i));
    }
  });
}

}  // namespace

void edm_precondition(const Array& x, const Array& sigma, const Array* sigma_hat, const Array* eps, double s_noise,
                      double sigma_data, int64_t repeat, const Array* x_hat, const Array& net_in,
                      const Array& c_noise, int threads, uintptr_t stream) {
  check_rows(x);
  const int64_t b = x.size(0), d = x.size(1);
  check_like(x, sigma, {b});
  const bool churn = sigma_hat != nullptr || eps != nullptr || x_hat != nullptr;
  if (churn && (sigma_hat == nullptr || eps == nullptr || x_hat == nullptr))
    throw ValueError("churn needs all of 'sigma_hat', 'eps' and 'x_hat' (or none of them)");
  if (churn) {
    check_like(x, *sigma_hat, {b});
    check_like(x, *eps, {b, d});
    check_like(x, *x_hat, {b, d});
  }
  if (repeat < 1) throw ValueError(cat("'repeat' must be >= 1, got ", repeat));
  check_like(x, net_in, {checked_mul(repeat, b, "repeat * batch"), d});
  check_like(x, c_noise, {b});
  check_sigma_data(sigma_data);
  check_levels(sigma, churn);
  if (churn) check_levels(*sigma_hat, false);
  check_finite(s_noise, "s_noise");
  check_cuda_built(x);
  dispatch_float(x, [&](auto t) {
    using T = decltype(t);
    const T* sh = churn ? sigma_hat->ptr<T>() : nullptr;
    const T* ep = churn ? eps->ptr<T>() : nullptr;
    T* xh = churn ? x_hat->ptr<T>() : nullptr;
    if (x.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_precondition<T>(x.ptr<T>(), sigma.ptr<T>(), sh, ep, s_noise, sigma_data, repeat, xh, net_in.ptr<T>(),
                                c_noise.ptr<T>(), b, d, stream);
#endif
    } else {
      cpu::edm_precondition<T>(x.ptr<T>(), sigma.ptr<T>(), sh, ep, s_noise, sigma_data, repeat, xh, net_in.ptr<T>(),
                               c_noise.ptr<T>(), b, d, clamp_threads(threads));
    }
  });
}

void edm_step(const Array& x, const Array& f_cond, const Array* f_uncond, const Array& sigma, const Array& sigma_next,
              double guidance, double sigma_data, int64_t repeat, const Array& x_next, const Array& deriv,
              const Array* net_in_next, int threads, uintptr_t stream) {
  check_rows(x);
  const int64_t b = x.size(0), d = x.size(1);
  check_like(x, f_cond, {b, d});
  if (f_uncond) check_like(x, *f_uncond, {b, d});
  check_like(x, sigma, {b});
  check_like(x, sigma_next, {b});
  check_like(x, x_next, {b, d});
  check_like(x, deriv, {b, d});
  if (repeat < 0) throw ValueError(cat("'repeat' must be >= 0, got ", repeat));
  if ((repeat > 0) != (net_in_next != nullptr))
    throw ValueError("'net_in_next' must be given exactly when 'repeat' > 0");
  if (net_in_next) check_like(x, *net_in_next, {checked_mul(repeat, b, "repeat * batch"), d});
  check_finite(guidance, "guidance");
  check_sigma_data(sigma_data);
  check_levels(sigma, false);
  check_levels(sigma_next, true);
  check_cuda_built(x);
  dispatch_float(x, [&](auto t) {
    using T = decltype(t);
    const T* fu = f_uncond ? f_uncond->ptr<T>() : nullptr;
    T* ni = net_in_next ? net_in_next->ptr<T>() : nullptr;
    if (x.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_step<T>(x.ptr<T>(), f_cond.ptr<T>(), fu, sigma.ptr<T>(), sigma_next.ptr<T>(), guidance, sigma_data,
                        repeat, x_next.ptr<T>(), deriv.ptr<T>(), ni, b, d, stream);
#endif
    } else {
      cpu::edm_step<T>(x.ptr<T>(), f_cond.ptr<T>(), fu, sigma.ptr<T>(), sigma_next.ptr<T>(), guidance, sigma_data,
                       repeat, x_next.ptr<T>(), deriv.ptr<T>(), ni, b, d, clamp_threads(threads));
    }
  });
}

void edm_heun(const Array& x_hat, const Array& deriv, const Array& x_next, const Array& f_cond,
              const Array* f_uncond, const Array& sigma_hat, const Array& sigma_next, double guidance,
              double sigma_data, const Array& out, int threads, uintptr_t stream) {
  check_rows(x_hat);
  const int64_t b = x_hat.size(0), d = x_hat.size(1);
  check_like(x_hat, deriv, {b, d});
  check_like(x_hat, x_next, {b, d});
  check_like(x_hat, f_cond, {b, d});
  if (f_uncond) check_like(x_hat, *f_uncond, {b, d});
  check_like(x_hat, sigma_hat, {b});
  check_like(x_hat, sigma_next, {b});
  check_like(x_hat, out, {b, d});
  check_finite(guidance, "guidance");
  check_sigma_data(sigma_data);
  check_levels(sigma_hat, false);
  check_levels(sigma_next, true);
  check_cuda_built(x_hat);
  dispatch_float(x_hat, [&](auto t) {
    using T = decltype(t);
    const T* fu = f_uncond ? f_uncond->ptr<T>() : nullptr;
    if (x_hat.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_heun<T>(x_hat.ptr<T>(), deriv.ptr<T>(), x_next.ptr<T>(), f_cond.ptr<T>(), fu, sigma_hat.ptr<T>(),
                        sigma_next.ptr<T>(), guidance, sigma_data, out.ptr<T>(), b, d, stream);
#endif
    } else {
      cpu::edm_heun<T>(x_hat.ptr<T>(), deriv.ptr<T>(), x_next.ptr<T>(), f_cond.ptr<T>(), fu, sigma_hat.ptr<T>(),
                       sigma_next.ptr<T>(), guidance, sigma_data, out.ptr<T>(), b, d, clamp_threads(threads));
    }
  });
}

void edm_noise(const Array& z0, const Array& eps, const Array& sigma, double sigma_data, const Array& net_in,
               const Array& c_noise, int threads, uintptr_t stream) {
  check_rows(z0);
  const int64_t b = z0.size(0), d = z0.size(1);
  check_like(z0, eps, {b, d});
  check_like(z0, sigma, {b});
  check_like(z0, net_in, {b, d});
  check_like(z0, c_noise, {b});
  check_sigma_data(sigma_data);
  check_levels(sigma, false);
  check_cuda_built(z0);
  dispatch_float(z0, [&](auto t) {
    using T = decltype(t);
    if (z0.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_noise<T>(z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(), sigma_data, net_in.ptr<T>(), c_noise.ptr<T>(), b,
                         d, stream);
#endif
    } else {
      cpu::edm_noise<T>(z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(), sigma_data, net_in.ptr<T>(), c_noise.ptr<T>(), b,
                        d, clamp_threads(threads));
    }
  });
}

void edm_loss(const Array& f, const Array& z0, const Array& eps, const Array& sigma, double sigma_data,
              const Array& loss, int threads, uintptr_t stream) {
  check_rows(f);
  const int64_t b = f.size(0), d = f.size(1);
  check_like(f, z0, {b, d});
  check_like(f, eps, {b, d});
  check_like(f, sigma, {b});
  check_like(f, loss, {b});
  check_sigma_data(sigma_data);
  check_levels(sigma, false);
  check_cuda_built(f);
  dispatch_float(f, [&](auto t) {
    using T = decltype(t);
    if (f.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_loss<T>(f.ptr<T>(), z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(), sigma_data, loss.ptr<T>(), b, d,
                        stream);
#endif
    } else {
      cpu::edm_loss<T>(f.ptr<T>(), z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(), sigma_data, loss.ptr<T>(), b, d,
                       clamp_threads(threads));
    }
  });
}

void edm_loss_backward(const Array& grad_loss, const Array& f, const Array& z0, const Array& eps,
                       const Array& sigma, double sigma_data, const Array& grad_f, int threads, uintptr_t stream) {
  check_rows(f);
  const int64_t b = f.size(0), d = f.size(1);
  check_like(f, grad_loss, {b});
  check_like(f, z0, {b, d});
  check_like(f, eps, {b, d});
  check_like(f, sigma, {b});
  check_like(f, grad_f, {b, d});
  check_sigma_data(sigma_data);
  check_levels(sigma, false);
  check_cuda_built(f);
  dispatch_float(f, [&](auto t) {
    using T = decltype(t);
    if (f.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::edm_loss_backward<T>(grad_loss.ptr<T>(), f.ptr<T>(), z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(), sigma_data,
                                 grad_f.ptr<T>(), b, d, stream);
#endif
    } else {
      cpu::edm_loss_backward<T>(grad_loss.ptr<T>(), f.ptr<T>(), z0.ptr<T>(), eps.ptr<T>(), sigma.ptr<T>(),
                                sigma_data, grad_f.ptr<T>(), b, d, clamp_threads(threads));
    }
  });
}

}  // namespace pygad
