#!/usr/bin/env bash
# cairnd's process life: start, logs, the data-dir lock, close-on-exec fds,
# clean children, stop on TERM/INT, and a guest-like child that outlives it.
set -u
source "$(dirname "$0")/tap.sh"

dir=$(mktemp -d /tmp/cairn-it-cairnd.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/n1.conf" <<CONF
# an isolated node for this test
node_name = it1
data_dir = $dir/data
run_dir = $dir/run
log_file = $dir/log/cairnd.log
log_level = debug
rpc_listen = 127.0.0.1:28016
db_listen = 127.0.0.1:28017
api_listen = 127.0.0.1:28006
# no guests here: leave the host's bridges alone
bridge = ""
test_spawn = sleep 600
CONF

now_ms() { echo $(($(date +%s%N) / 1000000)); }
log_has() { grep -q "$1" "$2"; }
# child_pid LOGFILE: the pid cairnd logged for its test child.
child_pid() { sed -n 's/.*msg="test child started" pid=\([0-9]*\).*/\1/p' "$1" | tail -n 1; }

# --- start in the foreground ---------------------------------------------
"$CAIRND" -c "$dir/n1.conf" --foreground 2>"$dir/fg1.log" &
agent=$!
pids+=("$agent")
if wait_for 5 log_has 'msg="node started"' "$dir/fg1.log"; then
	ok "cairnd -c FILE --foreground starts and logs"
else
	not_ok "cairnd -c FILE --foreground starts and logs" "$(cat "$dir/fg1.log")"
fi
check "the log line has level, component and fields" \
	grep -qE '^ts=[0-9T:.-]+Z level=info comp=node msg="node started" node=it1 ' "$dir/fg1.log"
check "the pid file names the agent" \
	test "$(cat "$dir/run/cairnd.pid" 2>/dev/null)" = "$agent"

# --- every fd but stdio is close-on-exec ----------------------------------
leaky=""
for f in /proc/$agent/fdinfo/*; do
	fd=${f##*/}
	[ "$fd" -le 2 ] && continue
	flags=$(sed -n 's/^flags:[[:space:]]*//p' "$f" 2>/dev/null) || continue
	[ -n "$flags" ] || continue
	# O_CLOEXEC is 02000000 (octal) in fdinfo's flags
	if [ $(( 8#$flags & 8#2000000 )) -eq 0 ]; then
		leaky="$leaky $fd($(readlink "/proc/$agent/fd/$fd"))"
	fi
done
if [ -z "$leaky" ]; then
	ok "every fd of cairnd above 2 is close-on-exec"
else
	not_ok "every fd of cairnd above 2 is close-on-exec" "without O_CLOEXEC:$leaky"
fi

# --- the child it spawned has a clean signal state --------------------------
child=$(child_pid "$dir/fg1.log")
[ -n "$child" ] && pids+=("$child")
if [ -n "$child" ] && [ -r "/proc/$child/status" ]; then
	blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$child/status")
	ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$child/status")
	if [ "$blk" = 0000000000000000 ] && [ "$ign" = 0000000000000000 ]; then
		ok "a spawned child has no blocked and no ignored signals"
	else
		not_ok "a spawned child has no blocked and no ignored signals" "SigBlk=$blk SigIgn=$ign"
	fi
	if ls -l "/proc/$child/fd" 2>/dev/null | grep -q 'cairnd.lock'; then
		not_ok "the child does not hold the data-dir lock"
	else
		ok "the child does not hold the data-dir lock"
	fi
	check "the child runs in a session of its own" \
		test "$(ps -o sid= -p "$child" | tr -d ' ')" = "$child"
else
	not_ok "a spawned child has no blocked and no ignored signals" "no child pid in the log"
	not_ok "the child does not hold the data-dir lock"
	not_ok "the child runs in a session of its own"
fi

# --- a second agent on the same data dir is refused -------------------------
"$CAIRND" -c "$dir/n1.conf" --foreground 2>"$dir/second.log"
rc=$?
if [ "$rc" -ne 0 ] && grep -q "data dir $dir/data is in use by another cairnd.*(pid $agent)" "$dir/second.log"; then
	ok "a second cairnd on the same data dir exits non-zero naming the holder"
else
	not_ok "a second cairnd on the same data dir exits non-zero naming the holder" "rc=$rc" "$(cat "$dir/second.log")"
fi
check "the refused agent left the running one's pid file alone" \
	test "$(cat "$dir/run/cairnd.pid" 2>/dev/null)" = "$agent"

# --- SIGTERM stops it within 1 s, exit 0 ----------------------------------
t0=$(now_ms)
kill -TERM "$agent"
wait "$agent"
rc=$?
elapsed=$(($(now_ms) - t0))
if [ "$rc" -eq 0 ] && [ "$elapsed" -lt 1000 ]; then
	ok "SIGTERM: exit 0 within 1 s (took ${elapsed} ms)"
else
	not_ok "SIGTERM: exit 0 within 1 s" "rc=$rc elapsed=${elapsed}ms"
fi
check "it logged its stop" grep -q 'msg="stopped"' "$dir/fg1.log"
check "the pid file is removed on a clean stop" test ! -e "$dir/run/cairnd.pid"

# --- the child outlives it, and a new agent still starts ------------------
if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
	ok "the spawned child outlives cairnd"
else
	not_ok "the spawned child outlives cairnd"
fi
"$CAIRND" -c "$dir/n1.conf" --foreground 2>"$dir/fg2.log" &
agent=$!
pids+=("$agent")
if wait_for 5 log_has 'msg="node started"' "$dir/fg2.log"; then
	ok "a new cairnd starts while the old one's child still runs"
else
	not_ok "a new cairnd starts while the old one's child still runs" "$(cat "$dir/fg2.log")"
fi
child2=$(child_pid "$dir/fg2.log")
[ -n "$child2" ] && pids+=("$child2")

# --- SIGINT also stops it cleanly -------------------------------------------
kill -INT "$agent"
wait "$agent"
check "SIGINT: exit 0" test $? -eq 0

# --- detached mode -------------------------------------------------------------
"$CAIRND" -c "$dir/n1.conf" 2>"$dir/detach.err"
rc=$?
dpid=$(cat "$dir/run/cairnd.pid" 2>/dev/null)
[ -n "$dpid" ] && pids+=("$dpid")
check "without --foreground it returns 0 once the agent is ready" test "$rc" -eq 0
check "the detached agent logs to log_file" \
	wait_for 5 log_has "msg=\"node started\" node=it1 pid=$dpid " "$dir/log/cairnd.log"
"$CAIRND" -c "$dir/n1.conf" 2>"$dir/detach2.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "in use by another cairnd" "$dir/detach2.err"; then
	ok "a second detached cairnd fails with status 1 and says why on stderr"
else
	not_ok "a second detached cairnd fails with status 1 and says why on stderr" "rc=$rc" "$(cat "$dir/detach2.err")"
fi
child3=$(child_pid "$dir/log/cairnd.log")
[ -n "$child3" ] && pids+=("$child3")
if [ -n "$dpid" ]; then
	kill -TERM "$dpid"
	check "the detached agent stops on SIGTERM" wait_for 2 test ! -e "/proc/$dpid"
fi

# --- bad settings: status 2, file and line named ---------------------------
printf 'node_name = it1\ndata_dir = %s/data\nstorage_threads = many\n' "$dir" >"$dir/bad.conf"
"$CAIRND" -c "$dir/bad.conf" --foreground 2>"$dir/bad.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "$dir/bad.conf:3: 'storage_threads' must be an integer, not 'many'" "$dir/bad.err"; then
	ok "a bad setting exits 2 naming file, line, key and value"
else
	not_ok "a bad setting exits 2 naming file, line, key and value" "rc=$rc" "$(cat "$dir/bad.err")"
fi
"$CAIRND" -c "$dir/missing.conf" --foreground 2>"$dir/missing.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "$dir/missing.conf" "$dir/missing.err"; then
	ok "a missing config file exits 2 naming it"
else
	not_ok "a missing config file exits 2 naming it" "rc=$rc" "$(cat "$dir/missing.err")"
fi
check "--check-config prints the effective settings" \
	bash -c "'$CAIRND' -c '$dir/n1.conf' --check-config | grep -qx 'cpu_threads = 2'"

# --- versions ---------------------------------------------------------------
check "cairn --version prints the version" \
	bash -c "'$CAIRN' --version | grep -qE '^cairn [0-9]+\.[0-9]+\.[0-9]+ \(commit '"
check "cairnd --version lists its libraries" \
	bash -c "'$CAIRND' --version | grep -qx 'dqlite 1.11.1'"

done_testing
