// The LK iterations with AVX2 (compiled with -mavx2; called only where the CPU has it).
#if !defined(__AVX2__)
#error "lk_avx2.cpp must be compiled with -mavx2"
#endif
#define GS_LK_NAMESPACE avx2
#include "lk_track.inc"
