// Small CUDA helpers shared by the kernels in csrc/ops/cuda: error checks that throw, a device
// guard (kernels run on the device that owns the data, whatever device is current), a
// stream-ordered scratch buffer, launch-size helpers and warp-group reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "common.h"

namespace pygad::cuda {

// Throws std::runtime_error (Python RuntimeError) naming the failed call and the CUDA error.
inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear a non-sticky error so later calls are not poisoned
    throw std::runtime_error(cat("pygad CUDA error in ", what, ": ", cudaGetErrorName(err), " (",
                                 cudaGetErrorString(err), ")"));
  }
}

#define PYGAD_CUDA_STR2(x) #x
#define PYGAD_CUDA_STR(x) PYGAD_CUDA_STR2(x)
// Checks one CUDA runtime call.
#define PYGAD_CUDA_CHECK(expr) \
  ::pygad::cuda::check_cuda((expr), #expr " at " __FILE__ ":" PYGAD_CUDA_STR(__LINE__))
// Checks the launch just made (bad configuration, no kernel image for this GPU, ...).
#define PYGAD_CUDA_CHECK_LAUNCH(kernel_name) \
  ::pygad::cuda::check_cuda(cudaGetLastError(), "launch of " kernel_name " at " __FILE__ ":" PYGAD_CUDA_STR(__LINE__))

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Makes the device that owns `p` current for the guard's lifetime (restores the previous one).
// Python hands us the tensors' pointers but the current device may be another GPU.
class DeviceGuard {
 public:
  explicit DeviceGuard(const void* p) {
    if (p == nullptr) return;
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
      (void)cudaGetLastError();
      return;
    }
    if (attr.type != cudaMemoryTypeDevice || attr.device < 0) return;
    int cur = -1;
    PYGAD_CUDA_CHECK(cudaGetDevice(&cur));
    if (cur != attr.device) {
      PYGAD_CUDA_CHECK(cudaSetDevice(attr.device));
      prev_ = cur;
    }
  }
  ~DeviceGuard() {
    if (prev_ >= 0) (void)cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

// Scratch memory ordered on `stream`: cudaMallocAsync/cudaFreeAsync (no device-wide sync), with a
// plain cudaMalloc fallback on drivers without memory pools. Freed when it goes out of scope,
// also when a later launch throws.
class Workspace {
 public:
  Workspace(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes == 0) return;
    cudaError_t err = cudaMallocAsync(&ptr_, bytes, stream);
    if (err == cudaErrorNotSupported) {
      (void)cudaGetLastError();
      async_ = false;
      err = cudaMalloc(&ptr_, bytes);
    }
    if (err != cudaSuccess) ptr_ = nullptr;
    check_cuda(err, "allocating pygad CUDA workspace");
  }
  ~Workspace() {
    if (ptr_ == nullptr) return;
    if (async_) {
      (void)cudaFreeAsync(ptr_, stream_);
    } else {
      (void)cudaStreamSynchronize(stream_);
      (void)cudaFree(ptr_);
    }
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  char* get() const { return static_cast<char*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
  bool async_ = true;
};

// Carves aligned sub-buffers out of one allocation: first pass sizes, second pass hands out.
class Carver {
 public:
  explicit Carver(char* base = nullptr) : base_(base) {}
  template <typename T>
  T* take(size_t count) {
    off_ = (off_ + 255) / 256 * 256;
    T* p = base_ ? reinterpret_cast<T*>(base_ + off_) : nullptr;
    off_ += count * sizeof(T);
    return p;
  }
  size_t bytes() const { return (off_ + 255) / 256 * 256; }

 private:
  char* base_;
  size_t off_ = 0;
};

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // kernels use grid-stride loops beyond this

// Blocks of kBlock threads for `threads` work items (capped; at least 1).
inline unsigned grid_for(int64_t threads) {
  int64_t b = (threads + kBlock - 1) / kBlock;
  if (b < 1) b = 1;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned>(b);
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }

template <typename T>
__device__ __forceinline__ T neg_inf() {
  return -static_cast<T>(INFINITY);
}

// Lanes [base, base + g) of the warp, g a power of two <= 32, base = lane rounded down to g.
__device__ __forceinline__ unsigned group_mask(int g) {
  const int lane = threadIdx.x & 31;
  if (g >= 32) return 0xffffffffu;
  return ((1u << g) - 1u) << (lane & ~(g - 1));
}

// Butterfly sum over a group of g lanes: every lane gets the bitwise-same result (each step
// adds the same two values, and IEEE addition commutes).
template <typename T>
__device__ __forceinline__ T group_sum(T v, unsigned mask, int g) {
  for (int off = g >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(mask, v, off);
  return v;
}

}  // namespace pygad::cuda
