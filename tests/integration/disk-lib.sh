# Shared by the host tests of the disks stage on image files (30, 31) and bench/disks.sh:
# a work directory that goes away at exit, and a two-compartment cluster.conf whose node
# a1 (MAC 52:54:00:00:00:01) has the given layout.
#
#   disk_test_init NAME TOOL...   work dir /var/tmp/NAME-XXXXXX as $work (cwd), the
#                                 tools checked (exit 77: the runner counts it as a skip,
#                                 a failure under CI=true), $compartd set
#   disk_conf FILE CLUSTER LAYOUT-LINES...

disk_test_init() {
	local name=$1
	shift
	BUILD=${BUILD:-build}
	compartd=$(realpath "$BUILD/compartd")
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "missing $t"; exit 77; }
	done
	work=$(mktemp -d "/var/tmp/$name-XXXXXX")
	trap 'rm -rf "$work"' EXIT
	cd "$work"
}

disk_conf() {
	local f=$1 cluster=$2
	shift 2
	{
		cat <<CONF
[cluster]
name = $cluster
key_file = /nonexistent/key
[pair p1]
[compartment a]
zone = mz
pair = p1
[compartment b]
zone = dmz
pair = p1
[node a1]
compartment = a
handshake = 127.0.0.1
mac = 52:54:00:00:00:01
[node b1]
compartment = b
handshake = 127.0.0.2
mac = 52:54:00:00:00:02
[layout]
CONF
		printf '%s\n' "$@"
	} >"$f"
}
