// Shared plumbing of the native boundary: a plain array descriptor, the error types that
// become Python ValueError/TypeError, argument checks, and OpenMP helpers.
// Nothing here knows about Python or torch: bindings.cpp converts Python objects into `Array`.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#ifdef PYGAD_WITH_OPENMP
#include <omp.h>
#endif

namespace pygad {

// Raised for bad values/shapes/indices -> Python ValueError.
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Raised for unsupported dtypes -> Python TypeError.
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class DType { f32, f64, i64, i32, u8 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::i32: return "int32";
    case DType::u8: return "uint8";
  }
  return "?";
}

// A contiguous, row-major array living on the CPU (device == -1) or a CUDA device (>= 0).
struct Array {
  void* data = nullptr;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  int device = -1;
  std::string name;  // argument name, used in error messages

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t size(int64_t i) const { return shape.at(static_cast<size_t>(i < 0 ? i + ndim() : i)); }
  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  bool is_cuda() const { return device >= 0; }
  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
};

// Message text is built by plain appends, never through iostreams: formatting an error must not
// depend on the C++ locale machinery (on one GPU image, whose compiler carries its own
// libstdc++, ostream's integer insertion crashed inside the extension).
namespace detail {
inline void append(std::string& out, const std::string& v) { out += v; }
inline void append(std::string& out, const char* v) { out += v; }
inline void append(std::string& out, char v) { out += v; }
inline void append(std::string& out, bool v) { out += v ? "true" : "false"; }
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
inline void append(std::string& out, T v) {
  out += std::to_string(v);
}
inline void append(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  out += buf;
}
inline void append(std::string& out, float v) { append(out, static_cast<double>(v)); }
}  // namespace detail

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (detail::append(out, parts), ...);
  return out;
}

// "[2, *, 5]": negative entries (any size) print as "*".
inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? ", " : "", s[i] < 0 ? std::string("*") : std::to_string(s[i]));
  return out + "]";
}

inline void check_dtype(const Array& a, DType d) {
  if (a.dtype != d)
    throw TypeError(cat("'", a.name, "' must have dtype ", dtype_name(d), ", got ", dtype_name(a.dtype)));
}

inline void check_float(const Array& a) {
  if (a.dtype != DType::f32 && a.dtype != DType::f64)
    throw TypeError(cat("'", a.name, "' must be float32 or float64, got ", dtype_name(a.dtype)));
}

inline void check_same_dtype(const Array& a, const Array& b) {
  if (a.dtype != b.dtype)
    throw TypeError(cat("'", b.name, "' has dtype ", dtype_name(b.dtype), " but '", a.name, "' has ",
                        dtype_name(a.dtype), "; they must match"));
}

// expected: -1 means "any size" for that dimension.
inline void check_shape(const Array& a, std::initializer_list<int64_t> expected) {
  bool ok = a.ndim() == static_cast<int64_t>(expected.size());
  if (ok) {
    size_t i = 0;
    for (auto e : expected) {
      if (e >= 0 && a.shape[i] != e) ok = false;
      ++i;
    }
  }
  if (!ok) {
    throw ValueError(cat("'", a.name, "' must have shape ", shape_str(std::vector<int64_t>(expected)), ", got ",
                         shape_str(a.shape)));
  }
}

inline void check_same_device(const Array& a, const Array& b) {
  if (a.device != b.device)
    throw ValueError(cat("'", b.name, "' is on device ", b.device, " but '", a.name, "' is on device ",
                         a.device, " (-1 = cpu); all arguments must be on one device"));
}

// a * b for sizes at the native boundary; a product that does not fit int64 is a clear error
// (an overflowed size could otherwise pass a shape check and size a buffer wrongly).
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out))
    throw ValueError(cat("'", what, "' is out of range: ", a, " * ", b, " does not fit a non-negative int64"));
  return out;
}

inline void check_nonneg(int64_t v, const char* name) {
  if (v < 0) throw ValueError(cat("'", name, "' must be non-negative, got ", v));
}

#ifdef PYGAD_WITH_CUDA
namespace cuda {
// Number of usable CUDA devices (0 when the driver finds none); csrc/ops/cuda/device.cu.
int device_count();
}  // namespace cuda
#endif

// CUDA arrays on a build without CUDA kernels, or on a device that does not exist (a CUDA
// build on a machine without a GPU): a clear error instead of a crash.
inline void check_cuda_built(const Array& a) {
  if (!a.is_cuda()) return;
#ifndef PYGAD_WITH_CUDA
  throw ValueError(cat("'", a.name, "' is a CUDA array but pygad was built without CUDA "
                       "(rebuild with PYGAD_WITH_CUDA=ON)"));
#else
  const int n = cuda::device_count();
  if (a.device >= n)
    throw ValueError(cat("'", a.name, "' is on CUDA device ", a.device, " but ", n,
                         " CUDA device(s) are available"));
#endif
}

inline int clamp_threads(int num_threads) {
#ifdef PYGAD_WITH_OPENMP
  if (num_threads <= 0) num_threads = omp_get_max_threads();
  return num_threads < 1 ? 1 : num_threads;
#else
  (void)num_threads;
  return 1;
#endif
}

inline int thread_id() {
#ifdef PYGAD_WITH_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Calls fn(Scalar{}) with float or double according to the float dtype of `a`.
template <typename Fn>
void dispatch_float(const Array& a, Fn&& fn) {
  if (a.dtype == DType::f32) {
    fn(float{});
  } else if (a.dtype == DType::f64) {
    fn(double{});
  } else {
    check_float(a);
  }
}

}  // namespace pygad
