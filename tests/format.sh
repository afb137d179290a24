#!/usr/bin/env bash
# The sources follow .clang-format: `clang-format --dry-run -Werror` over every C file git
# tracks (fuzz corpora are data). Exit 1 names the files to run `make format` on.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (make deps)"; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/')
[ ${#files[@]} -gt 0 ] || { echo "format: no sources found"; exit 1; }
bad=$(clang-format --dry-run -Werror "${files[@]}" 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error:.*/\1/p' | sort -u)
if [ -n "$bad" ]; then
	echo "format: these files differ from .clang-format (make format rewrites them):"
	echo "$bad" | sed 's/^/  /'
	exit 1
fi
echo "format: ${#files[@]} files follow .clang-format"
