#!/usr/bin/env bash
# The evaluation engine keeps its numbers: tests/fixtures/engine/matrix.toml
# run with --audit gives, example by example, the outcomes, norms, losses,
# gradient counts, accuracies and check verdicts recorded in expected.json
# (computed by imbench 138daf6, before `imbench attack` and `imbench run`
# shared one cell evaluator; updated deliberately since: APGD keeps an
# adversarial point over a higher-loss one, which moved the norms, not the
# outcomes, of two SFNN examples; the cw cells at eps = inf gained check
# 10's unbounded-cell verdict, and the audited gradient cells check 9's
# black-box (Square) verdict). The numbers are those of this project's CPU
# machine with 2 threads; another processor may round differently.
# Usage: cli_engine_fixture.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}
fixture=$src/tests/fixtures/engine
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
source "$src/tests/cli_lib.sh"
cd "$fixture"  # the matrix names its checkpoints relative to its folder
expect 0 "the fixture matrix runs with --audit" -- "$bin" run matrix.toml --out "$tmp/now.h5" --report - --audit --threads 2 --quiet
cd "$tmp"
expect 0 "same numbers as before the engine was unified" -- "$py" "$src/tests/h5_results.py" match "$fixture/expected.json" now.h5
sed 's/^/  | /' out | tail -12
exit $fail
