#!/usr/bin/env bash
# colcon build + colcon test + colcon test-result of this checkout in a scratch workspace, with
# the ROS 2 wheels of the project venv (no system ROS). Usage (after `make setup`):
#     scripts/colcon_check.sh [--write-docs DOC] [WORKSPACE]      # WORKSPACE: default a new folder under /tmp
# --write-docs docs/ros.md replaces the COLCON RESULT block of that file with this run's result
# (scripts/colcon_summary.py: counts, skip reasons, times), so the figures there are never typed.
# Installs requirements-colcon.txt into .venv (ament_cmake_pytest, ament_flake8, flake8) and colcon
# into its own tool venv build/colcon-venv. The workspace's src/gs_tracker_ros links to this checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/build/colcon-venv"
COLCON_VERSION="0.3.0"  # colcon-common-extensions
DOCS=""
if [[ "${1:-}" == "--write-docs" ]]; then
  [[ -n "${2:-}" ]] || { echo "usage: scripts/colcon_check.sh [--write-docs DOC] [WORKSPACE]" >&2; exit 2; }
  DOCS="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
  shift 2
fi
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
t0=$SECONDS
"$TOOLS/bin/colcon" build --packages-select gs_tracker_ros --event-handlers console_cohesion- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=ON -DCMAKE_BUILD_TYPE=Release
echo "build_s=$((SECONDS - t0))" > "$WS/timing.txt"
log "colcon test"
rc=0
t0=$SECONDS
"$TOOLS/bin/colcon" test --packages-select gs_tracker_ros --event-handlers console_direct- || rc=$?
echo "test_s=$((SECONDS - t0))" >> "$WS/timing.txt"
log "colcon test-result --verbose"
"$TOOLS/bin/colcon" test-result --test-result-base build/gs_tracker_ros --verbose || rc=$?
"$TOOLS/bin/colcon" test-result --test-result-base build/gs_tracker_ros --all > "$WS/test-result.txt" || true
if [[ -n "$DOCS" ]]; then
  "$VENV/bin/python" "$ROOT/scripts/colcon_summary.py" "$WS" "$ROOT" --write-docs "$DOCS"
fi
exit $rc
