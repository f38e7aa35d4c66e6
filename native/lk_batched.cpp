// Batched sparse pyramidal Lucas-Kanade, forward and backward, for many points of many frame
// pairs in one call, on several threads (the C interface loaded by
// gs_tracker_ros/motion/lk_native.py with ctypes, which releases the GIL during the call).
//
// Written from the published description of OpenCV's cv::calcOpticalFlowPyrLK (video module) so
// that its tracks are OpenCV's, bit for bit: per pyramid level, the window of the
// first image and its Scharr derivatives are sampled bilinearly with 14-bit fixed-point weights
// (the image at 32x its grey value), the 2x2 structure tensor and the mismatch vector are
// integer sums scaled by 2^-20, and Newton steps are taken until a step is at most `epsilon` px,
// `max_iterations` steps were taken, or a step undoes the previous one (then half of it is taken
// back). A window whose smaller structure-tensor eigenvalue per pixel is below
// `min_eig_threshold`, or that leaves the bordered image, fails at level 0 and is skipped on a
// coarser level. OpenCV adds the integer products of its window sums in float (4-lane vectors
// over blocks of 8 columns, one float for the rest); lk_track.inc adds the same values in the same
// order, keeping them in integers only while that cannot change a bit.
//
// The caller owns every buffer: per frame and pyramid level the grey image with a reflect-101
// border and its Scharr derivatives with a zero border, each at least `window` px wide and with
// at least 64 bytes of slack after the buffer (gs_tracker_ros/motion/lk_pyramid.py).
//
// Coordinates: px, x right, y down, pixel centres at integers.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "lk_common.hpp"

namespace {

using gs_lk::LevelView;
using TrackPoint = bool (*)(const LevelView*, const LevelView*, int, float, float, const gs_lk::Settings&,
                            gs_lk::Patch&, float*, float*, float*);

TrackPoint pick_kernel(int use_simd) {
#if defined(GS_LK_HAVE_AVX2)
    if (use_simd && __builtin_cpu_supports("avx2")) return &gs_lk::avx2::track_point;
#endif
    (void)use_simd;
    return &gs_lk::generic::track_point;
}

}  // namespace

extern "C" {

// Version of this interface; lk_native.py refuses a library of another version.
int gs_lk_version() { return 2; }

// 1 where the AVX2 kernel is built and this CPU has AVX2, else 0 (the plain loops: the same bits).
int gs_lk_simd() { return pick_kernel(1) == &gs_lk::generic::track_point ? 0 : 1; }

// For each item i: LK of points[i] from frame frame_a[i] to frame frame_b[i] (rows of `levels`,
// a (num_frames, num_levels) table), then, where that succeeded and `backward` is set, back from
// the landing point to frame_a[i]. Outputs: landing (n, 2), status_fwd (n), residual_fwd (n, or
// null: not computed; the forward pass's mean absolute grey-level difference at the landing,
// infinity where it failed), back (n, 2; the start point where the backward pass did not run),
// status_bwd (n). Runs on `threads` threads.
// Returns 0, or -1 for invalid arguments.
int gs_lk_forward_backward(const LevelView* levels, int num_levels, const int32_t* frame_a,
                           const int32_t* frame_b, const float* points, int n, int window, int max_iterations,
                           double epsilon, float min_eig_threshold, int backward, int threads, int use_simd,
                           float* landing, uint8_t* status_fwd, float* residual_fwd, float* back,
                           uint8_t* status_bwd) {
    if (n < 0 || num_levels < 1 || window < 3 || window > 255 || max_iterations < 0 || threads < 1) return -1;
    gs_lk::Settings s;
    s.window = window;
    s.max_iterations = std::min(max_iterations, 100);
    const double eps = std::min(std::max(epsilon, 0.0), 10.0);
    s.epsilon_sq = eps * eps;
    s.min_eig = min_eig_threshold;
    const TrackPoint track = pick_kernel(use_simd);

    constexpr int CHUNK = 8;  // items a thread takes at a time
    std::atomic<int> next(0);
    auto work = [&]() {
        gs_lk::Patch patch;
        patch.resize(window);
        for (;;) {
            const int start = next.fetch_add(CHUNK);
            if (start >= n) break;
            const int end = std::min(n, start + CHUNK);
            for (int i = start; i < end; ++i) {
                const LevelView* la = levels + size_t(frame_a[i]) * num_levels;
                const LevelView* lb = levels + size_t(frame_b[i]) * num_levels;
                const float x = points[2 * i], y = points[2 * i + 1];
                float fx, fy, bx = x, by = y;
                const bool ok = track(la, lb, num_levels, x, y, s, patch, &fx, &fy,
                                      residual_fwd ? residual_fwd + i : nullptr);
                const bool ok_back =
                    ok && backward && track(lb, la, num_levels, fx, fy, s, patch, &bx, &by, nullptr);
                landing[2 * i] = fx;
                landing[2 * i + 1] = fy;
                status_fwd[i] = ok;
                back[2 * i] = bx;
                back[2 * i + 1] = by;
                status_bwd[i] = ok_back;
            }
        }
    };
    const int helpers = std::min(threads, std::max(1, (n + CHUNK - 1) / CHUNK)) - 1;
    std::vector<std::thread> pool;
    pool.reserve(size_t(helpers));
    for (int t = 0; t < helpers; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    return 0;
}

}  // extern "C"
