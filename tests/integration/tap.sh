# Small TAP helpers for the integration scripts (sourced, not run).
# Each script: source this, call `check NAME CMD...` or `ok`/`not_ok`, and
# `done_testing` at the end, which prints the plan.

tap_count=0
tap_failed=0
# SIGTERM (run-tap.sh's timeout) or ^C: exit, so that the EXIT traps
# that stop this test's processes run.
trap 'exit 1' TERM INT
# TAP lines go to the script's stdout as it was when it sourced this, so
# that `check NAME CMD >/dev/null` cannot swallow them.
exec {tap_fd}>&1

ok() {
	tap_count=$((tap_count + 1))
	echo "ok $tap_count - $1" >&"$tap_fd"
}

not_ok() {
	tap_count=$((tap_count + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_count - $1" >&"$tap_fd"
	shift
	for line in "$@"; do
		echo "# $line" >&"$tap_fd"
	done
}

# check NAME CMD...: passes when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		not_ok "$name" "command failed: $*"
	fi
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

done_testing() {
	echo "# $((tap_count - tap_failed)) passed, $tap_failed failed"
	echo "1..$tap_count"
	[ "$tap_failed" -eq 0 ]
}

# The built binaries: make check sets CAIRN_BUILDDIR; by hand, the default
# build directory of deploy/test.
: "${CAIRN_BUILDDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
CAIRND=$CAIRN_BUILDDIR/cairnd
CAIRN=$CAIRN_BUILDDIR/cairn
