// The LK iterations for any CPU (plain loops).
#define GS_LK_NAMESPACE generic
#include "lk_track.inc"
