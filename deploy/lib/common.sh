# Shared by deploy/test and deploy/demo (sourced, not run): where things are,
# and how the tree is configured and built.

CAIRN_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CAIRN_JOBS=$(nproc 2>/dev/null || echo 2)

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# ensure_deps: installs packages as root; otherwise only checks for the
# build tools, so a developer without root can still build an installed tree.
ensure_deps() {
	if [ "$(id -u)" -eq 0 ]; then
		"$CAIRN_TOP/deploy/install-deps" || die "installing dependencies failed"
	else
		command -v autoreconf >/dev/null && command -v protoc-c >/dev/null ||
			die "not root, and build tools are missing: run deploy/install-deps as root"
	fi
}

# build DIR [CONFIGURE-ARGS...]: regenerates the build system when needed,
# configures DIR (out of tree) when its arguments changed, and builds.
build() {
	local dir=$1 log
	shift
	log=$(mktemp /tmp/cairn-build.XXXXXX)
	(
		set -e
		cd "$CAIRN_TOP"
		if [ ! -x configure ] || [ configure.ac -nt configure ] ||
			[ Makefile.am -nt Makefile.in ]; then
			./autogen.sh
		fi
		mkdir -p "$dir"
		cd "$dir"
		if [ ! -f Makefile ] || [ "$(cat .configure-args 2>/dev/null)" != "$*" ] ||
			[ "$CAIRN_TOP/configure" -nt Makefile ]; then
			"$CAIRN_TOP/configure" -q "$@"
			echo "$*" >.configure-args
		fi
		make -j"$CAIRN_JOBS" all
	) >"$log" 2>&1
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		grep -E 'error|Error' "$log" | head -n 40 >&2
		echo "--- last lines of the build log:" >&2
		tail -n 20 "$log" >&2
	fi
	rm -f "$log"
	return "$rc"
}
