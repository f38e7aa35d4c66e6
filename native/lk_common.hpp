// Types shared by the batched LK kernel's translation units (see lk_batched.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gs_lk {

// One pyramid level of one frame; the layout matches LEVEL_DTYPE in gs_tracker_ros/motion/lk_pyramid.py.
struct LevelView {
    const uint8_t* img;   // pixel (0, 0) of the level inside its bordered buffer (reflect-101 border)
    const int16_t* dx;    // Scharr x derivative at pixel (0, 0) (zero border)
    const int16_t* dy;    // Scharr y derivative at pixel (0, 0) (zero border)
    int32_t rows;
    int32_t cols;
    int32_t img_step;     // uint8 elements per buffer row
    int32_t deriv_step;   // int16 elements per buffer row
};

struct Settings {
    int window;           // window side, px (odd)
    int max_iterations;   // per level
    double epsilon_sq;    // a level stops once a step's squared length is at most this (px^2)
    float min_eig;        // minimum structure-tensor eigenvalue per window pixel
};

// Per-thread scratch: the window of the first image (grey x 32) and its derivatives, rows padded
// to `pitch` (a multiple of 8) columns whose derivatives are zero (so that the last columns can be
// read as a whole vector), and the products of one mismatch pass kept for replaying.
struct Patch {
    int pitch = 0;
    std::vector<int16_t> ival, ix, iy;
    std::vector<int16_t> replay;  // one mismatch pass's differences, for replaying OpenCV's additions
    void resize(int window) {
        pitch = (window + 7) & ~7;
        ival.assign(size_t(window) * pitch, 0);
        ix.assign(size_t(window) * pitch, 0);
        iy.assign(size_t(window) * pitch, 0);
        replay.assign(size_t(window) * pitch, 0);
    }
};

// Track one point (px0, py0) px from the pyramid I to the pyramid J (`levels` levels each,
// level 0 = full resolution); writes the position in J and returns the status (true: tracked).
// With `residual`, also writes the mean absolute grey-level difference of the level-0 windows at
// the result (OpenCV's LK error; infinity where the status is false). One implementation per
// instruction set; the results are the same bits.
#define GS_LK_DECLARE_TRACK_POINT                                                                       \
    bool track_point(const LevelView* I, const LevelView* J, int levels, float px0, float py0,          \
                     const Settings& s, Patch& patch, float* ox, float* oy, float* residual);
namespace generic { GS_LK_DECLARE_TRACK_POINT }
namespace avx2 { GS_LK_DECLARE_TRACK_POINT }
#undef GS_LK_DECLARE_TRACK_POINT

}  // namespace gs_lk
