#!/usr/bin/env bash
# Runs TAP test scripts one after another and writes, like automake's
# harness, a log per script and a suite log whose header counts the results
# ("# PASS: N", "# FAIL: N", ...). Used for the integration tests, which
# start real daemons and so do not run under `make check`.
#
#   tests/run-tap.sh SUITE-LOG SCRIPT...
set -u
suite_log=$1
shift
limit=${CAIRN_TEST_TIMEOUT:-600} # seconds a script may run
pass=0 fail=0 skip=0 error=0
details=$(mktemp)
trap 'rm -f "$details"' EXIT

# Tests are named relative to the trees: a compiled test runs from the
# build tree ($CAIRN_BUILDDIR), a script from the source tree
# ($CAIRN_SRCDIR); each log goes to the same relative path beside the
# suite log.
for script in "$@"; do
	log=$(dirname "$suite_log")/$script.log
	mkdir -p "$(dirname "$log")"
	t0=$(date +%s)
	# A script that hangs gets SIGTERM (its traps clean up), then
	# SIGKILL: the suite ends, and says which one it was.
	if [ -x "${CAIRN_BUILDDIR:-.}/$script" ]; then
		# a compiled test (cmocka) in the build tree
		CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 30 "$limit" \
			"${CAIRN_BUILDDIR:-.}/$script" >"$log" 2>&1
	else
		timeout -k 30 "$limit" bash "${CAIRN_SRCDIR:-.}/$script" >"$log" 2>&1
	fi
	rc=$?
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] ||
		echo "# killed: still running after $limit s" >>"$log"
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	s=$(grep -cE '^ok [0-9]+ .*# *SKIP' "$log")
	p=$((p - s))
	plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	status=PASS
	if [ "$f" -gt 0 ]; then
		status=FAIL
	elif [ "$rc" -ne 0 ] || [ -z "$plan" ] || [ "$plan" -ne $((p + s + f)) ]; then
		status=ERROR
		error=$((error + 1))
	fi
	echo "$status: $script ($((p + s + f)) tests, $(($(date +%s) - t0)) s)" | tee -a "$details"
	grep -E '^not ok' "$log" | sed "s|^|FAIL: $script |" | tee -a "$details"
done

{
	echo "# TOTAL: $((pass + fail + skip))"
	echo "# PASS:  $pass"
	echo "# SKIP:  $skip"
	echo "# FAIL:  $fail"
	echo "# ERROR: $error"
	echo
	cat "$details"
} >"$suite_log"
cat "$suite_log" | head -n 5
[ $((fail + error)) -eq 0 ]
