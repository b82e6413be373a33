#!/usr/bin/env bash
# Status under real failures, on deploy/cluster's namespaced nodes: power
# loss of one and then two nodes, a network cut and its heal, a bad join
# token, and the removal of a member.
set -u
source "$(dirname "$0")/tap.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
tag=p$((RANDOM % 100000))
export CAIRN_CLUSTER=$tag CAIRN_BUILDDIR
cl() { "$top/deploy/cluster" --name "$tag" "$@"; }
on() { local n=$1; shift; cl exec "$n" cairn "$@"; }
cleanup() { cl down >/dev/null 2>&1; }
trap cleanup EXIT

# view NODE: "ONLINE QUORATE" as NODE sees the cluster.
view() {
	on "$1" --output json cluster status 2>/dev/null |
		jq -r '"\([.[] | select(.type == "node" and .online == 1)] | length) \(.[0].quorate)"'
}
sees() { [ "$(view "$1")" = "$2" ]; }
export -f view sees on cl
export top tag

if cl up -n 3 >"$CAIRN_BUILDDIR/cluster_power.up.log" 2>&1; then
	ok "a three-node cluster forms in namespaces"
else
	not_ok "a three-node cluster forms in namespaces" "$(tail -5 "$CAIRN_BUILDDIR/cluster_power.up.log")"
	done_testing
	exit 1
fi
for i in 1 2 3; do
	check "n$i sees three online voters and quorum" sees "n$i" "3 1"
done

cl power-off n3
t0=$(date +%s%N)
if wait_for 5 bash -c 'sees n1 "2 1" && sees n2 "2 1"'; then
	ok "power off n3: n1 and n2 report it offline within 5 s ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	not_ok "power off n3: n1 and n2 report it offline within 5 s" "n1: $(view n1) n2: $(view n2)"
fi
out=$(on n1 db query "INSERT INTO cluster_secrets (name, value) VALUES ('power', 'x')" 2>&1)
check "and keep accepting writes ($out)" grep -q "rows_affected=1" <<<"$out"

cl power-off n2
if wait_for 8 sees n1 "1 0"; then
	ok "power off n2 too: n1 reports no quorum from its member copy"
else
	not_ok "power off n2 too: n1 reports no quorum from its member copy" "n1: $(view n1)"
fi
out=$(on n1 cluster join-token 2>&1)
if [ $? -ne 0 ] && grep -q "not quorate" <<<"$out"; then
	ok "and refuses changes with a clear error"
else
	not_ok "and refuses changes with a clear error" "$out"
fi

cl start n2 >/dev/null 2>&1
cl start n3 >/dev/null 2>&1
if wait_for 15 bash -c 'sees n1 "3 1" && sees n2 "3 1" && sees n3 "3 1"'; then
	ok "both back: all three online and quorate everywhere"
else
	not_ok "both back: all three online and quorate everywhere" "n1: $(view n1) n2: $(view n2) n3: $(view n3)"
fi

out=$(on n3 cluster join "cairn-join-v1.eyJpZCI6IngifQ" 2>&1)
check "a bad join token is refused" grep -q "join token" <<<"$out"

cl power-off n3
wait_for 8 bash -c 'sees n1 "2 1"'
out=$(on n1 cluster remove n2 2>&1)
if [ $? -ne 0 ] && grep -q "would break quorum: 1 of the 2 remaining voters are online" <<<"$out"; then
	ok "removing an online voter while another is down is refused: it would break quorum"
else
	not_ok "removing an online voter while another is down is refused: it would break quorum" "$out"
fi
cl start n3 >/dev/null 2>&1
wait_for 15 bash -c 'sees n1 "3 1" && sees n2 "3 1" && sees n3 "3 1"'

cl cut n2
if wait_for 8 bash -c 'sees n1 "2 1" && sees n3 "2 1"'; then
	ok "cut n2: its peers see it offline"
else
	not_ok "cut n2: its peers see it offline" "n1: $(view n1) n3: $(view n3)"
fi
if wait_for 8 bash -c '[ "$(view n2 | cut -d" " -f2)" = 0 ]'; then
	ok "and n2 sees itself without quorum ($(view n2))"
else
	not_ok "and n2 sees itself without quorum" "n2: $(view n2)"
fi
cl heal n2
if wait_for 15 bash -c 'sees n1 "3 1" && sees n2 "3 1" && sees n3 "3 1"'; then
	ok "heal: all online again"
else
	not_ok "heal: all online again" "n1: $(view n1) n2: $(view n2) n3: $(view n3)"
fi

out=$(on n1 cluster remove n3 2>&1)
check "remove n3 ($out)" grep -q "removed" <<<"$out"
check "the two-node cluster keeps working" \
	wait_for 8 bash -c 'sees n1 "2 1" && on n2 db query "INSERT OR REPLACE INTO cluster_secrets (name, value) VALUES ('"'"'two'"'"', '"'"'x'"'"')" | grep -q rows_affected=1'
check "the removed node's certificate is rejected: it has no quorum" \
	wait_for 8 bash -c '[ "$(view n3 | cut -d" " -f2)" = 0 ]'

done_testing
