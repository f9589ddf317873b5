// AVX2+FMA build of the CPU attention kernels (see the top of ../hetero_attention.cpp):
// CMake compiles this file with -mavx2 -mfma; the baseline build dispatches to it at run time.
#define PYGAD_CPU_ISA avx2
#define PYGAD_CPU_ISA_VARIANT 1
#include "../hetero_attention.cpp"
