#!/usr/bin/env bash
# Set everything up and run the main job: grade the bundled sample class and print the results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh" course
cd "$ROOT"
python -m grader grade data/sample_class/submitted --format table
