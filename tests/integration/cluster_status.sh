#!/usr/bin/env bash
# Cluster status semantics with real agents on loopback addresses: online,
# quorum from the member copy, refusal of changes without quorum, Proxmox's
# /cluster/status shape, remove and leave. (Power loss and network cuts in
# namespaces are tests/integration/harness.sh's.)
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init status
# status_is NODE ONLINE_COUNT QUORATE(0|1): NODE's view, from --output json.
status_is() {
	local json
	json=$(cairn_on "$1" --output json cluster status 2>/dev/null) || return 1
	[ "$(jq '[.[] | select(.type == "node" and .online == 1)] | length' <<<"$json")" = "$2" ] &&
		[ "$(jq '.[] | select(.type == "cluster") | .quorate' <<<"$json")" = "$3" ]
}

lo_cluster 3 st

jq_true() { jq -e "$@" >/dev/null; }
all_see() { status_is 1 "$1" "$2" && status_is 2 "$1" "$2" && status_is 3 "$1" "$2"; }
check "every node sees three online members and quorum" wait_for 10 all_see 3 1

json=$(cairn_on 2 --output json cluster status)
check "--output json is Proxmox's /cluster/status: a cluster entry" \
	jq_true '.[0] | .type == "cluster" and .id == "cluster" and .name == "st" and .nodes == 3 and .quorate == 1 and (.version | type) == "number"' <<<"$json"
check "... and one node entry per member with Proxmox's keys and types" \
	jq_true '[.[1:][] | select((.id | startswith("node/")) and (.nodeid | type) == "number" and (.ip | type) == "string" and (.online == 0 or .online == 1) and (.local == 0 or .local == 1) and .level == "")] | length == 3' <<<"$json"
check "... exactly one of which is local" \
	jq_true '[.[] | select(.type == "node" and .local == 1 and .name == "n2")] | length == 1' <<<"$json"
check "the table shows a leader and the skew" \
	bash -c "'$CAIRN' --socket '$(sock 3)' cluster status | grep -qE '^[0-9]+ +n[123] .* yes'"

kill -KILL "$(cat "$dir/n3/run/cairnd.pid")"
t0=$(date +%s%N)
if wait_for 5 bash -c "$(declare -f status_is cairn_on sock); CAIRN='$CAIRN' dir='$dir'; status_is 1 2 1 && status_is 2 2 1"; then
	ok "a killed node is seen offline within 5 s ($((($(date +%s%N) - t0) / 1000000)) ms), quorum stays"
else
	not_ok "a killed node is seen offline within 5 s, quorum stays" "$(cairn_on 1 cluster status)"
fi
out=$(cairn_on 1 db query "INSERT INTO cluster_secrets (name, value) VALUES ('probe', 'x')" 2>&1)
check "two of three still accept writes ($out)" grep -q "rows_affected=1" <<<"$out"

kill -KILL "$(cat "$dir/n2/run/cairnd.pid")"
if wait_for 8 status_is 1 1 0; then
	ok "the last node reports no quorum from its member copy"
else
	not_ok "the last node reports no quorum from its member copy" "$(cairn_on 1 cluster status 2>&1)"
fi
out=$(cairn_on 1 cluster join-token 2>&1)
if [ $? -ne 0 ] && grep -q "not quorate (1 of 3 voters online" <<<"$out"; then
	ok "it refuses changes with a clear error"
else
	not_ok "it refuses changes with a clear error" "$out"
fi

start_node 2
start_node 3
check "with both back, all three are online and quorate" wait_for 15 all_see 3 1

out=$(cairn_on 1 cluster remove n1 2>&1)
check "removing yourself is refused (use leave)" grep -q "use \`cairn cluster leave\`" <<<"$out"
out=$(cairn_on 1 cluster remove n9 2>&1)
check "removing an unknown node names it" grep -q "no node named 'n9'" <<<"$out"
out=$(cairn_on 1 cluster remove n3 2>&1)
check "cluster remove n3 succeeds ($out)" grep -q "removed" <<<"$out"
check "the two-node cluster sees two members, quorate" \
	wait_for 5 bash -c "$(declare -f status_is cairn_on sock); CAIRN='$CAIRN' dir='$dir'; status_is 1 2 1 && status_is 2 2 1"
out=$(cairn_on 2 db query "INSERT INTO cluster_secrets (name, value) VALUES ('after-remove', 'x')" 2>&1)
check "and keeps accepting writes" grep -q "rows_affected=1" <<<"$out"
check "the removed node's certificate is refused: it has no quorum" \
	wait_for 8 bash -c "'$CAIRN' --socket '$(sock 3)' --output json cluster status | jq -e '.[0].quorate == 0' >/dev/null"

out=$(cairn_on 2 cluster leave 2>&1)
check "n2 leaves the cluster ($out)" grep -q "left the cluster" <<<"$out"
out=$(cairn_on 2 cluster status 2>&1)
check "after leaving, n2 is in no cluster" grep -q "not in a cluster" <<<"$out"
check "n2 left no cluster state behind" \
	wait_for 5 test ! -e "$dir/n2/data/cluster.json" -a ! -e "$dir/n2/data/db"
check "n1 carries on alone, quorate" wait_for 8 status_is 1 1 1

done_testing
