#!/usr/bin/env bash
# Nightly fuzzing: runs every libFuzzer target of a build (bin/*-fuzzer, built
# with -DMOE_ENABLE_FUZZERS=ON) for some minutes each. Each target starts
# from the corpus it grew on earlier nights, plus any new seed of its corpus
# in the repository (tools/<dir>/corpus, recorded by moe_add_fuzzer in
# <build>/fuzzers/<target>.corpus). Prints a table of runs, time, corpus size
# and findings per target; exits 1 if any target found something (a crash,
# a sanitizer report, a leak, a timeout, running out of memory), whose
# inputs are saved under the work directory.
#
#   scripts/fuzz-nightly.sh                # 10 minutes per target
#   scripts/fuzz-nightly.sh -m 1 -b build -w /var/tmp/moe-fuzz
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes=10
build="$root/build"
work=""

usage() {
  cat <<EOF
usage: $0 [-m MINUTES] [-b BUILD_DIR] [-w WORK_DIR]
  -m MINUTES   fuzzing time per target (default $minutes)
  -b BUILD_DIR build whose bin/*-fuzzer run (default $build)
  -w WORK_DIR  grown corpora (corpus/<target>/) and each night's logs and
               artifacts (runs/<date>/) (default BUILD_DIR/fuzz-nightly)
EOF
}

while getopts "m:b:w:h" opt; do
  case "$opt" in
  m) minutes="$OPTARG" ;;
  b) build="$OPTARG" ;;
  w) work="$OPTARG" ;;
  h) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if (($#)); then
  usage >&2
  exit 2
fi
if [[ ! "$minutes" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: -m takes a positive number of minutes, not '$minutes'" >&2
  exit 2
fi
build="$(cd "$build" && pwd)"
work="${work:-$build/fuzz-nightly}"

fuzzers=()
for bin in "$build"/bin/*-fuzzer; do
  [[ -f "$bin" && -x "$bin" ]] && fuzzers+=("$bin")
done
if ((${#fuzzers[@]} == 0)); then
  echo "error: no libFuzzer target in $build/bin (configure with" \
    "-DMOE_ENABLE_FUZZERS=ON and build)" >&2
  exit 2
fi

run="$work/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run"
rows=()
status=0

count_files() { find "$1" -maxdepth 1 -type f | wc -l; }

for bin in "${fuzzers[@]}"; do
  name="${bin##*/}"
  manifest="$build/fuzzers/$name.corpus"
  if [[ ! -f "$manifest" ]]; then
    # A target without a manifest was not made by moe_add_fuzzer, or the
    # build predates it: fuzzing it from nothing would hide that.
    echo "error: $name: no $manifest (declare the target with" \
      "moe_add_fuzzer and reconfigure $build)" >&2
    rows+=("$name|-|-|-|no seed corpus")
    status=1
    continue
  fi
  seeds="$(<"$manifest")"
  corpus="$work/corpus/$name"
  artifacts="$run/$name"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "$seeds" ]]; then
    # Seeds added to the repository since the last night join the grown
    # corpus; one already there is not copied again.
    for seed in "$seeds"/*; do
      [[ -f "$seed" && ! -e "$corpus/${seed##*/}" ]] && cp "$seed" "$corpus/"
    done
  else
    echo "warning: $name: seed corpus $seeds is missing" >&2
  fi
  before="$(count_files "$corpus")"

  echo "fuzzing $name for $minutes min (log: $run/$name.log)" >&2
  start=$SECONDS
  rc=0
  "$bin" -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" \
    >"$run/$name.log" 2>&1 || rc=$?
  seconds=$((SECONDS - start))

  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/$name.log" |
    tail -n 1)"
  # Slow units are reported by libFuzzer but do not fail a run.
  findings="$(find "$artifacts" -maxdepth 1 -type f ! -name 'slow-unit-*' |
    wc -l)"
  found=""
  if ((findings > 0)); then
    found="$findings ($(find "$artifacts" -maxdepth 1 -type f \
      ! -name 'slow-unit-*' -printf '%f\n' | sed 's/-.*//' | sort -u |
      paste -sd, -))"
  elif ((rc != 0)); then
    found="exit status $rc, no input saved"
  fi
  if [[ -n "$found" ]]; then
    status=1
    echo "$name found something: $run/$name.log, inputs in $artifacts/" \
      "(reproduce: $bin <input>)" >&2
  else
    found=0
  fi
  after="$(count_files "$corpus")"
  rows+=("$name|${runs:-?}|${seconds} s|$before -> $after|$found")
done

{
  printf '%s|%s|%s|%s|%s\n' target runs time corpus findings
  printf '%s\n' "${rows[@]}"
} | column -t -s '|' -o '  '
exit "$status"
