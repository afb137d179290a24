#!/usr/bin/env bash
# The layer check (docs/architecture.md): every quoted #include of the production tree
# names a header by its bare name, found in the includer's own folder or in a folder of a
# lower layer. The build enforces the same through its include paths; this says which
# include climbs, where, and into which layer, and catches what a path ("../x.h") or a
# header-only include would slip past the compiler. Exit 1 on any violation.
set -u
cd "$(dirname "$0")/.."
mapfile -t layers < <(make --no-print-directory print-layers)
declare -A layer_of
for i in "${!layers[@]}"; do
	for d in ${layers[$i]}; do layer_of[$d]=$i; done
done
declare -A home # header name -> folder
for d in "${!layer_of[@]}"; do
	for h in "$d"/*.h; do
		[ -f "$h" ] || continue
		n=$(basename "$h")
		if [ -n "${home[$n]:-}" ]; then
			echo "layers: $n exists in ${home[$n]} and $d: a bare include is ambiguous"
			bad=1
		fi
		home[$n]=$d
	done
done
bad=${bad:-0}
checked=0
for d in "${!layer_of[@]}"; do
	for f in "$d"/*.[ch]; do
		[ -f "$f" ] || continue
		while IFS=: read -r line inc; do
			checked=$((checked + 1))
			if [[ "$inc" == */* ]]; then
				echo "$f:$line: #include \"$inc\": name the header, not a path"
				bad=1
				continue
			fi
			h=${home[$inc]:-}
			if [ -z "$h" ]; then
				echo "$f:$line: #include \"$inc\": no such header in the tree"
				bad=1
			elif [ "$h" != "$d" ] && [ "${layer_of[$h]}" -ge "${layer_of[$d]}" ]; then
				echo "$f:$line: #include \"$inc\" climbs: $h is layer ${layer_of[$h]}," \
					"$d is layer ${layer_of[$d]} (a folder sees only lower layers)"
				bad=1
			fi
		done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
			sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
	done
done
[ "$checked" -gt 0 ] || { echo "layers: no include was checked"; exit 1; }
[ "$bad" -eq 0 ] && echo "layers: $checked includes in ${#layer_of[@]} folders, none climbs"
exit "$bad"
