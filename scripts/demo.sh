#!/usr/bin/env bash
# Set everything up and run the main job: grade the bundled sample class and print the results.
# Grading needs the bubblewrap sandbox: installed here when we can (root + apt-get); otherwise
# the bundled sample class (the kit's own, not students' code) is graded with an explicit,
# printed --no-sandbox.
set -euo pipefail
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap (the grader's sandbox): apt-get install bubblewrap" >&2
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
fi
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh" course
cd "$ROOT"
sandbox=()
if ! python -c 'from grader.runner import sandbox; sandbox.require()' 2>/dev/null; then
    echo "NOTE: the bubblewrap sandbox does not work here (install it: apt-get install bubblewrap)." >&2
    echo "NOTE: grading the bundled sample class with --no-sandbox; never do that with students' code." >&2
    sandbox=(--no-sandbox)
    echo "+ python -m grader grade data/sample_class/submitted --format table --no-sandbox" >&2
fi
python -m grader grade data/sample_class/submitted --format table "${sandbox[@]}"
