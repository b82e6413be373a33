#!/usr/bin/env bash
# Golden-response contract tests: every read endpoint, asked on each node of
# a 3-node loopback cluster (so other nodes' answers go through forwarding),
# must answer what Proxmox VE answers, JSON types and key presence, as pinned
# by tests/contract/golden/*.json (tests/contract/README.md). One TAP check
# per (node, endpoint): the HTTP code, tests/contract/check.py against the
# golden (its mismatch lines become the diagnostics), and where an empty
# answer would conform vacuously, a jq filter that the answer must also pass.
set -u
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

contract_dir=$(cd "$(dirname "$0")/../contract" && pwd)
golden=$contract_dir/golden
checker=$contract_dir/check.py

lo_init contract
db_on() { cairn_on "$1" db query "$2" >/dev/null; }
# api NODE PATH: the body in $dir/body, the status line and headers in
# $dir/headers, the code in $dir/code.
api() {
	curl -sS --max-time 10 --cacert "$dir/n1/data/pki/ca.crt" \
		-H "Authorization: $AUTH" -D "$dir/headers" -o "$dir/body" -w '%{http_code}' \
		"$(url "$1" "$2")" >"$dir/code"
}
code() { cat "$dir/code"; }
status_line() { head -n 1 "$dir/headers" | tr -d '\r'; }

# contract NODE PATH GOLDEN CODE [JQ]: one TAP check. GET PATH on node NODE
# must answer CODE with a body that conforms to golden/GOLDEN and, when JQ
# is given, makes `jq -e JQ` true.
contract() {
	local n=$1 path=$2 gold=$3 want=$4 filter=${5:-}
	local name="n$n: GET $path is $want and conforms to $gold"
	local diag=() lines=() out rc
	if ! api "$n" "$path" 2>"$dir/curl.err"; then
		not_ok "$name" "curl failed: $(head -n 1 "$dir/curl.err")"
		return
	fi
	[ "$(code)" = "$want" ] ||
		diag+=("answered $(code), not $want: $(status_line)")
	out=$(python3 "$checker" "$golden/$gold" "$dir/body" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		mapfile -t lines <<<"$out"
		diag+=("${lines[@]:0:25}")
		[ "${#lines[@]}" -le 25 ] ||
			diag+=("... $((${#lines[@]} - 25)) more mismatches")
	elif [ -n "$filter" ] && ! jq -e "$filter" "$dir/body" >/dev/null 2>&1; then
		diag+=("the answer conforms but leaves the golden unexercised: jq '$filter' is not true")
		diag+=("body: $(head -c 300 "$dir/body")")
	fi
	if [ "${#diag[@]}" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${diag[@]}"
	fi
}

# ---- the checker itself
if out=$(python3 "$contract_dir/test_check.py" 2>&1); then
	ok "the checker's unit tests pass (tests/contract/test_check.py)"
else
	mapfile -t lines <<<"$out"
	not_ok "the checker's unit tests pass (tests/contract/test_check.py)" \
		"${lines[@]: -25}"
fi

# ---- a 3-node cluster with one VM (n1) and one container (n2)

lo_cluster 3 contracttest
# An administrator token (root@pam, no privilege separation) for every call.
AUTH="PVEAPIToken=root@pam!test=$(cairn_on 1 --output json user token-add root@pam test --privsep 0 | jq -r .value)"

cluster_ready() {
	api "$1" /cluster/status 2>/dev/null && [ "$(code)" = 200 ] &&
		jq -e '([.data[] | select(.type == "node" and .online == 1)] | length) == 3 and
			(.data[] | select(.type == "cluster") | .quorate == 1)' "$dir/body" >/dev/null
}
for i in 1 2 3; do
	check "n$i answers over HTTPS and sees 3 nodes online, quorate" \
		wait_for 10 cluster_ready "$i"
done

check "a qemu guest 100 on n1 is inserted" \
	db_on 1 "INSERT INTO guests (vmid,type,node,config,digest) VALUES (100,'qemu','n1','{\"name\":\"web\",\"memory\":\"2048\",\"cores\":\"2\",\"sockets\":\"1\",\"scsi0\":\"local:100/vm-100-disk-0.raw,size=32G\"}','x')"
check "an lxc guest 101 on n2 is inserted" \
	db_on 1 "INSERT INTO guests (vmid,type,node,config,digest) VALUES (101,'lxc','n2','{\"hostname\":\"ct1\",\"memory\":\"512\",\"swap\":\"512\",\"cores\":\"1\",\"rootfs\":\"local:101/vm-101-disk-0.raw,size=8G\"}','x')"

# Each node learns the others' runtime stats from their heartbeats, within
# a second or so of forming. Until then cairn lists them "online" without
# cpu/mem/uptime, which Proxmox never does (no RRD data: status "unknown"),
# and nodes.json / cluster_resources.json say so. The checks below are
# about the settled cluster.
stats_everywhere() {
	local i
	for i in 1 2 3; do
		api "$i" /nodes 2>/dev/null && [ "$(code)" = 200 ] &&
			jq -e '[.data[] | select(.uptime != null)] | length == 3' "$dir/body" >/dev/null ||
			return 1
	done
}
check "every node has the runtime stats of all 3 nodes" wait_for 10 stats_everywhere

# ---- every endpoint from every node
guests='([.data[] | select(.type == "qemu" and .vmid == 100 and .node == "n1")] | length) == 1
	and ([.data[] | select(.type == "lxc" and .vmid == 101 and .node == "n2")] | length) == 1'
for i in 1 2 3; do
	contract "$i" /version version.json 200
	contract "$i" /cluster/status cluster_status.json 200 \
		'(.data | length) == 4 and ([.data[] | select(.type == "node")] | length) == 3'
	contract "$i" /cluster/resources cluster_resources.json 200 \
		"$guests and ([.data[] | select(.type == \"node\")] | length) == 3"
	contract "$i" '/cluster/resources?type=vm' cluster_resources.json 200 \
		"$guests and all(.data[]; .type == \"qemu\" or .type == \"lxc\")"
	contract "$i" /cluster/nextid cluster_nextid.json 200 '.data == "102"'
	contract "$i" /nodes nodes.json 200 \
		'[.data[].node] | sort == ["n1", "n2", "n3"]'
	for n in 1 2 3; do
		contract "$i" "/nodes/n$n/status" node_status.json 200
	done
	contract "$i" /nodes/n1/qemu node_qemu.json 200
	contract "$i" /nodes/n2/lxc node_lxc.json 200
	contract "$i" /nodes/n1/storage node_storage.json 200
	contract "$i" '/cluster/nextid?vmid=abc' error_400.json 400 \
		'.errors | has("vmid")'
done

# ---- with n3 down: the rows of an offline node and of its guests
check "a qemu guest 102 on n3 is inserted" \
	db_on 1 "INSERT INTO guests (vmid,type,node,config,digest) VALUES (102,'qemu','n3','{\"name\":\"db\",\"memory\":\"1024\",\"cores\":\"1\",\"tags\":\"db;prod\"}','x')"
kill -TERM "$(cat "$dir/n3/run/cairnd.pid")"
n3_offline() {
	local i
	for i in 1 2; do
		api "$i" /cluster/status 2>/dev/null && [ "$(code)" = 200 ] &&
			jq -e '.data[] | select(.type == "node" and .name == "n3") | .online == 0' "$dir/body" >/dev/null ||
			return 1
	done
}
check "n1 and n2 see n3 offline" wait_for 15 n3_offline
for i in 1 2; do
	contract "$i" /cluster/resources cluster_resources.json 200 \
		'(.data[] | select(.id == "node/n3") | .status != "online") and
		(.data[] | select(.id == "qemu/102") | .node == "n3" and .status == "unknown")'
	contract "$i" /nodes nodes.json 200 \
		'.data[] | select(.node == "n3") | .status == "offline"'
	contract "$i" /cluster/status cluster_status.json 200 \
		'[.data[] | select(.type == "node" and .online == 0)] | length == 1'
done

done_testing
