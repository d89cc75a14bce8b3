#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_BROWSER=1 bash scripts/setup.sh
export PYTHONUNBUFFERED=1
# CI (and WITH_MEDIAPIPE=1) also creates the MediaPipe target environment so its tests
# run instead of skipping; the install is idempotent (~400 MB, under a minute warm).
if [ "${CI:-}" = true ] || [ "${WITH_MEDIAPIPE:-0}" = 1 ]; then
  .venv/bin/examiner -q targets install mediapipe
fi
# Likewise the Blender renderer's environment (bpy 4.5, ~930 MB; about a minute cold,
# seconds when $POSEEXAMINER_HOME/envs/blender is cached) for tests/simulator/test_blender.py.
if [ "${CI:-}" = true ] || [ "${WITH_BLENDER:-0}" = 1 ]; then
  .venv/bin/examiner -q renderers install blender
fi
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
# pytest exit code 5 = no tests collected (e.g. a -k filter that matches nothing).
if [ $rc -eq 5 ]; then echo "no tests collected"; exit 0; fi
exit $rc
