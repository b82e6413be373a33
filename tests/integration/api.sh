#!/usr/bin/env bash
# The REST API over HTTPS on a 3-node loopback cluster: every path from
# every node (forwarding to the node that answers), /cluster/resources,
# /nodes and /cluster/nextid, a change seen everywhere within 500 ms,
# Proxmox's error conventions (reason phrase, JSON body, 400 with
# `errors`), the 1 MiB body limit, a frozen or stopped node failing fast,
# and a clean stop with the listener open.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init api
# api NODE PATH [CURL ARGS...]: the body on stdout; the status line and
# headers in $dir/headers, the code in $dir/code.
api() {
	local n=$1 path=$2
	shift 2
	curl -sS --max-time 10 --cacert "$dir/n1/data/pki/ca.crt" \
		-H "Authorization: $AUTH" -D "$dir/headers" -o "$dir/body" -w '%{http_code}' \
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

lo_cluster 3 apitest
# An administrator token (root@pam, no privilege separation) for every call.
AUTH="PVEAPIToken=root@pam!test=$(cairn_on 1 --output json user token-add root@pam test --privsep 0 | jq -r .value)"

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

# ---- guest lists, empty for now; the storage list has `local`
json=$(api 3 /nodes/n1/storage)
check "GET /nodes/n1/storage lists n1's local storage, active ($(jq -c '.data[0].storage' <<<"$json"))" \
	jq_true '.data[0].storage == "local" and .data[0].active == 1 and .data[0].total > 0' <<<"$json"
for what in qemu lxc; do
	json=$(api 3 "/nodes/n1/$what")
	check "GET /nodes/n1/$what is 200 with data [] ($json)" \
		bash -c "[ '$(code)' = 200 ] && jq -e '.data == []' <<<'$json' >/dev/null"
done
json=$(api 1 /nodes/n9/qemu)
check "an unknown node is 404 naming it ($(status_line))" \
	answered 404 "HTTP/1.1 404 no such cluster node 'n9'"

# ---- forwarding: a node's own paths are answered by that node
answered_by() { grep -i '^cairn-node:' "$dir/headers" | tr -d '\r' | awk '{print $2}'; }
for i in 1 2 3; do
	for t in 1 2 3; do
		json=$(api "$i" "/nodes/n$t/status")
		check "n$i: GET /nodes/n$t/status is 200, answered by n$t ($(code) $(answered_by))" \
			bash -c "[ '$(code)' = 200 ] && [ '$(answered_by)' = n$t ] && jq -e '.data.memory.total > 0' <<<'$json' >/dev/null"
	done
done
json=$(api 1 '/nodes/n3/qemu?full=maybe')
check "parameters are checked before forwarding: 400 from n1 ($(answered_by): $json)" \
	bash -c "[ '$(code)' = 400 ] && [ '$(answered_by)' = n1 ] && jq -e '.errors.full | type == \"string\"' <<<'$json' >/dev/null"

# ---- /cluster/resources, /nodes, /cluster/nextid
res_nodes_ok() {
	local json
	json=$(api "$1" /cluster/resources) || return 1
	[ "$(code)" = 200 ] && jq_true '[.data[] | select(.type == "node" and .status == "online" and .maxcpu >= 1 and .maxmem > 0 and (.cpu | type) == "number" and .uptime > 0)] | length == 3' <<<"$json"
}
for i in 1 2 3; do
	check "n$i: /cluster/resources lists 3 online nodes with live figures" \
		wait_for 10 res_nodes_ok "$i"
done
cfg='{"name":"web","memory":"2048","cores":"2","sockets":"2","scsi0":"local:100/vm-100-disk-0.raw,size=32G","tags":"a,b"}'
cairn_on 2 db query "INSERT INTO guests (vmid, type, node, config, digest) VALUES (100, 'qemu', 'n1', '$cfg', 'd1')" >/dev/null
t0=$(date +%s%N)
seen_100() { api "$1" /cluster/resources >/dev/null && jq_true '.data[] | select(.id == "qemu/100")' "$dir/body"; }
worst=0
for i in 1 3; do
	if wait_for 5 seen_100 "$i"; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		[ "$ms" -gt "$worst" ] && worst=$ms
		ok "a guest written through n2 shows on n$i after $ms ms"
	else
		not_ok "a guest written through n2 shows on n$i"
		worst=99999
	fi
done
check "... on every node within 500 ms (worst $worst ms, curl start-up included)" \
	test "$worst" -le 500
json=$(api 3 /cluster/resources)
check "a guest row has Proxmox's keys and types ($(jq -c '.data[] | select(.id == "qemu/100")' <<<"$json"))" \
	jq_true '.data[] | select(.id == "qemu/100") | .type == "qemu" and .vmid == 100 and .node == "n1" and .name == "web" and .status == "stopped" and .template == 0 and .maxmem == 2147483648 and .maxcpu == 4 and .maxdisk == 34359738368 and .mem == 0 and (.cpu | type) == "number" and .tags == "a;b" and (has("lock") | not) and (has("hastate") | not)' <<<"$json"
json=$(api 1 '/cluster/resources?type=vm')
check "?type=vm lists guests only" \
	jq_true '(.data | length) == 1 and .data[0].type == "qemu"' <<<"$json"
json=$(api 1 '/cluster/resources?type=node')
check "?type=node lists nodes only" \
	jq_true '(.data | length) == 3 and all(.data[]; .type == "node")' <<<"$json"
json=$(api 1 '/cluster/resources?type=disk')
check "?type=disk is 400 naming the parameter ($json)" \
	code_and_jq 400 '.errors.type | test("enumeration")'
json=$(api 2 /nodes)
check "GET /nodes: 3 online rows with Proxmox's keys ($(jq -c '.data[0]' <<<"$json"))" \
	jq_true '(.data | length) == 3 and all(.data[]; .status == "online" and .type == "node" and .id == "node/" + .node and .maxcpu >= 1 and .maxmem > 0 and (.ssl_fingerprint | test("^([0-9A-F]{2}:){31}[0-9A-F]{2}$")))' <<<"$json"
json=$(api 3 /cluster/nextid)
check "GET /cluster/nextid answers the string \"101\" ($json)" \
	code_and_jq 200 '.data == "101"'
json=$(api 3 '/cluster/nextid?vmid=100')
check "?vmid=100 (taken) is 400 VM 100 already exists ($json)" \
	code_and_jq 400 '.errors.vmid == "VM 100 already exists"'
json=$(api 3 '/cluster/nextid?vmid=150')
check "?vmid=150 (free) answers \"150\"" code_and_jq 200 '.data == "150"'
json=$(api 3 '/cluster/nextid?vmid=abc')
check "?vmid=abc is 400 naming vmid" code_and_jq 400 '.errors.vmid | type == "string"'

# ---- a node that froze: forwarding fails within 3 s, then recovers
pid3=$(cat "$dir/n3/run/cairnd.pid")
kill -STOP "$pid3"
t0=$(date +%s%N)
api 1 /nodes/n3/status >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$pid3"
line=$(status_line)
check "a call for a node frozen just now fails within 3 s with 503 ($ms ms: $line)" \
	test "$(code)" = 503 -a "$ms" -le 3000 -a "${line#*node \'n3\'}" != "$line"
n3_back() { api 1 /nodes/n3/status >/dev/null && [ "$(code)" = 200 ]; }
check "it answers again once the node runs" wait_for 10 n3_back

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
t0=$(date +%s%N)
api 1 /nodes/n3/status >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
line=$(status_line)
check "a call for the stopped node fails at once with 503 naming it ($ms ms: $line)" \
	test "$(code)" = 503 -a "$ms" -le 1000 -a "${line#*node \'n3\' is offline}" != "$line"
cairn_on 1 db query "INSERT INTO guests (vmid, type, node, config, digest) VALUES (101, 'lxc', 'n3', '{\"hostname\":\"ct\"}', 'd2')" >/dev/null
unknown_101() { api "$1" /cluster/resources >/dev/null && jq_true '.data[] | select(.id == "lxc/101") | .status == "unknown" and .name == "ct"' "$dir/body"; }
check "a guest of the offline node stays listed with status unknown" \
	wait_for 5 unknown_101 2
json=$(api 2 /nodes)
check "GET /nodes shows n3 offline" \
	jq_true '.data[] | select(.node == "n3") | .status == "offline"' <<<"$json"

# --- /nodes/{node}/status -------------------------------------------------
json=$(api 2 /nodes/n2/status)
check "GET /nodes/n2/status on n2: 200 with Proxmox's keys and types" \
	jq_true '.data | (.uptime | type) == "number" and (.loadavg | length) == 3
		and (.loadavg[0] | type) == "string" and (.cpu | type) == "number"
		and .cpuinfo.cpus >= 1 and .memory.total > 0 and .memory.used <= .memory.total
		and .swap.total >= 0 and .rootfs.total > 0
		and (.kversion | startswith("Linux")) and (.pveversion | startswith("pve-manager/9.0"))' <<<"$json"
check "its code is 200" test "$(code)" = 200
api 1 /nodes/n9/status >/dev/null
line=$(status_line)
check "an unknown node is 404 naming it" \
	test "$(code)" = 404 -a "$line" = "HTTP/1.1 404 no such cluster node 'n9'"

done_testing
