# shellcheck shell=bash
# The pieces of deploy/cluster (sourced, not run): names, state, network,
# mount namespaces, cgroups, agents, and what "the cluster is up" means.
#
# One instance (a tag, "dev" by default) is N nodes n1..nN. Node nI is
#   - a network namespace cairn-TAG-nI whose eth0 (SUBNET.I/24) is the peer of
#     veth cv-TAG-I, a port of the bridge cbr-TAG (the host holds SUBNET.254);
#   - a persistent mount namespace, bound to RUNTIME/nI.mnt, with /sys
#     remounted for that network namespace (`ip netns exec` would make a new
#     one per call, so mounts made by one command would vanish for the next);
#   - a cgroup cairn-TAG/nI in every mounted hierarchy, under the cgroup of
#     whoever ran `up` (so the nodes stay inside the caller's own limits).
# The agent, its guests and every `exec` command live in all three.
#
# Files: RUNTIME=/run/cairn-cluster/TAG (a private bind mount of itself, so
# namespace files can be bound into it; it holds the state file and markers)
# and DIR (data, configs, logs, the CA; /tmp/cairn-cluster-TAG by default).

CL_RUN_ROOT=/run/cairn-cluster
CL_PORT_API=8006
CL_PORT_RPC=8016
CL_PORT_DB=8017

die() {
	echo "deploy/cluster: $*" >&2
	exit 1
}

warn() {
	echo "deploy/cluster: $*" >&2
}

# --- names -------------------------------------------------------------------

# cl_set_tag TAG: checks the tag and derives every name from it. Tags are
# short because Linux interface names are at most 15 characters:
# "cv-" + 8 + "-" + 2 digits.
cl_set_tag() {
	TAG=$1
	[[ "$TAG" =~ ^[a-z0-9]{1,8}$ ]] ||
		die "instance name '$TAG' must be 1-8 characters of a-z and 0-9"
	BRIDGE=cbr-$TAG
	NFT_TABLE=cairn_$TAG
	CG_NAME=cairn-$TAG
	RUNTIME=$CL_RUN_ROOT/$TAG
	STATE=$RUNTIME/state
}

node_netns() { echo "cairn-$TAG-n$1"; }
node_veth() { echo "cv-$TAG-$1"; }
node_mnt() { echo "$RUNTIME/n$1.mnt"; }
node_addr() { echo "$SUBNET.$1"; }
node_dir() { echo "$DIR/n$1"; }
node_sock() { echo "$DIR/n$1/run/cairnd.sock"; }

# node_index NAME: prints I for "nI" when the instance has that node.
node_index() {
	local name=$1
	[[ "$name" =~ ^n([1-9][0-9]*)$ ]] && [ "${BASH_REMATCH[1]}" -le "$NODES" ] ||
		die "no node '$name' in instance '$TAG' (nodes n1..n$NODES)"
	echo "${BASH_REMATCH[1]}"
}

# --- state -------------------------------------------------------------------

# The state file is KEY=VALUE lines written by `up` and read (never sourced:
# no code from a file runs as root) by every later subcommand.
state_write() {
	local tmp=$STATE.tmp
	{
		echo "TAG=$TAG"
		echo "DIR=$DIR"
		echo "NODES=$NODES"
		echo "SUBNET=$SUBNET"
		echo "HOST_ADDR=$HOST_ADDR"
		echo "CG_BASES=$CG_BASES"
		echo "WAIT_MODE=$WAIT_MODE"
		echo "CAIRN=$CAIRN"
		echo "CAIRND=$CAIRND"
	} >"$tmp" && mv "$tmp" "$STATE"
}

# state_load: 0 and the variables set when the instance has a state file.
state_load() {
	local key value
	[ -f "$STATE" ] || return 1
	while IFS='=' read -r key value; do
		case "$key" in
		DIR | NODES | SUBNET | HOST_ADDR | CG_BASES | WAIT_MODE | CAIRN | CAIRND)
			printf -v "$key" '%s' "$value"
			;;
		esac
	done <"$STATE"
	[ -n "${DIR:-}" ] && [[ "${NODES:-}" =~ ^[0-9]+$ ]]
}

# not_on_a_node: commands that freeze or kill nodes must not run on one of
# them (they would freeze themselves).
not_on_a_node() {
	! grep -q "/$CG_NAME/" /proc/$$/cgroup ||
		die "run this from the host, not on a node of instance $TAG"
}

need_instance() {
	state_load || die "instance '$TAG' is not up (no $STATE); start it with: deploy/cluster${TAG_ARG:+ $TAG_ARG} up -n N"
}

# --- processes -----------------------------------------------------------------

# pid_alive PID: the process exists and is not a zombie (kill -0 succeeds on
# zombies, which a dead node leaves behind until their parent reaps them).
pid_alive() {
	local stat
	[[ "$1" =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat:0:1}" != Z ] && [ "${stat:0:1}" != X ]
}

agent_pid() {
	local pid
	pid=$(cat "$(node_dir "$1")/run/cairnd.pid" 2>/dev/null) || return 1
	pid_alive "$pid" && echo "$pid"
}

# --- subnet --------------------------------------------------------------------

ip2int() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}

# used_prefixes: every IPv4 destination in every routing table (local and
# broadcast entries included: they are this host's own addresses), as
# ADDR/LEN. The default route is left out: it overlaps everything.
used_prefixes() {
	ip -4 -o route show table all | awk '
		{ t = $1 }
		t ~ /^(unicast|local|broadcast|multicast|unreachable|blackhole|prohibit|throw|nat|anycast)$/ { t = $2 }
		t == "default" { next }
		t !~ /\// { t = t "/32" }
		{ print t }'
}

# pick_subnet: sets SUBNET (A.B.C of a /24) to a private /24 that overlaps
# no route of this host (other instances' bridges have routes too, so
# parallel instances get different subnets). Run under the global lock.
pick_subnet() {
	local used=() p seed k c net len n m base cand ok
	mapfile -t used < <(used_prefixes)
	seed=$(($(printf '%s' "$TAG" | cksum | cut -d' ' -f1) % 256))
	for base in 10.213 172.29 192.168; do
		for ((k = 0; k < 256; k++)); do
			c=$(((seed + k) % 256))
			cand=$(ip2int "$base.$c.0")
			ok=yes
			for p in "${used[@]}"; do
				net=$(ip2int "${p%/*}")
				len=${p#*/}
				[ "$len" -gt 24 ] && n=24 || n=$len
				m=$(((0xffffffff << (32 - n)) & 0xffffffff))
				[ "$n" -eq 0 ] && m=0
				if [ $((cand & m)) -eq $((net & m)) ]; then
					ok=no
					break
				fi
			done
			if [ "$ok" = yes ]; then
				SUBNET=$base.$c
				HOST_ADDR=$SUBNET.254
				return 0
			fi
		done
	done
	die "no free private /24 left (every candidate overlaps a route)"
}

# --- cgroups -------------------------------------------------------------------

# cg_hierarchies: one line per mounted cgroup hierarchy (v1 controllers,
# named v1 hierarchies, the v2 mount): MOUNTPOINT<TAB>the caller's cgroup
# in it. Mountinfo gives the mounts; /proc/self/cgroup the caller's place.
cg_hierarchies() {
	awk '
	FNR == NR {
		# /proc/self/cgroup: ID:CONTROLLERS:PATH; v2 is 0::PATH
		i = index($0, ":"); rest = substr($0, i + 1)
		j = index(rest, ":"); ctl = substr(rest, 1, j - 1); path = substr(rest, j + 1)
		if (substr($0, 1, i - 1) == "0" && ctl == "") { v2 = path; next }
		n = split(ctl, c, ",")
		for (k = 1; k <= n; k++) where[c[k]] = path
		next
	}
	{
		split($0, halves, " - "); split(halves[1], pre, " "); split(halves[2], post, " ")
		fstype = post[1]; root = pre[4]; mp = pre[5]
		if (fstype == "cgroup2") {
			key = "v2"; path = v2
		} else if (fstype == "cgroup") {
			path = ""; n = split(post[3], o, ",")
			for (k = 1; k <= n; k++) if (o[k] in where) { path = where[o[k]]; key = o[k]; break }
			if (path == "") next
		} else next
		if (key in seen) next
		seen[key] = 1
		# a mount of a sub-tree (cgroup namespaces) shows paths relative to it
		if (root != "/" && index(path, root) == 1) path = substr(path, length(root) + 1)
		else if (root != "/") path = "/"
		gsub(/\\040/, " ", mp)
		print mp "\t" path
	}' /proc/self/cgroup /proc/self/mountinfo
}

# cg_plan_bases: sets CG_BASES to "DIR:DIR:..." with one cairn-TAG directory
# per hierarchy, below the caller's own cgroup there.
cg_plan_bases() {
	local mp path dir bases=()
	while IFS=$'\t' read -r mp path; do
		dir=$mp$path/$CG_NAME
		dir=${dir//\/\//\/}
		bases+=("$dir")
	done < <(cg_hierarchies)
	[ "${#bases[@]}" -gt 0 ] || die "no cgroup hierarchy is mounted"
	CG_BASES=$(
		IFS=:
		echo "${bases[*]}"
	)
}

cg_bases() {
	local IFS=:
	# shellcheck disable=SC2086
	printf '%s\n' $CG_BASES
}

# cg_mkdir DIR: creates a cgroup; a new v1 cpuset starts with no CPUs and no
# memory nodes (nothing could join it), so it gets its parent's.
cg_mkdir() {
	local dir=$1 f
	[ -d "$dir" ] || mkdir "$dir" || return 1
	for f in cpuset.cpus cpuset.mems; do
		if [ -f "$dir/$f" ] && [ -z "$(cat "$dir/$f")" ]; then
			cat "$(dirname "$dir")/$f" >"$dir/$f" || return 1
		fi
	done
	# sub-cgroups made by tools that do not copy cpusets inherit them
	[ -f "$dir/cgroup.clone_children" ] && [ -f "$dir/cpuset.cpus" ] &&
		echo 1 >"$dir/cgroup.clone_children"
	return 0
}

cg_create_node() {
	local base
	while read -r base; do
		cg_mkdir "$base" && cg_mkdir "$base/n$1" ||
			die "cannot create cgroup $base/n$1"
	done < <(cg_bases)
}

# cg_node_dirs I: the node's cgroup in every hierarchy.
cg_node_dirs() {
	local base
	while read -r base; do
		echo "$base/n$1"
	done < <(cg_bases)
}

# cg_join I PID: moves PID into the node's cgroups (all of them, so that
# whatever it starts is found again in any hierarchy).
cg_join() {
	local dir
	while read -r dir; do
		echo "$2" >"$dir/cgroup.procs" 2>/dev/null ||
			{ warn "cannot move $2 into $dir"; return 1; }
	done < <(cg_node_dirs "$1")
}

# cg_procs DIR...: every pid in those cgroups and their sub-cgroups.
cg_procs() {
	local d
	for d in "$@"; do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# cg_kill DIR...: kills everything in the sub-trees, atomically enough that
# nothing reacts to its neighbours dying: freeze first (v1 freezer.state,
# v2 cgroup.freeze: frozen tasks cannot fork), SIGKILL every pid (and v2's
# cgroup.kill), thaw so the kills land, and wait until all are empty.
cg_kill() {
	local d pids deadline
	[ $# -gt 0 ] || return 0
	for d in "$@"; do
		[ -f "$d/freezer.state" ] && echo FROZEN >"$d/freezer.state" 2>/dev/null
		[ -f "$d/cgroup.freeze" ] && echo 1 >"$d/cgroup.freeze" 2>/dev/null
	done
	deadline=$(($(date +%s%N) + 2000000000))
	for d in "$@"; do
		while [ -f "$d/freezer.state" ] && [ "$(cat "$d/freezer.state")" != FROZEN ] &&
			[ "$(date +%s%N)" -lt "$deadline" ]; do
			sleep 0.01
		done
	done
	deadline=$(($(date +%s%N) + 10000000000))
	while :; do
		pids=$(cg_procs "$@")
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
		# Thawed even when it was empty already: whatever joins the
		# cgroup later (the node's next boot) must not freeze.
		for d in "$@"; do
			[ -z "$pids" ] || { [ -f "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null; }
			[ -f "$d/freezer.state" ] && echo THAWED >"$d/freezer.state" 2>/dev/null
			[ -f "$d/cgroup.freeze" ] && echo 0 >"$d/cgroup.freeze" 2>/dev/null
		done
		[ -n "$pids" ] || return 0
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			warn "still alive after SIGKILL: ${pids//$'\n'/ }"
			return 1
		fi
		sleep 0.02
	done
}

# cg_find_all: every cairn-TAG directory in every hierarchy, whoever made
# it (a killed `up` may have died before writing its state).
cg_find_all() {
	local mp path
	{
		[ -n "${CG_BASES:-}" ] && cg_bases
		while IFS=$'\t' read -r mp path; do
			find "$mp" -maxdepth 6 -type d -name "$CG_NAME" -prune -print 2>/dev/null
		done < <(cg_hierarchies)
	} | sort -u | while read -r d; do [ -d "$d" ] && echo "$d"; done
}

cg_remove() {
	local d
	for d in "$@"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	for d in "$@"; do
		[ ! -d "$d" ] || { warn "cannot remove cgroup $d"; return 1; }
	done
}

# --- network -------------------------------------------------------------------

disable_ipv6() { # DEV: no link-local chatter from the test links
	local f=/proc/sys/net/ipv6/conf/$1/disable_ipv6
	[ -f "$f" ] && echo 1 >"$f"
	return 0
}

net_bridge_create() {
	ip link add "$BRIDGE" type bridge &&
		disable_ipv6 "$BRIDGE" &&
		ip addr add "$HOST_ADDR/24" dev "$BRIDGE" &&
		ip link set "$BRIDGE" up ||
		die "cannot create bridge $BRIDGE"
}

# net_node_create I: the namespace, its veth pair (eth0 inside, a bridge port
# outside), its address. No default route: a node reaches only the subnet.
net_node_create() {
	local ns veth
	ns=$(node_netns "$1")
	veth=$(node_veth "$1")
	{
		ip netns add "$ns" &&
			nsenter --net="/run/netns/$ns" sh -c 'for f in all default; do
				[ -f /proc/sys/net/ipv6/conf/$f/disable_ipv6 ] &&
				echo 1 >/proc/sys/net/ipv6/conf/$f/disable_ipv6; done; true' &&
			ip link add "$veth" type veth peer name eth0 netns "$ns" &&
			disable_ipv6 "$veth" &&
			ip link set "$veth" master "$BRIDGE" up &&
			ip -n "$ns" link set lo up &&
			ip -n "$ns" addr add "$(node_addr "$1")/24" dev eth0 &&
			ip -n "$ns" link set eth0 up
	} || die "cannot set up the network of n$1"
}

# nft_create: a table of our own. The bridge family sees every frame at the
# bridge ports, so a cut holds whether or not bridge-nf hands bridged IP to
# the inet hooks; a port in @cut neither sends nor receives, to the other
# nodes (forward) or the host (input, output).
nft_create() {
	nft -f - <<NFT || die "cannot create nft table bridge $NFT_TABLE"
table bridge $NFT_TABLE {
	set cut { type ifname; }
	chain forward { type filter hook forward priority -100; iifname @cut drop; oifname @cut drop; }
	chain input { type filter hook input priority -100; iifname @cut drop; }
	chain output { type filter hook output priority -100; oifname @cut drop; }
}
NFT
}

nft_set_cut() { # add|delete I
	nft "$1" element bridge "$NFT_TABLE" cut "{ \"$(node_veth "$2")\" }"
}

# --- mount namespaces ------------------------------------------------------------

# runtime_create: RUNTIME is bound onto itself and made private: a
# namespace file can only be bound where the bind does not propagate.
runtime_create() {
	mkdir -p "$RUNTIME" &&
		mount --bind "$RUNTIME" "$RUNTIME" &&
		mount --make-private "$RUNTIME" ||
		die "cannot prepare $RUNTIME"
}

# mnt_create I: a persistent mount namespace, made from inside the node's
# network namespace so that its fresh /sys shows the node's interfaces.
mnt_create() {
	local file
	file=$(node_mnt "$1")
	: >"$file"
	nsenter --net="/run/netns/$(node_netns "$1")" -- \
		unshare --mount="$file" --propagation private -- \
		"$CL_SELF" __mntns-init "$RUNTIME" ||
		die "cannot create the mount namespace of n$1"
}

# mntns_init STAGE-PARENT: runs inside a new (private) mount namespace:
#  - unmounts the namespace files it inherited (other nodes' mount
#    namespaces, everybody's /run/netns entries): holding them would keep
#    other instances' namespaces alive after they are deleted; an empty
#    /run/netns hides the host's names;
#  - mounts a sysfs of this network namespace on /sys, keeping what was
#    mounted below /sys (the cgroup hierarchies, which LXC needs).
mntns_init() {
	local stage mp sys_id k=0 moved=() children=()
	awk '{ split($0, h, " - "); split(h[2], p, " "); if (p[1] == "nsfs") { split(h[1], f, " "); print f[5] } }' \
		/proc/self/mountinfo | while read -r mp; do
		umount -l "$(printf '%b' "$mp")" 2>/dev/null
	done
	# The node starts with no named network namespaces (`ip` would trip
	# over the host's, now plain files).
	if [ -d /run/netns ]; then
		mount -t tmpfs -o mode=0755,size=1m cairn-netns /run/netns || return 1
	fi
	sys_id=$(awk '$5 == "/sys" { id = $1 } END { print id }' /proc/self/mountinfo)
	stage=$(mktemp -d "$1/stage.XXXXXX") || return 1
	mapfile -t children < <(awk -v s="$sys_id" '$2 == s { print $5 }' /proc/self/mountinfo)
	for mp in "${children[@]}"; do
		mkdir "$stage/$k" && mount --move "$mp" "$stage/$k" || return 1
		moved+=("$k:$mp")
		k=$((k + 1))
	done
	umount -l /sys && mount -t sysfs sysfs /sys || return 1
	for k in "${moved[@]}"; do
		mp=${k#*:}
		if [ -d "$mp" ]; then
			mount --move "$stage/${k%%:*}" "$mp" || return 1
		else
			umount -l "$stage/${k%%:*}"
		fi
		rmdir "$stage/${k%%:*}"
	done
	rmdir "$stage"
}

mnt_exists() {
	awk -v f="$(node_mnt "$1")" '$5 == f { found = 1 } END { exit !found }' /proc/self/mountinfo
}

mnt_drop() {
	local file
	file=$(node_mnt "$1")
	mnt_exists "$1" && umount "$file"
	rm -f "$file"
}

# --- running things on a node ---------------------------------------------------

# node_cmd I: sets NODE_CMD to the command line that enters node I's
# network and mount namespaces (in the caller's working directory, which
# the node's mount namespace, a copy of the host's, also has) with the
# instance's bin directory (the built cairn) first on PATH and CAIRN_SOCKET
# pointing at the node's agent. The cgroups are joined before, by pid.
node_cmd() {
	local wd=/
	[ -d "$PWD" ] && wd=$PWD
	NODE_CMD=(nsenter "--mount=$(node_mnt "$1")" "--net=/run/netns/$(node_netns "$1")"
		"--wd=$wd" -- env "PATH=$DIR/bin:$PATH" "CAIRN_SOCKET=$(node_sock "$1")"
		"CAIRN_NODE=n$1")
}

# node_run I CMD...: runs CMD on node I (a child of ours, in its cgroups and
# namespaces) and returns its status; 125 when it could not be placed there.
node_run() {
	local i=$1
	shift
	node_cmd "$i"
	(
		cg_join "$i" "$BASHPID" || exit 125
		exec "${NODE_CMD[@]}" "$@"
	)
}

agent_conf() {
	local d addr
	d=$(node_dir "$1")
	addr=$(node_addr "$1")
	mkdir -p "$d"
	{
		echo "# written by deploy/cluster for instance $TAG"
		echo "node_name = n$1"
		echo "data_dir = $d/data"
		echo "local_dir = $d/local"
		echo "run_dir = $d/run"
		echo "boot_id_file = $d/run/boot_id"
		echo "log_file = $d/cairnd.log"
		echo "log_level = $LOG_LEVEL"
		echo "address = $addr"
		echo "rpc_listen = $addr:$CL_PORT_RPC"
		echo "db_listen = $addr:$CL_PORT_DB"
		echo "api_listen = $addr:$CL_PORT_API"
		[ -n "$DB_LATENCY_MS" ] && echo "db_latency_ms = $DB_LATENCY_MS"
	} >"$d/cairnd.conf"
}

# agent_start I: starts the agent on node I; cairnd detaches once ready, so
# this returns when the agent is (or failed). Its early errors go to
# DIR/nI/start.log; stdin and stdout are not the caller's (a caller reading
# our output must not wait for the agent).
agent_start() {
	local d
	d=$(node_dir "$1")
	# The node's boot id: new at each boot (its run dir starts empty), the
	# same across restarts of the agent alone.
	if [ ! -s "$d/run/boot_id" ]; then
		mkdir -p "$d/run"
		cat /proc/sys/kernel/random/uuid >"$d/run/boot_id"
	fi
	node_run "$1" "$CAIRND" -c "$d/cairnd.conf" </dev/null >>"$d/start.log" 2>&1 ||
		{ warn "the agent of n$1 did not start: $(tail -n 3 "$d/start.log")"; return 1; }
}

# --- readiness ---------------------------------------------------------------------

# wait_mode: how to tell that a node sees the cluster. `cairn cluster status
# --output json` (Proxmox's /cluster/status list) when the built cairn has
# it, else `cairn cluster nodes`. CAIRN_CLUSTER_WAIT=status|nodes forces one.
wait_mode() {
	if [ -n "${CAIRN_CLUSTER_WAIT:-}" ]; then
		echo "$CAIRN_CLUSTER_WAIT"
	elif "$CAIRN" help 2>/dev/null | grep -q 'cluster status' &&
		"$CAIRN" help 2>/dev/null | grep -q -- '--output json'; then
		echo status
	else
		echo nodes
	fi
}

# node_sees I EXPECTED-ONLINE...: node I's agent answers and, as it sees
# the cluster: with `status`, the cluster is quorate, has $NODES members and
# exactly the EXPECTED nodes are online; with `nodes` (no online state to
# read yet), every member n1..nN is listed.
node_sees() {
	local i=$1 out want k
	shift
	if [ "$WAIT_MODE" = status ]; then
		out=$(node_run "$i" cairn --output json cluster status 2>/dev/null) || return 1
		want=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
		jq -e --argjson n "$NODES" --argjson want "$want" '
			(if type == "object" then (.entries // .data // []) else . end) as $l
			| ($l | map(select(.type == "cluster"))[0]) as $c
			| ($l | map(select(.type == "node" and (.online == true or .online == 1)) | .name) | sort) as $on
			| $c != null and ($c.quorate == true or $c.quorate == 1)
			  and $c.nodes == $n and $on == ($want | sort)' <<<"$out" >/dev/null
	else
		out=$(node_run "$i" cairn cluster nodes 2>/dev/null) || return 1
		for ((k = 1; k <= NODES; k++)); do
			awk -v n="n$k" '$1 == n { f = 1 } END { exit !f }' <<<"$out" || return 1
		done
	fi
}

node_is_off() { [ -e "$RUNTIME/n$1.off" ]; }
node_is_cut() { [ -e "$RUNTIME/n$1.cut" ]; }

# cluster_ready: the one definition of "up": every node that is powered on
# sees all of those online (and, with status, the cluster quorate).
cluster_ready() {
	local i on=()
	for ((i = 1; i <= NODES; i++)); do
		node_is_off "$i" || on+=("n$i")
	done
	for ((i = 1; i <= NODES; i++)); do
		node_is_off "$i" || node_sees "$i" "${on[@]}" || return 1
	done
}

# wait_until SECONDS CMD...: polls CMD every 200 ms.
wait_until() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# --- tearing down ---------------------------------------------------------------------

# instance_remove [keep]: removes everything of instance TAG, from the state
# file when there is one and by name in any case, so it also clears what a
# killed run left (processes, namespaces, bridge, veths, nft table, mounts,
# cgroups). The directory goes too, unless "keep", and only when it carries
# our marker.
instance_remove() {
	local keep=${1:-} cgs=() pid f ns dev mp old_dir
	# without a state file (a run killed before writing it), the directory
	# it would have used
	old_dir=${CAIRN_CLUSTER_DIR:-/tmp/cairn-cluster-$TAG}
	state_load && old_dir=$DIR
	mapfile -t cgs < <(cg_find_all)

	# a Ceph cluster of `up --ceph` (deploy/ceph stops its own daemons)
	if [ -f "$old_dir/.cairn-cluster" ] && [ -d "$old_dir/ceph" ]; then
		"$CL_TOP/deploy/ceph" --dir "$old_dir/ceph" down >/dev/null 2>&1 ||
			warn "deploy/ceph down failed for $old_dir/ceph"
	fi
	# the agents first, politely, so their logs end cleanly...
	if [ -f "$old_dir/.cairn-cluster" ]; then
		for f in "$old_dir"/n*/run/cairnd.pid; do
			pid=$(cat "$f" 2>/dev/null) && pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
		done
		for f in "$old_dir"/n*/run/cairnd.pid; do
			pid=$(cat "$f" 2>/dev/null) || continue
			wait_until 3 eval '! pid_alive "$pid"' || break
		done
	fi
	# ...then everything in the cgroups, and whatever else is in the netns
	if [ "${#cgs[@]}" -gt 0 ]; then
		cg_kill "${cgs[@]}"
	fi
	for ns in $(ip netns list | awk '{ print $1 }' | grep -E "^cairn-$TAG-n[0-9]+$"); do
		# shellcheck disable=SC2046
		kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
		ip netns del "$ns" 2>/dev/null || warn "cannot delete netns $ns"
	done

	# mounts under RUNTIME (node mount namespaces, the private bind itself)
	awk -v r="$RUNTIME" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" || warn "cannot unmount $mp"
	done
	rm -rf "$RUNTIME"

	for dev in $(ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' |
		grep -E "^cv-$TAG-[0-9]+$"); do
		ip link del "$dev" 2>/dev/null
	done
	ip link show "$BRIDGE" >/dev/null 2>&1 && { ip link del "$BRIDGE" || warn "cannot delete bridge $BRIDGE"; }
	nft list table bridge "$NFT_TABLE" >/dev/null 2>&1 &&
		{ nft delete table bridge "$NFT_TABLE" || warn "cannot delete nft table $NFT_TABLE"; }
	if [ "${#cgs[@]}" -gt 0 ]; then
		cg_remove "${cgs[@]}"
	fi
	if [ "$keep" != keep ] && [ -f "$old_dir/.cairn-cluster" ] && [ ! -L "$old_dir" ]; then
		rm -rf "$old_dir"
	fi
	return 0
}
