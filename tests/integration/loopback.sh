# tests/integration/loopback.sh, sourced by tests after tap.sh: cairnd
# agents on loopback addresses — a temp dir, random ports and a random
# 127.0.N.0/24, a cleanup trap that kills only the agents of this test (by
# their pid files) and a cluster formed with the CLI.
#
#   lo_init NAME                    $dir, $base, $net and the trap
#   lo_conf I [LINE...]             writes $dir/nI.conf; LINEs are added
#   lo_cluster N NAME [LINE...]     configures and starts n1..nN, then n1
#                                   creates cluster NAME and the others join
#   sock I, cairn_on I ARGS..., start_node I, url I PATH
#
#   req, code, status_line, code_is, jq_true, esc, ms_since: REST helpers
#   task_wait, req_task: tasks followed to their end
#
# Set CAIRN_KEEP=1 to keep $dir for a post-mortem.

lo_init() {
	dir=$(mktemp -d "/tmp/cairn-it-$1.XXXXXX")
	base=$((20000 + RANDOM % 9000))
	net=$((20 + RANDOM % 200))
	trap lo_cleanup EXIT
}

lo_cleanup() {
	local f
	for f in "$dir"/n*/run/cairnd.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	[ -n "${CAIRN_KEEP:-}" ] || rm -rf "$dir"
}

sock() { echo "$dir/n$1/run/cairnd.sock"; }
cairn_on() { local n=$1; shift; "$CAIRN" --socket "$(sock "$n")" "$@"; }
start_node() { "$CAIRND" -c "$dir/n$1.conf" 2>>"$dir/n$1.start.err"; }
url() { echo "https://127.0.$net.$1:$((base + 6))/api2/json$2"; }

lo_conf() {
	local i=$1
	shift
	mkdir -p "$dir/n$i"
	{
		cat <<CONF
node_name = n$i
data_dir = $dir/n$i/data
run_dir = $dir/n$i/run
log_file = $dir/n$i/cairnd.log
rpc_listen = 127.0.$net.$i:$((base + 16))
db_listen = 127.0.$net.$i:$((base + 17))
api_listen = 127.0.$net.$i:$((base + 6))
local_dir = $dir/n$i/local
bridge = ""
db_latency_ms = 20
CONF
		[ $# -eq 0 ] || printf '%s\n' "$@"
	} >"$dir/n$i.conf"
}

lo_cluster() {
	local n=$1 name=$2 i
	shift 2
	for ((i = 1; i <= n; i++)); do
		lo_conf "$i" "$@"
		start_node "$i"
	done
	cairn_on 1 cluster create "$name" >/dev/null
	for ((i = 2; i <= n; i++)); do
		cairn_on "$i" cluster join "$(cairn_on 1 cluster join-token)" >/dev/null
	done
}

# req NODE METHOD PATH [CURL ARGS...]: a REST call (with $AUTH as the
# Authorization header when set); the body on stdout and in $dir/body, the
# code in $dir/code, the headers in $dir/headers.
req() {
	local n=$1 method=$2 path=$3 auth=()
	shift 3
	[ -z "${AUTH:-}" ] || auth=(-H "Authorization: $AUTH")
	curl -sS --max-time "${REQ_MAX_TIME:-15}" --cacert "$dir/n1/data/pki/ca.crt" \
		-X "$method" "${auth[@]}" -D "$dir/headers" -o "$dir/body" \
		-w '%{http_code}' "$@" "$(url "$n" "$path")" >"$dir/code"
	cat "$dir/body"
}
code() { cat "$dir/code"; }
status_line() { head -n 1 "$dir/headers" | tr -d '\r'; }
code_is() { [ "$(code)" = "$1" ]; }
jq_true() { jq -e "$@" >/dev/null; }
esc() { jq -rn --arg v "$1" '$v|@uri'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# task_wait NODE UPID [SECONDS]: waits (default 30 s) for the task to stop,
# asking NODE; prints its exitstatus ("OK" or the error), or "timeout".
task_wait() {
	local n=$1 upid=$2 end=$(($(date +%s) + ${3:-30}))
	while [ "$(date +%s)" -le "$end" ]; do
		req "$n" GET "/nodes/n$n/tasks/$(esc "$upid")/status" >/dev/null
		if jq_true '.data.status == "stopped"' "$dir/body" 2>/dev/null; then
			jq -r .data.exitstatus "$dir/body"
			return 0
		fi
		sleep 0.1
	done
	echo timeout
}
# req_task NODE METHOD PATH [CURL ARGS]: a call that answers a UPID,
# followed to its end; prints the task's exitstatus (code() stays the
# call's).
req_task() {
	local n=$1 upid code
	req "$@" >/dev/null
	code=$(code)
	upid=$(jq -r '.data // empty' "$dir/body" 2>/dev/null)
	if [ "$code" != 200 ] || [[ "$upid" != UPID:* ]]; then
		echo "not a task: $code $(status_line)"
		return 0
	fi
	task_wait "$n" "$upid"
	echo "$code" >"$dir/code"
	echo "$upid" >"$dir/upid"
}
# req_clone NODE METHOD PATH [CURL ARGS]: a volume clone task followed to
# its end; prints the volume it created, or its exitstatus when it failed.
req_clone() {
	local n=$1 out
	out=$(req_task "$@")
	if [ "$out" != OK ]; then
		echo "$out"
		return 0
	fi
	req "$n" GET "/nodes/n$n/tasks/$(esc "$(cat "$dir/upid")")/log?limit=100" |
		jq -r '[.data[].t | capture("^created volume .(?<v>.*).$").v] | .[0] // "no volume in the log"'
}
