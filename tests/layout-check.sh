#!/usr/bin/env bash
# Keeps the layout rules of issue 19 true (the lint suite of tests/run-all.sh runs it):
#   - no tracked Rust file has more than 500 lines before its first `#[cfg(test)]` (an integration
#     test file has none, so its whole length counts): split it along the concepts it holds;
#   - flexdriver/src has at most 10 top-level entries and provisioner/src at most 12, so the tree
#     keeps showing the layers;
#   - `PURE_*` environment variable names (PSO's contract) appear in one Rust file only, the table
#     common/src/config/env.rs; everything else refers to them through it.
# Prints each violation naming the file and exits 1; prints one summary line and exits 0 otherwise.
# Needs only bash, git, awk and coreutils. Run from anywhere: tests/layout-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "layout: not a git checkout"; exit 2; }

MAX_LINES=500
PURE_TABLE=common/src/config/env.rs
failed=0

fail() { printf 'layout: %s\n' "$*"; failed=1; }
count_lines() { printf '%s\n' "$1" | awk 'NF { c++ } END { print c + 0 }'; }

# Lines before the first `#[cfg(test)]` at the start of a line, of every tracked .rs file that exists.
longest=0
while IFS= read -r file; do
  [ -f "$file" ] || continue
  lines=$(awk '/^#\[cfg\(test\)\]/{exit} {c++} END{print c+0}' "$file")
  [ "$lines" -gt "$longest" ] && longest=$lines
  if [ "$lines" -gt "$MAX_LINES" ]; then
    fail "$file: $lines lines before #[cfg(test)] (at most $MAX_LINES): split it along the concepts it holds"
  fi
done < <(git ls-files -- '*.rs')

# Top-level entries (files and directories) of a source dir, counting tracked files only.
entries_summary=()
check_entries() {
  local dir=$1 max=$2 entries count
  entries=$(git ls-files -- "$dir" | awk -v prefix="$dir/" 'index($0, prefix) == 1 {
      rest = substr($0, length(prefix) + 1); sub(/\/.*/, "", rest); print rest }' | sort -u)
  count=$(count_lines "$entries")
  if [ "$count" -gt "$max" ]; then
    fail "$dir: $count top-level entries (at most $max): group them by layer; they are:" $entries
  fi
  entries_summary+=("$dir $count/$max")
}
check_entries flexdriver/src 10
check_entries provisioner/src 12

# Every tracked Rust file naming a PURE_ variable, comments included.
pure_files=$(git grep -lE 'PURE_[A-Z]' -- '*.rs' || true)
if [ "$(count_lines "$pure_files")" -gt 1 ]; then
  for file in $pure_files; do
    # The table itself is only named when it is not among them (moved or renamed).
    if [ "$file" != "$PURE_TABLE" ] || ! printf '%s\n' "$pure_files" | awk -v t="$PURE_TABLE" '$0 == t { f = 1 } END { exit !f }'; then
      fail "$file: names PURE_* variables, which belong in one Rust file only ($PURE_TABLE): refer to them through that table"
    fi
  done
fi

[ "$failed" -eq 0 ] || exit 1
echo "layout: ok (longest Rust file $longest/$MAX_LINES lines before tests;" \
  "${entries_summary[0]} and ${entries_summary[1]} top-level entries;" \
  "PURE_* only in ${pure_files:-no file})"
