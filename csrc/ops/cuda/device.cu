// Device queries used by the host-side argument checks (csrc/common.h).
#include <cuda_runtime.h>

#include "common.h"

namespace pygad::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls start clean
    return 0;
  }
  return n;
}

}  // namespace pygad::cuda
