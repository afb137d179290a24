# Sourced by the image builds (initramfs/build.sh, images/compare/build.sh), not run.
#
# busybox_links ROOT BUSYBOX [SKIP]: links every applet of BUSYBOX under ROOT to
# /bin/busybox (relative links, sorted, so the image is reproducible), except init and
# linuxrc, paths that already exist, and applets whose path matches the glob SKIP
# (e.g. '*/mdadm' when the real program is in the image).
busybox_links() {
	local root=$1 bb=$2 skip=${3:-} app rel
	"$bb" --list-full | LC_ALL=C sort | while read -r app; do
		case $app in
		*/init | linuxrc | */linuxrc) continue ;;
		esac
		# shellcheck disable=SC2254 # SKIP is a glob on purpose
		[ -n "$skip" ] && case $app in $skip) continue ;; esac
		[ -e "$root/$app" ] || [ -L "$root/$app" ] && continue
		case $app in
		bin/*) rel=busybox ;;
		sbin/*) rel=../bin/busybox ;;
		usr/*/*) rel=../../bin/busybox ;;
		*) continue ;;
		esac
		ln -s "$rel" "$root/$app"
	done
}
