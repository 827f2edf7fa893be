# Helpers shared by the CLI test scripts (sourced). The caller sets $tmp (a
# scratch folder) and fail=0; a failed check prints FAIL and sets fail=1.

expect() {  # expect CODE DESCRIPTION -- command...
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; sed 's/^/  | /' "$tmp/out" "$tmp/err" | tail -20; fail=1
  else
    echo "ok: $what"
  fi
}

contains() {  # contains FILE TEXT DESCRIPTION (FILE relative to $tmp)
  if grep -qF -- "$2" "$tmp/$1"; then echo "ok: $3"; else echo "FAIL: $3: '$2' not in $1"; sed 's/^/  | /' "$tmp/$1" | head -20; fail=1; fi
}

synthetic_models() {  # the two models of the synthetic-data matrices, as TOML: a DET and a small SFNN, trained when missing
  cat <<'TOML'
[[models]]
name = "det"
family = "det"
checkpoint = "det.ckpt"
train = { epochs = 2, hidden = [32, 32] }

[[models]]
name = "sfnn"
family = "sfnn"
checkpoint = "sfnn.ckpt"
train = { epochs = 1, hidden = [16, 16], train_samples = 2, test_samples = 2 }
TOML
}

cells_of() {  # cells_of FILE: the number of cells in a results file ("" if unreadable); the caller sets $h5
  $h5 summary "$1" 2>/dev/null | sed -n 's/.*cells=\([0-9]*\).*/\1/p'
}
