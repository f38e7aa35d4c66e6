# Everything runs from the repository's own venv (.venv, made by scripts/setup_env.sh); no need
# to activate it or to `source` any ROS setup file.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Environment for anything ROS started from here (see the top of scripts/setup_env.sh). Dropping
# _ROS_WHEELS_BOOTSTRAP_COMPLETE makes the venv's Python set its own LD_LIBRARY_PATH even when make
# itself was started from another bootstrapped ROS-wheels Python.
ROS_ENV := env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE AMENT_PREFIX_PATH=$(VENV) ROS_LOG_DIR=$(CURDIR)/build/ros_log

.PHONY: setup test demo clean

setup:
	@bash scripts/setup_env.sh

# pytest's exit status 5 ("no tests collected") is a failure here too.
test: setup
	@rc=0; $(ROS_ENV) $(PY) -m pytest -q test || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED: pytest collected no tests" >&2; fi; \
	exit $$rc

demo: setup
	@$(ROS_ENV) $(VENV)/bin/gs-tracker demo

clean:
	rm -rf $(VENV) $(CURDIR)/build $(CURDIR)/gs_tracker_ros.egg-info
