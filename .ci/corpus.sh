#!/usr/bin/env bash
# Renders every backlog in a corpus folder. Each must render (exit 0) or be rejected with a
# diagnostic (exit 2); any other exit code (a panic is 101) fails. Rendered trees go to OUT.
# Usage: corpus.sh BIN CORPUS_DIR OUT
set -euo pipefail
bin="$1" corpus="$2" out="$3"
mkdir -p "$out"
rendered=0 rejected=0
for f in "$corpus"/taskmaster/*.json "$corpus"/backlogs/*.yaml; do
  [ -f "$f" ] || continue
  name="$(basename "${f%.*}")"
  set +e
  "$bin" render "$f" -o "$out/$name" >"$out/$name.log" 2>&1
  code=$?
  set -e
  case "$code" in
    0) rendered=$((rendered + 1)) ;;
    2) rejected=$((rejected + 1)); grep -q -- '-->' "$out/$name.log" || grep -q '^error: ' "$out/$name.log" || { echo "$f: rejected without a diagnostic" >&2; cat "$out/$name.log"; exit 1; } ;;
    *) echo "$f: exit code $code" >&2; cat "$out/$name.log" >&2; exit 1 ;;
  esac
done
echo "corpus: $rendered rendered, $rejected rejected with a diagnostic"
