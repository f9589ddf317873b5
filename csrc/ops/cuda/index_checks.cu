// Device-side index checks (declared in csrc/index_checks.h): one grid-stride pass that counts
// the bad entries, reduced per block and added atomically into one counter.
#include "cuda_utils.cuh"
#include "index_checks.h"

namespace pygad::cuda {

namespace {

__device__ __forceinline__ void block_add_count(unsigned long long local, unsigned long long* total) {
  __shared__ unsigned long long warp_sums[kBlock / 32];
  for (int off = 16; off > 0; off >>= 1) local += __shfl_xor_sync(0xffffffffu, local, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = local;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long s = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += warp_sums[w];
    if (s) atomicAdd(total, s);
  }
}

// All threads of every block run to the end (the grid-stride loop has no early exit), so the
// full-warp shuffles and __syncthreads in block_add_count are safe. blockDim must be kBlock.
__global__ void count_out_of_range_kernel(const int64_t* __restrict__ idx, int64_t n, int64_t lo, int64_t hi,
                                          unsigned long long* total) {
  unsigned long long bad = 0;
  for (int64_t t = global_thread(); t < n; t += global_threads()) {
    const int64_t v = idx[t];
    bad += (v < lo || v >= hi) ? 1ull : 0ull;
  }
  block_add_count(bad, total);
}

__global__ void check_ptr_kernel(const int64_t* __restrict__ ptr, int64_t n, int64_t e, unsigned long long* total) {
  unsigned long long bad = 0;
  for (int64_t t = global_thread(); t <= n; t += global_threads()) {
    const int64_t v = ptr[t];
    if (t == 0 && v != 0) bad = 1;
    if (t > 0 && v < ptr[t - 1]) bad = 1;
    if (t == n && v != e) bad = 1;
  }
  block_add_count(bad, total);
}

// Runs `launch(counter)` on the stream, then copies the counter back (synchronises the stream).
template <typename Launch>
int64_t count_on_device(cudaStream_t s, Launch&& launch) {
  Workspace ws(sizeof(unsigned long long), s);
  auto* counter = reinterpret_cast<unsigned long long*>(ws.get());
  PYGAD_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), s));
  launch(counter);
  unsigned long long host = 0;
  PYGAD_CUDA_CHECK(cudaMemcpyAsync(&host, counter, sizeof(host), cudaMemcpyDeviceToHost, s));
  PYGAD_CUDA_CHECK(cudaStreamSynchronize(s));
  return static_cast<int64_t>(host);
}

}  // namespace

int64_t count_out_of_range(const int64_t* idx, int64_t n, int64_t lo, int64_t hi, uintptr_t stream) {
  if (n <= 0) return 0;
  DeviceGuard guard(idx);
  const cudaStream_t s = as_stream(stream);
  return count_on_device(s, [&](unsigned long long* counter) {
    count_out_of_range_kernel<<<grid_for(n), kBlock, 0, s>>>(idx, n, lo, hi, counter);
    PYGAD_CUDA_CHECK_LAUNCH("count_out_of_range_kernel");
  });
}

int64_t check_ptr(const int64_t* ptr, int64_t n, int64_t e, uintptr_t stream) {
  if (n < 0 || ptr == nullptr) return 1;
  DeviceGuard guard(ptr);
  const cudaStream_t s = as_stream(stream);
  const int64_t bad = count_on_device(s, [&](unsigned long long* counter) {
    check_ptr_kernel<<<grid_for(n + 1), kBlock, 0, s>>>(ptr, n, e, counter);
    PYGAD_CUDA_CHECK_LAUNCH("check_ptr_kernel");
  });
  return bad ? 1 : 0;
}

}  // namespace pygad::cuda
