#!/usr/bin/env bash
# Whole-process benchmark: pressplay against the Hera baseline in ../shared/bench, same inputs, one run.
#
# Usage: bench/run.sh [RESULTS_DIR]        (default /tmp/pressplay-bench-results; never inside the repo)
# Env:   PRESSPLAY  binary to measure (default ROOT/target/release/pressplay, built if missing)
#        PY         python with hera==7.1.0 and pyyaml (default: a venv made under
#                   ${XDG_CACHE_HOME:-$HOME/.cache}/pressplay-bench/venv)
#        RUNS       timed runs per command (default 7; one warm-up run comes on top)
#        NS         task counts (default "100 1000 5000"; inputs come from ../shared/bench/inputs)
#
# Wall time: hyperfine median (no shell in between).
# Peak memory: median over RUNS runs of GNU time's %M (max RSS), in MiB.
# Prints a markdown table to stdout; raw hyperfine JSON and logs go to RESULTS_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="$(cd "$ROOT/../shared" 2>/dev/null && pwd)" || {
  echo "error: $ROOT/../shared not found (the Hera baseline lives in ../shared/bench)" >&2
  exit 2
}
BENCH="$SHARED/bench"
RUNS="${RUNS:-7}"
NS="${NS:-100 1000 5000}"
RES="${1:-/tmp/pressplay-bench-results}"
PRESSPLAY="${PRESSPLAY:-$ROOT/target/release/pressplay}"
PY="${PY:-}"
HERA_VERSION="7.1.0"

log() { echo "[bench] $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

APT_UPDATED=0
apt_install() { # pkg...
  is_root || return 1
  command -v apt-get >/dev/null || return 1
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- tools -------------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null; then
  if is_root; then
    log "installing hyperfine with apt-get"
    apt_install hyperfine || die "could not install hyperfine with apt-get"
  else
    die "hyperfine is not installed; install it (e.g. 'sudo apt-get install hyperfine') and rerun"
  fi
fi
if [ ! -x /usr/bin/time ]; then
  if is_root; then
    log "installing GNU time with apt-get"
    apt_install time || die "could not install GNU time with apt-get"
  else
    die "GNU time (/usr/bin/time) is missing; install it (e.g. 'sudo apt-get install time') and rerun"
  fi
fi
command -v python3 >/dev/null || die "python3 is needed (for Hera and to read hyperfine's JSON)"

# --- pressplay binary --------------------------------------------------------------------------
if [ ! -x "$PRESSPLAY" ]; then
  log "$PRESSPLAY missing: running cargo build --release in $ROOT"
  (cd "$ROOT" && cargo build --release >&2)
  [ -x "$PRESSPLAY" ] || die "cargo build --release did not produce $PRESSPLAY"
fi

# --- Python with Hera --------------------------------------------------------------------------
if [ -z "$PY" ]; then
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/pressplay-bench/venv"
  if ! "$VENV/bin/python" -c "import hera, yaml, sys; sys.exit(hera.__version__ != '$HERA_VERSION')" 2>/dev/null; then
    log "creating venv $VENV with hera==$HERA_VERSION and pyyaml"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >&2; then
      rm -rf "$VENV"
      apt_install python3-venv || die "python3 -m venv failed; install python3-venv"
      python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "hera==$HERA_VERSION" pyyaml >&2
  fi
  PY="$VENV/bin/python"
fi
"$PY" -c "import hera.workflows, yaml" || die "$PY cannot import hera.workflows and yaml"

# --- inputs ------------------------------------------------------------------------------------
for n in $NS; do
  [ -f "$BENCH/inputs/backlog-$n.yaml" ] || die "missing input $BENCH/inputs/backlog-$n.yaml"
done

mkdir -p "$RES"
RES="$(cd "$RES" && pwd)"
case "$RES/" in "$ROOT"/*) die "results dir $RES is inside the repo; pick one outside $ROOT" ;; esac
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pressplay-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

median_rss_mib() { # cleanup-path, cmd... : median of RUNS max-RSS readings, in MiB
  local clean="$1"; shift
  local i kb vals=()
  for i in $(seq "$RUNS"); do
    rm -rf "$clean"
    kb="$(/usr/bin/time -f '%M' -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/time.err" && tail -n1 "$WORK/time.out")" ||
      { cat "$WORK/time.err" >&2; die "command failed under /usr/bin/time: $*"; }
    vals+=("$kb")
  done
  printf '%s\n' "${vals[@]}" | sort -n |
    awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f\n", m/1024}'
}

hf_median() { # json -> median seconds
  python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

time_cmd() { # name, cleanup-path, cmd... : hyperfine median -> stdout
  local name="$1" clean="$2"; shift 2
  hyperfine -N --style basic --runs "$RUNS" --warmup 1 \
    --prepare "rm -rf $clean" \
    --export-json "$RES/$name.json" \
    --command-name "$name" -- "$(printf '%q ' "$@")" >"$RES/$name.txt" 2>&1 ||
    { cat "$RES/$name.txt" >&2; die "hyperfine failed for $name"; }
  hf_median "$RES/$name.json"
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "pressplay: $PRESSPLAY ($("$PRESSPLAY" --version 2>/dev/null || echo '?'))"
  echo "python: $("$PY" --version 2>&1), hera $("$PY" -c 'import hera; print(hera.__version__)')"
  echo "hyperfine: $(hyperfine --version)"
  echo "runs: $RUNS (+1 warm-up)"
} >"$RES/machine.txt"
log "$(tr '\n' ';' <"$RES/machine.txt")"

declare -A PP_T PP_M HE_T HE_M
: >"$RES/outputs.txt"
for n in $NS; do
  in="$BENCH/inputs/backlog-$n.yaml"
  ppout="$WORK/pressplay-$n"
  heout="$WORK/hera-$n.yaml"

  log "N=$n pressplay"
  PP_T[$n]="$(time_cmd "pressplay-$n" "$ppout" "$PRESSPLAY" render "$in" -o "$ppout")"
  PP_M[$n]="$(median_rss_mib "$ppout" "$PRESSPLAY" render "$in" -o "$ppout")"
  log "N=$n hera"
  HE_T[$n]="$(time_cmd "hera-$n" "$heout" "$PY" "$BENCH/hera_gen.py" "$in" -o "$heout")"
  HE_M[$n]="$(median_rss_mib "$heout" "$PY" "$BENCH/hera_gen.py" "$in" -o "$heout")"

  # what each tool wrote on the last run (a sanity check, not a comparison of layouts)
  [ -d "$ppout" ] || die "pressplay wrote no directory for N=$n"
  [ -s "$heout" ] || die "hera_gen.py wrote nothing for N=$n"
  pp_files="$(find "$ppout" -type f | wc -l)"
  pp_bytes="$(find "$ppout" -type f -exec cat {} + | wc -c)"
  pp_ids="$(find "$ppout" -type f -name '*.yaml' -exec cat {} + |
    grep -A1 'name: "task-id"' | grep -o 'value: "T[0-9]*"' | sort -u | wc -l || true)"
  printf 'N=%s pressplay files=%s bytes=%s distinct-task-ids=%s | hera bytes=%s\n' \
    "$n" "$pp_files" "$pp_bytes" "$pp_ids" "$(wc -c <"$heout")" >>"$RES/outputs.txt"
  [ "$pp_ids" -eq "$n" ] || log "WARNING: pressplay output for N=$n names $pp_ids distinct task ids, expected $n"
done

# --- report ------------------------------------------------------------------------------------
{
  echo "| N | pressplay median s | pressplay peak MiB | Hera median s | Hera peak MiB | Hera/pressplay time |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for n in $NS; do
    awk -v n="$n" -v pt="${PP_T[$n]}" -v pm="${PP_M[$n]}" -v ht="${HE_T[$n]}" -v hm="${HE_M[$n]}" \
      'BEGIN{printf "| %d | %.4f | %.1f | %.3f | %.1f | %.0fx |\n", n, pt, pm, ht, hm, ht/pt}'
  done
  if [ -n "${PP_T[1000]:-}" ] && [ -n "${PP_T[5000]:-}" ]; then
    echo
    awk -v a="${PP_T[1000]}" -v b="${PP_T[5000]}" -v ha="${HE_T[1000]}" -v hb="${HE_T[5000]}" 'BEGIN{
      r = (b/5000)/(a/1000); hr = (hb/5000)/(ha/1000)
      printf "Linearity: pressplay %.2f us/task at N=1000, %.2f us/task at N=5000 (ratio %.2f: %s).\n",
        a/1000*1e6, b/5000*1e6, r, (r <= 1.25 ? "linear or better" : "grows faster than linear")
      printf "Hera for comparison: %.0f us/task at N=1000, %.0f us/task at N=5000 (ratio %.2f).\n",
        ha/1000*1e6, hb/5000*1e6, hr
    }'
  fi
} | tee "$RES/summary.md"
log "raw hyperfine JSON, logs and summary.md in $RES"
