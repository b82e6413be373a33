#!/usr/bin/env bash
# deploy/cluster, the local multi-node harness: `up` succeeds over what a
# killed run and hand-made leftovers left; every node sees the others;
# `exec` runs a command on a node (its network and mount namespaces and
# cgroups) and prints nothing of its own; `cut` silences a node both ways
# and `heal` undoes it; `power-off` leaves nothing of the node alive, guests
# with network namespaces of their own (and an LXC container) included, and
# `start` brings it back; `down` leaves nothing of the instance.
# Only addresses of the harness's own test subnet are ever contacted.
# CAIRN_KEEP=1 keeps the agents' logs after a failure (/tmp/cairn-harness-TAG).
set -u
source "$(dirname "$0")/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP deploy/cluster needs root"
	exit 0
fi

top=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTER=$top/deploy/cluster
export CAIRN_BUILDDIR
# A tag of our own (8 characters at most), so parallel runs do not collide.
tag=h$(($$ % 10000000))
dir=/tmp/cairn-cluster-$tag
unset CAIRN_CLUSTER_DIR CAIRN_CLUSTER_WAIT
cl() { "$CLUSTER" --name "$tag" "$@"; }
cleanup() {
	cl down ${CAIRN_KEEP:+--keep} >/dev/null 2>&1
	ip netns del "cairn-$tag-n1" 2>/dev/null
	ip link del "cbr-$tag" 2>/dev/null
	nft delete table bridge "cairn_$tag" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

has_status=no
"$CAIRN" help 2>/dev/null | grep -q 'cluster status' && has_status=yes

# dead PID: gone, or a zombie waiting for its parent (nothing runs).
dead() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}
all_dead() {
	local p
	for p in "$@"; do
		dead "$p" || return 1
	done
}
addr() { eval "echo \$CAIRN_ADDR_N${1#n}"; }
# reach FROM TO: a TCP connection from node FROM to node TO's RPC port
# (FROM "host": from the host), given up after 1 s.
reach() {
	local to
	to=$(addr "$2")
	if [ "$1" = host ]; then
		timeout 1 bash -c "exec 3<>/dev/tcp/$to/8016" 2>/dev/null
	else
		cl exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$to/8016" 2>/dev/null
	fi
}
# lists NODE NAMES...: NODE lists exactly those members.
lists() {
	local node=$1 out
	shift
	out=$(cl exec "$node" cairn cluster nodes 2>/dev/null) || return 1
	[ "$(awk '$1 ~ /^n[0-9]+$/ { print $1 }' <<<"$out" | sort | xargs)" = "$*" ]
}
# online NODE: the members online and whether quorate, as NODE sees them
# ("n1 n2 n3 quorate"); needs `cairn cluster status`.
online() {
	cl exec "$1" cairn --output json cluster status 2>/dev/null | jq -r '
		([.[] | select(.type == "node" and (.online == 1 or .online == true)) | .name] | sort | join(" "))
		+ (if any(.[]; .type == "cluster" and (.quorate == 1 or .quorate == true)) then " quorate" else "" end)'
}
sees_all() {
	lists "$1" n1 n2 n3 || return 1
	[ "$has_status" = no ] || [ "$(online "$1")" = "n1 n2 n3 quorate" ]
}
# procs_of NODE: every pid in the node's cgroups, in every hierarchy.
node_cgroups() { find /sys/fs/cgroup -maxdepth 7 -type d -path "*/cairn-$tag/$1" 2>/dev/null; }
procs_of() {
	local d
	for d in $(node_cgroups "$1"); do
		find "$d" -name cgroup.procs -exec cat {} +
	done | sort -un
}
# live_in NODE: live processes whose cgroup (any hierarchy) is the node's.
live_in() {
	local f p
	for f in $(grep -l "/cairn-$tag/$1\(/\|$\)" /proc/[0-9]*/cgroup 2>/dev/null); do
		p=${f#/proc/}
		p=${p%/cgroup}
		dead "$p" || echo "$p"
	done
}
t_start=$(date +%s)

# --- leftovers: hand-made ones, then a run killed halfway ----------------------
ip netns add "cairn-$tag-n1"
ip link add "cbr-$tag" type bridge
nft add table bridge "cairn_$tag"
cl up -n 3 >/dev/null 2>&1 &
up_pid=$!
wait_for 30 test -S "$dir/n2/run/cairnd.sock"
kill -KILL "$up_pid" 2>/dev/null
wait "$up_pid" 2>/dev/null
killed_agents=$(cat "$dir"/n*/run/cairnd.pid 2>/dev/null | xargs)
check "a killed run left agents behind (${killed_agents:-none})" test -n "$killed_agents"

t0=$(date +%s%N)
out=$(cl up -n 3 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	ok "up -n 3 succeeds over a killed run's leftovers ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	not_ok "up -n 3 succeeds over a killed run's leftovers" "rc=$rc" "$out"
fi
# shellcheck disable=SC2086
check "the killed run's agents are gone" all_dead $killed_agents
eval "$(cl env)"

# --- every node sees the others; exec -------------------------------------------
for n in n1 n2 n3; do
	if sees_all "$n"; then
		ok "$n sees n1 n2 n3$([ "$has_status" = yes ] && echo " online and the cluster quorate")"
	else
		not_ok "$n sees n1 n2 n3" "$(cl exec "$n" cairn cluster nodes 2>&1)" \
			"$([ "$has_status" = yes ] && online "$n")"
	fi
done
b=""
if a=$(cl exec n2 cairn cluster nodes 2>&1) &&
	b=$("$CAIRN" --socket "$CAIRN_SOCKET_N2" cluster nodes 2>&1) &&
	[ -n "$a" ] && [ "$a" = "$b" ]; then
	ok "exec n2 cairn cluster nodes prints what n2's agent says, nothing more"
else
	not_ok "exec n2 cairn cluster nodes prints what n2's agent says, nothing more" "$a" "---" "$b"
fi
cl exec n1 sh -c 'exit 7'
check "exec exits with the command's status" test $? -eq 7
# /sys/class/net lists what `ip link` lists there (eth0, lo, and whatever the
# agent made), not the host's interfaces such as the test bridge.
out=$(cl exec n2 sh -c 'ls /sys/class/net | xargs; ip -o link show | awk -F": " "{ print \$2 }" |
	sed "s/@.*//" | sort | xargs; ip -4 -o addr show dev eth0' 2>&1)
sys_net=$(sed -n 1p <<<"$out")
if [ "$sys_net" = "$(sed -n 2p <<<"$out")" ] && grep -qw eth0 <<<"$sys_net" &&
	! grep -qw "cbr-$tag" <<<"$sys_net" && grep -q " $CAIRN_ADDR_N2/24 " <<<"$out"; then
	ok "exec runs in the node's network namespace, with its own /sys"
else
	not_ok "exec runs in the node's network namespace, with its own /sys" "$out"
fi
out=$(cl exec n2 cat /proc/self/cgroup)
if [ -n "$out" ] && ! grep -v "/cairn-$tag/n2\$" <<<"$out"; then
	ok "exec runs in the node's cgroup in every hierarchy ($(wc -l <<<"$out"))"
else
	not_ok "exec runs in the node's cgroup in every hierarchy" "$out"
fi
mkdir -p "$dir/probe"
cl exec n2 mount -t tmpfs cairn-probe "$dir/probe"
if cl exec n2 grep -q " $dir/probe .* cairn-probe " /proc/self/mountinfo &&
	! grep -q " $dir/probe " /proc/self/mountinfo &&
	! cl exec n1 grep -q " $dir/probe " /proc/self/mountinfo; then
	ok "a mount made by one exec on n2 is there for the next, and only on n2"
else
	not_ok "a mount made by one exec on n2 is there for the next, and only on n2"
fi
check "env gives each node's API URL" test "$CAIRN_URL_N1 $CAIRN_URL_N3" = \
	"https://$CAIRN_ADDR_N1:8006 https://$CAIRN_ADDR_N3:8006"
check "env gives the cluster CA" cmp -s "$CAIRN_CA" "$dir/n3/data/pki/ca.crt"
token_works() {
	[ "$(curl -sS --max-time 10 --cacert "$CAIRN_CA" -H "Authorization: $CAIRN_TOKEN" \
		-o /dev/null -w '%{http_code}' "$CAIRN_URL_N3/api2/json/cluster/resources")" = 200 ]
}
check "env gives an administrator token that works on n3 (${CAIRN_TOKEN%%=*}=...)" \
	wait_for 10 token_works
check "... kept 0600 in the instance's dir" \
	test "$(stat -c %a "$CAIRN_CLUSTER_DIR/admin.token")" = 600

# --- a storage marked shared must be the same directory on every node -------
post_shared() {
	curl -sS --max-time 20 --cacert "$CAIRN_CA" -H "Authorization: $CAIRN_TOKEN" \
		-o "$dir/shared.body" -w '%{http_code}' -X POST \
		--data-urlencode "storage=$1" --data-urlencode type=dir \
		--data-urlencode "path=$dir/shared" --data-urlencode shared=1 \
		"$CAIRN_URL_N1/api2/json/storage"
}
mkdir -p "$dir/shared"
cl exec n2 mount -t tmpfs cairn-not-shared "$dir/shared"
code=$(post_shared sh1)
check "shared=1 on a directory n2 sees differently is 400 naming n2 ($code: $(jq -c .errors "$dir/shared.body" 2>/dev/null))" \
	bash -c "[ '$code' = 400 ] && jq -e '.errors.shared | test(\"node n2\")' '$dir/shared.body' >/dev/null"
cl exec n2 umount "$dir/shared"
code=$(post_shared sh1)
check "... and accepted once n2 sees the same directory ($code)" test "$code" = 200
check "... leaving no check file behind" \
	bash -c "[ -z \"\$(ls -A '$dir/shared' | grep cairn-shared)\" ]"

# --- cut and heal ------------------------------------------------------------------
check "before the cut, n2 reaches n1" reach n2 n1
cl cut n2
check "cut: n2 cannot reach n1" eval '! reach n2 n1'
check "cut: n1 cannot reach n2" eval '! reach n1 n2'
check "cut: the host cannot reach n2" eval '! reach host n2'
check "cut: n1 still reaches n3" reach n1 n3
if [ "$has_status" = yes ]; then
	if wait_for 15 eval '[ "$(online n1)" = "n1 n3 quorate" ]'; then
		ok "cut: n1 sees n2 offline, the cluster quorate"
	else
		not_ok "cut: n1 sees n2 offline, the cluster quorate" "$(online n1)"
	fi
fi
cl heal n2
check "heal: n2 reaches n1 again" wait_for 5 reach n2 n1
if [ "$has_status" = yes ]; then
	check "heal: n1 sees n2 online again" wait_for 15 eval '[ "$(online n1)" = "n1 n2 n3 quorate" ]'
fi

# --- power-off: nothing of n3 survives, guests included ---------------------------
# A guest with network and pid namespaces of its own (`ip netns pids` would
# not list it), started on n3...
cl exec n3 setsid unshare --net --pid --fork sleep 600 </dev/null >/dev/null 2>&1 &
# ...and, where LXC is installed, a container.
lxc=no
if command -v lxc-create >/dev/null && command -v busybox >/dev/null &&
	[ -e /usr/share/lxc/templates/lxc-busybox ]; then
	mkdir -p "$dir/lxc"
	if cl exec n3 lxc-create -P "$dir/lxc" -n g1 -t busybox >"$dir/lxc.log" 2>&1; then
		# no network (no bridge needed); cgroups below the agent's own, as
		# cairn's containers must be for a node's power-off to reach them
		sed -i '/^lxc\.net\./d' "$dir/lxc/g1/config"
		printf 'lxc.net.0.type = empty\nlxc.cgroup.relative = 1\n' >>"$dir/lxc/g1/config"
		cl exec n3 lxc-start -P "$dir/lxc" -n g1 >>"$dir/lxc.log" 2>&1 && lxc=yes
	fi
fi
sleep_pid=""
wait_for 5 eval 'sleep_pid=$(pgrep -f "^sleep 600$" | while read -r p; do grep -q "/cairn-$tag/n3$" /proc/$p/cgroup && echo $p; done | head -1); [ -n "$sleep_pid" ]'
agent3=$(cat "$dir/n3/run/cairnd.pid")
ct_pid=""
[ "$lxc" = yes ] && ct_pid=$(cl exec n3 lxc-info -P "$dir/lxc" -n g1 -pH 2>/dev/null)
if [ -n "$sleep_pid" ] && [ "$(readlink "/proc/$sleep_pid/ns/net")" != "$(readlink "/proc/$agent3/ns/net")" ] &&
	! ip netns pids "cairn-$tag-n3" | grep -qx "$sleep_pid"; then
	ok "a guest runs on n3 in a network namespace of its own"
else
	not_ok "a guest runs on n3 in a network namespace of its own" "pid: $sleep_pid"
fi
if [ "$lxc" = yes ]; then
	if [ -n "$ct_pid" ] && grep -q "/cairn-$tag/n3/" "/proc/$ct_pid/cgroup"; then
		ok "an LXC container runs on n3, in n3's cgroups"
	else
		not_ok "an LXC container runs on n3, in n3's cgroups" "$(cat "$dir/lxc.log")"
	fi
else
	ok "an LXC container runs on n3 # SKIP lxc or busybox not installed"
fi
before=$(procs_of n3 | xargs)
t0=$(date +%s%N)
out=$(cl power-off n3 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" -eq 0 ]; then
	ok "power-off n3 ($ms ms)"
else
	not_ok "power-off n3" "$out"
fi
wait "$!" 2>/dev/null
# shellcheck disable=SC2086
check "power-off: every process of n3 is dead (agent, guest, container: $before)" \
	all_dead $before $agent3 $sleep_pid $ct_pid
check "power-off: n3's cgroups are empty in every hierarchy" test -z "$(procs_of n3)"
check "power-off: no live process anywhere is in n3's cgroups" test -z "$(live_in n3)"
check "power-off: n3's link is down" bash -c "ip -o link show cv-$tag-3 | grep -qv 'state UP'"
# (if n3 led, the others elect a new leader first)
check "power-off: n1 and n2 still answer" wait_for 10 eval 'lists n1 n1 n2 n3 && lists n2 n1 n2 n3'
if [ "$has_status" = yes ]; then
	check "power-off: n1 sees n3 offline, the cluster quorate" \
		wait_for 15 eval '[ "$(online n1)" = "n1 n2 quorate" ]'
fi
cl exec n3 true 2>/dev/null
check "exec on a powered-off node fails with 125" test $? -eq 125

out=$(cl start n3 --timeout 20 2>&1)
rc=$?
agent3b=$(cat "$dir/n3/run/cairnd.pid" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$agent3b" ] && ! dead "$agent3b"; then
	ok "start n3 boots it again"
else
	not_ok "start n3 boots it again" "$out"
fi
check "after start, every node sees all three again" \
	wait_for 20 eval 'sees_all n1 && sees_all n2 && sees_all n3'

# --- down ------------------------------------------------------------------------------
if [ -n "${CAIRN_KEEP:-}" ] && [ "${tap_failed:-0}" -gt 0 ]; then
	mkdir -p "/tmp/cairn-harness-$tag"
	for n in n1 n2 n3; do
		cp "$dir/$n/cairnd.log" "/tmp/cairn-harness-$tag/$n.log" 2>/dev/null
	done
	echo "# the agents' logs are in /tmp/cairn-harness-$tag/"
fi
agents=$(cat "$dir"/n*/run/cairnd.pid | xargs)
out=$(cl down 2>&1)
check "down succeeds" test $? -eq 0 -a -z "$out"
# shellcheck disable=SC2086
check "down: the agents are dead" all_dead $agents
check "down: no network namespace of the instance" \
	bash -c "! ip netns list | grep -q '^cairn-$tag-'"
check "down: no bridge or veth of the instance" \
	bash -c "! ip -o link show | grep -qE ': (cbr-$tag|cv-$tag-[0-9]+)[@:]'"
check "down: no nft table of the instance" bash -c "! nft list tables | grep -q 'cairn_$tag\$'"
check "down: no cgroup of the instance" \
	test -z "$(find /sys/fs/cgroup -maxdepth 7 -type d -name "cairn-$tag" 2>/dev/null)"
check "down: no mount of the instance" \
	bash -c "! grep -qE '/run/cairn-cluster/$tag|$dir' /proc/self/mountinfo"
check "down: no files of the instance" test ! -e "$dir" -a ! -e "/run/cairn-cluster/$tag"
check "down again is a no-op" cl down
echo "# $(($(date +%s) - t_start)) s"

done_testing
