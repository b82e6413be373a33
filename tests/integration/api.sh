#!/usr/bin/env bash
# The REST API over HTTPS on a 3-node loopback cluster: /version and
# /cluster/status from every node, Proxmox's error conventions (reason
# phrase, JSON body, 400 with `errors`), the 1 MiB body limit, and a
# clean stop with the listener open.
set -u
source "$(dirname "$0")/tap.sh"

dir=$(mktemp -d /tmp/cairn-it-api.XXXXXX)
base=$((20000 + RANDOM % 9000))
net=$((20 + RANDOM % 200))
cleanup() {
	local f
	for f in "$dir"/n*/run/cairnd.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	[ -n "${CAIRN_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

sock() { echo "$dir/n$1/run/cairnd.sock"; }
cairn_on() { local n=$1; shift; "$CAIRN" --socket "$(sock "$n")" "$@"; }
start_node() { "$CAIRND" -c "$dir/n$1.conf" 2>>"$dir/n$1.start.err"; }
url() { echo "https://127.0.$net.$1:$((base + 6))/api2/json$2"; }
# api NODE PATH [CURL ARGS...]: the body on stdout; the status line and
# headers in $dir/headers, the code in $dir/code.
api() {
	local n=$1 path=$2
	shift 2
	curl -sS --max-time 10 --cacert "$dir/n1/data/pki/ca.crt" \
		-D "$dir/headers" -o "$dir/body" -w '%{http_code}' \
		"$@" "$(url "$n" "$path")" >"$dir/code"
	cat "$dir/body"
}
code() { cat "$dir/code"; }
status_line() { head -n 1 "$dir/headers" | tr -d '\r'; }
jq_true() { jq -e "$@" >/dev/null; }
# answered CODE STATUS_LINE: the last call's code and status line.
answered() { [ "$(code)" = "$1" ] && [ "$(status_line)" = "$2" ]; }
# code_and_jq CODE FILTER: the last call's code, and FILTER on its body.
code_and_jq() { [ "$(code)" = "$1" ] && jq -e "$2" "$dir/body" >/dev/null; }

for i in 1 2 3; do
	mkdir -p "$dir/n$i"
	cat >"$dir/n$i.conf" <<CONF
node_name = n$i
data_dir = $dir/n$i/data
run_dir = $dir/n$i/run
log_file = $dir/n$i/cairnd.log
rpc_listen = 127.0.$net.$i:$((base + 16))
db_listen = 127.0.$net.$i:$((base + 17))
api_listen = 127.0.$net.$i:$((base + 6))
bridge = ""
db_latency_ms = 20
CONF
	start_node "$i"
done
cairn_on 1 cluster create apitest >/dev/null
for i in 2 3; do
	cairn_on "$i" cluster join "$(cairn_on 1 cluster join-token)" >/dev/null
done

# ---- /version from every node, over TLS verified against the cluster CA
for i in 1 2 3; do
	api_up() { api "$1" /version >/dev/null 2>&1 && [ "$(code)" = 200 ]; }
	check "n$i serves HTTPS with a certificate of the cluster CA" \
		wait_for 10 api_up "$i"
	json=$(api "$i" /version)
	check "n$i: GET /version is 200 with version \"9.0\" (a string), release, repoid, cairn ($json)" \
		jq_true '.data | (.version == "9.0") and (.release == "9.0") and (.repoid | type) == "string" and (.cairn | type) == "string"' <<<"$json"
done
check "answers are application/json" \
	grep -qi '^content-type: application/json' "$dir/headers"
check "HTTP/1.1 by default (no HTTP/2 offered)" \
	bash -c "curl -sS --http2 --cacert '$dir/n1/data/pki/ca.crt' -o /dev/null -w '%{http_version}' '$(url 1 /version)' | grep -qx '1.1'"

# ---- /cluster/status from every node
cs_ok() {
	local json
	json=$(api "$1" /cluster/status) || return 1
	[ "$(code)" = 200 ] &&
		jq_true '(.data | length == 4) and ([.data[] | select(.type == "node")] | length == 3) and ([.data[] | select(.type == "node" and .online == 1)] | length == 3) and (.data[] | select(.type == "cluster") | .quorate == 1 and .nodes == 3)' <<<"$json"
}
for i in 1 2 3; do
	check "n$i: GET /cluster/status has 3 nodes, all online, quorate 1" \
		wait_for 10 cs_ok "$i"
done
json=$(api 2 /cluster/status)
check "/cluster/status types: numbers for nodeid, 0/1 online and local, one local node" \
	jq_true '([.data[] | select(.type == "node" and (.nodeid | type) == "number" and (.online == 0 or .online == 1) and (.ip | type) == "string")] | length == 3) and ([.data[] | select(.local == 1)] | .[0].name == "n2")' <<<"$json"
rpc_json=$(cairn_on 2 --output json cluster status)
check "REST and RPC answer the same /cluster/status shape" \
	bash -c "[ \"\$(jq -c '[.[] | {type, id, name, nodeid, local}]' <<<'$rpc_json')\" = \"\$(jq -c '[.data[] | {type, id, name, nodeid, local}]' <<<'$json')\" ]"

# ---- guest and storage lists, empty for now
for what in qemu lxc storage; do
	json=$(api 3 "/nodes/n1/$what")
	check "GET /nodes/n1/$what is 200 with data [] ($json)" \
		bash -c "[ '$(code)' = 200 ] && jq -e '.data == []' <<<'$json' >/dev/null"
done
json=$(api 1 /nodes/n9/qemu)
check "an unknown node is 404 naming it ($(status_line))" \
	answered 404 "HTTP/1.1 404 no such cluster node 'n9'"

# ---- errors: reason phrase, body, status
json=$(api 1 /nodes/n1/nothing)
check "an unknown path is 501 with the error in the status line ($(status_line))" \
	answered 501 "HTTP/1.1 501 Method 'GET /nodes/n1/nothing' not implemented"
check "... and the JSON body {data: null, message} ($json)" \
	code_and_jq 501 '.data == null and .message == "Method '"'GET /nodes/n1/nothing'"' not implemented"'
api 1 /version -X POST >/dev/null
check "a known path with another method is 501 too" [ "$(code)" = 501 ]
json=$(api 1 '/nodes/n%zz/qemu')
check "a bad escape is 400 and says so ($(status_line))" \
	bash -c "[ '$(code)' = 400 ] && grep -q 'bad escape' <<<'$(status_line)'"

json=$(api 1 '/nodes/n1/qemu?full=maybe')
check "a badly typed parameter is 400 Parameter verification failed. ($(status_line))" \
	answered 400 "HTTP/1.1 400 Parameter verification failed."
check "... with an errors object naming it ($json)" \
	code_and_jq 400 '.data == null and .message == "Parameter verification failed." and (.errors.full | type) == "string"'
json=$(api 1 '/version?bogus=1')
check "an unknown parameter is 400 with Proxmox's wording ($json)" \
	code_and_jq 400 '.errors.bogus | test("not defined in schema")'
json=$(api 1 '/nodes/n1/qemu?node=n2')
check "a parameter from path and query with different values is 400 ($json)" \
	code_and_jq 400 '.errors.node | test("different values")'
json=$(api 1 '/nodes/n1/qemu?full=1&_dc=123')
check "typed parameters in their text form are accepted, _dc ignored" \
	bash -c "[ '$(code)' = 200 ] && jq -e '.data == []' <<<'$json' >/dev/null"

head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'a' >"$dir/big"
api 1 /version -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-binary "@$dir/big" >/dev/null 2>&1
check "a body over 1 MiB is refused with 413 ($(code))" [ "$(code)" = 413 ]
api 1 /version >/dev/null
check "the node still answers afterwards" [ "$(code)" = 200 ]

# ---- a stop with the API open is clean and quick
pid=$(cat "$dir/n3/run/cairnd.pid")
t0=$(date +%s%N)
kill -TERM "$pid"
gone() { ! kill -0 "$pid" 2>/dev/null; }
if wait_for 10 gone; then
	ok "n3 stops on SIGTERM in $((($(date +%s%N) - t0) / 1000000)) ms with the API open"
else
	not_ok "n3 stops on SIGTERM with the API open"
fi
check "its log shows no error from the API" \
	bash -c "! grep -E 'level=error.*comp=api' '$dir/n3/cairnd.log'"
cs_two() {
	local json
	json=$(api 1 /cluster/status) || return 1
	jq_true '[.data[] | select(.type == "node" and .online == 1)] | length == 2' <<<"$json"
}
check "n1's /cluster/status shows n3 offline" wait_for 10 cs_two

# --- /nodes/{node}/status -------------------------------------------------
json=$(api 2 /nodes/n2/status)
check "GET /nodes/n2/status on n2: 200 with Proxmox's keys and types" \
	jq_true '.data | (.uptime | type) == "number" and (.loadavg | length) == 3
		and (.loadavg[0] | type) == "string" and (.cpu | type) == "number"
		and .cpuinfo.cpus >= 1 and .memory.total > 0 and .memory.used <= .memory.total
		and .swap.total >= 0 and .rootfs.total > 0
		and (.kversion | startswith("Linux")) and (.pveversion | startswith("pve-manager/9.0"))' <<<"$json"
check "its code is 200" test "$(code)" = 200
api 1 /nodes/n2/status >/dev/null
check "asking n1 for n2's status says it is not forwarded yet (501 $(status_line))" \
	bash -c "[ '$(code)' = 501 ] && grep -q 'forwarding is not built yet' <<<'$(status_line)'"
api 1 /nodes/n9/status >/dev/null
line=$(status_line)
check "an unknown node is 404 naming it" \
	test "$(code)" = 404 -a "$line" = "HTTP/1.1 404 no such cluster node 'n9'"

done_testing
