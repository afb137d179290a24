# Sourced by the comparison images' builds (images/compare, images/dracut): Debian packages
# fetched with `apt-get download` (nothing is installed on the host) and unpacked.
#
# debs_unpack DEBS_DIR ROOT VERSIONS PKG...: downloads into DEBS_DIR the packages not there
# yet, unpacks every one (its newest .deb there) into ROOT, made afresh, and writes
# "package version" per line to VERSIONS.
debs_unpack() {
	local debs=$1 root=$2 versions=$3 p deb
	shift 3
	local missing=()
	mkdir -p "$debs"
	for p in "$@"; do
		ls "$debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		# apt's "_apt cannot access" note about downloading as root is harmless.
		(cd "$debs" && apt-get download -q "${missing[@]}" >&2)
	fi
	rm -rf "$root"
	mkdir -p "$root"
	for p in "$@"; do
		deb=$(ls "$debs/${p}_"*.deb | LC_ALL=C sort | tail -1)
		dpkg-deb -x "$deb" "$root"
		dpkg-deb -f "$deb" Package Version | sed "s/^[^:]*: //" | paste -sd" "
	done >"$versions"
}
