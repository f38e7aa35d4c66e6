#!/usr/bin/env bash
# colcon build + colcon test + colcon test-result of this checkout in a scratch workspace, with
# the ROS 2 wheels of the project venv (no system ROS). Usage (after `make setup`):
#     scripts/colcon_check.sh [WORKSPACE]      # default: a new folder under /tmp
# Installs requirements-colcon.txt into .venv (ament_cmake_pytest, ament_flake8, flake8) and colcon
# into its own tool venv build/colcon-venv. The workspace's src/gs_tracker_ros links to this checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/build/colcon-venv"
COLCON_VERSION="0.3.0"  # colcon-common-extensions
WS="${1:-$(mktemp -d /tmp/gs_tracker_colcon.XXXXXX)}"
log() { printf '[colcon_check] %s\n' "$*" >&2; }

[[ -x "$VENV/bin/python" ]] || { log "no $VENV: run make setup first"; exit 2; }
"$VENV/bin/pip" install -q --no-deps -r "$ROOT/requirements-colcon.txt"
if [[ ! -x "$TOOLS/bin/colcon" ]]; then
  log "colcon tool venv: $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q "colcon-common-extensions==$COLCON_VERSION"
fi
mkdir -p "$WS/src"
ln -sfn "$ROOT" "$WS/src/gs_tracker_ros"
cd "$WS"
# Everything ROS comes from the venv (an ament prefix); the bootstrapper of the ROS wheels sets the
# library path of the venv's Python itself.
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" ROS_LOG_DIR="$WS/ros_log"
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
log "workspace $WS: colcon build"
"$TOOLS/bin/colcon" build --packages-select gs_tracker_ros --event-handlers console_cohesion- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=ON -DCMAKE_BUILD_TYPE=Release
log "colcon test"
rc=0
"$TOOLS/bin/colcon" test --packages-select gs_tracker_ros --event-handlers console_direct- || rc=$?
log "colcon test-result --verbose"
"$TOOLS/bin/colcon" test-result --test-result-base build/gs_tracker_ros --verbose || rc=$?
exit $rc
