#!/usr/bin/env bash
# Storage-level fencing on Ceph RBD, with the nodes in network namespaces
# (deploy/cluster up --ceph): each node records the address its RADOS
# client shows; a guest-like client on n2 (QEMU's rbd driver, qemu-io) holds
# an image open and writes; blocklisting n2 through n1's API makes those
# writes fail while n1 works on; removing the entry lets n2 write again; a
# node fenced while it was away removes its own entry when it comes back.
# Only addresses of the harness's own test subnet are contacted.
set -u
source "$(dirname "$0")/tap.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v ceph-mon >/dev/null; then
	echo "1..0 # SKIP needs root and Ceph (deploy/install-deps)"
	exit 0
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
export CAIRN_BUILDDIR
tag=f$(($$ % 10000000))
dir=/tmp/cairn-cluster-$tag
unset CAIRN_CLUSTER_DIR CAIRN_CLUSTER_WAIT
cl() { "$top/deploy/cluster" --name "$tag" "$@"; }
io_pid=""
cleanup() {
	[ -z "$io_pid" ] || kill "$io_pid" 2>/dev/null
	exec 3>&- 2>/dev/null
	cl down ${CAIRN_KEEP:+--keep} >/dev/null 2>&1
	rm -rf "/tmp/cairn-fence-$tag"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
work=/tmp/cairn-fence-$tag
mkdir -p "$work"

if ! cl up -n 3 --ceph >"$work/up.log" 2>&1; then
	not_ok "deploy/cluster up -n 3 --ceph" "$(tail -n 5 "$work/up.log")"
	done_testing
	exit 1
fi
ok "deploy/cluster up -n 3 --ceph"
eval "$(cl env)"
addr() { eval "echo \$CAIRN_ADDR_N${1#n}"; }
url() { eval "echo \$CAIRN_URL_N${1#n}"; }
# rq NODE METHOD PATH [CURL ARGS]: a REST call with the admin token; body
# on stdout and in $work/body, code in $work/code, status line in
# $work/status.
rq() {
	local n=$1 m=$2 p=$3
	shift 3
	curl -sS --max-time 30 --cacert "$CAIRN_CA" -H "Authorization: $CAIRN_TOKEN" \
		-X "$m" -D "$work/headers" -o "$work/body" -w '%{http_code}' "$@" \
		"$(url "$n")/api2/json$p" >"$work/code" 2>/dev/null
	head -n 1 "$work/headers" 2>/dev/null | tr -d '\r' >"$work/status"
	cat "$work/body"
}
code() { cat "$work/code"; }
code_is() { [ "$(code)" = "$1" ]; }
jq_true() { jq -e "$@" >/dev/null; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
F=/storage/ceph/cairn-fence
image="rbd:rbd/vm-400-disk-0:conf=$dir/ceph/ceph.conf:id=admin:keyring=$dir/ceph/ceph.client.admin.keyring"

recorded() {
	rq 1 GET "/nodes/n1$F" >/dev/null
	jq_true --arg a1 "$(addr n1)" --arg a2 "$(addr n2)" --arg a3 "$(addr n3)" \
		'[.data[] | [.node, .addr, .fenced]] == [["n1", $a1, 0], ["n2", $a2, 0], ["n3", $a3, 0]]' "$work/body"
}
check "every node records its RADOS client address (its own IP on the test bridge)" \
	wait_for 40 recorded
json=$(rq 1 POST /nodes/n1/storage/ceph/content --data-urlencode vmid=400 --data-urlencode size=64M)
check "n1 allocates ceph:vm-400-disk-0 ($json)" jq_true '.data == "ceph:vm-400-disk-0"' <<<"$json"

# A guest on n2: qemu-io with the image open, fed commands through a fifo.
mkfifo "$work/io.in"
cl exec n2 qemu-io -t none -f raw "$image" <"$work/io.in" >"$work/io.out" 2>&1 &
io_pid=$!
exec 3>"$work/io.in"
io() { echo "$1" >&3; }
wrote() { [ "$(grep -c 'wrote 4096/4096' "$work/io.out")" -ge "$1" ]; }
failed_write() { grep -qiE 'write failed|error' "$work/io.out"; }
io "write -P 0x11 0 4k"
check "the client on n2 writes to its open image" wait_for 20 wrote 1
held() {
	rq 3 GET "/nodes/n3/storage/ceph/cairn-volume/lockers?volume=ceph:vm-400-disk-0" >/dev/null
	jq_true '[.data[] | select(.node == "n2" and .exclusive == 1)] | length == 1' "$work/body"
}
check "n3 tells that n2 holds the image's exclusive lock" wait_for 10 held
echo "# lockers: $(jq -c .data "$work/body")"

t0=$(date +%s%N)
json=$(rq 1 POST "/nodes/n1$F" --data-urlencode target=n2)
check "n1 fences n2 on ceph in $(ms_since "$t0") ms ($json)" \
	jq_true --arg a "$(addr n2)" '.data == {"node": "n2", "addr": $a, "fenced": 1}' <<<"$json"
rq 1 POST "/nodes/n1$F" --data-urlencode target=n1 >/dev/null
check "a node does not fence itself ($(cat "$work/status"))" code_is 400
# An OSD refuses the fenced client once it has the new OSD map: at once
# for an OSD that already has it, else when it hears of it (from a peer,
# or from a client that has it, such as a guest restarted elsewhere). n2
# keeps writing, as a guest would, until its writes fail.
t0=$(date +%s%N)
writes=0
until failed_write || [ "$(ms_since "$t0")" -gt 30000 ]; do
	io "write -P 0x22 0 4k"
	writes=$((writes + 1))
	sleep 0.2
done
ms=$(ms_since "$t0")
check "n2's writes to its open image fail after the fence (after $ms ms, $writes writes sent)" failed_write
echo "# $(grep -iE 'write failed' "$work/io.out" | head -n 1)"
n_ok=$(grep -c 'wrote 4096/4096' "$work/io.out")
io "write -P 0x22 0 4k"
sleep 1
check "... and so does every write after that ($(grep -c 'wrote 4096/4096' "$work/io.out") succeeded in all)" \
	test "$(grep -c 'wrote 4096/4096' "$work/io.out")" -eq "$n_ok"
json=$(rq 1 POST /nodes/n1/storage/ceph/content --data-urlencode vmid=401 --data-urlencode size=16M)
check "n1 still works on the pool ($json)" jq_true '.data == "ceph:vm-401-disk-0"' <<<"$json"
rq 2 GET /nodes/n2/storage/ceph/content >/dev/null
check "n2's agent cannot use the pool either ($(cat "$work/status"))" bash -c "[ '$(code)' != 200 ]"
json=$(rq 3 GET "/nodes/n3$F")
check "the fence is recorded, with who did it" \
	jq_true '.data[] | select(.node == "n2") | .fenced == 1 and .fenced_by == "root@pam!admin" and .fenced_at > 0' <<<"$json"
kill "$io_pid" 2>/dev/null
wait "$io_pid" 2>/dev/null
io_pid=""
exec 3>&-

json=$(rq 3 DELETE "/nodes/n3$F?target=n2")
check "n3 removes n2 from the blocklist ($json)" jq_true '.data.fenced == 0' <<<"$json"
fresh_write() {
	cl exec n2 qemu-io -t none -f raw "$image" -c "write -P 0x33 0 4k" -c "read -P 0x33 0 4k" 2>&1 |
		grep -q 'read 4096/4096'
}
check "a client on n2 writes and reads the image again" wait_for 30 fresh_write
back() { rq 2 GET /nodes/n2/storage/ceph/content >/dev/null; code_is 200; }
check "n2's agent uses the pool again" wait_for 30 back

# ---- an agent that restarts on a host that did not boot stays fenced
# (its guests may still run)
rq 1 POST "/nodes/n1$F" --data-urlencode target=n2 >/dev/null
check "n1 fences n2 again ($(code))" code_is 200
pid2=$(cat "$dir/n2/run/cairnd.pid")
kill -KILL "$pid2"
gone() { [ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]; }
wait_for 10 gone "$pid2"
if cl start n2 >"$work/start1.log" 2>&1; then ok "n2's agent alone restarts"; else not_ok "n2's agent alone restarts" "$(tail -n 3 "$work/start1.log")"; fi
said() { grep -q 'stays fenced until the entry is removed' "$dir/n2/cairnd.log"; }
check "... it sees it is fenced and says it stays so" wait_for 30 said
fence_row() { rq 1 GET "/nodes/n1$F" >/dev/null; jq_true "$1" "$work/body"; }
check "... and the row still says fenced" fence_row '[.data[] | select(.node == "n2" and .fenced == 1)] | length == 1'
rq 3 DELETE "/nodes/n3$F?target=n2" >/dev/null
check "n3 removes the fence ($(code))" code_is 200

# ---- fenced while away: n2 removes its own entry when its host boots again
cl power-off n2 >/dev/null 2>&1
rq 1 POST "/nodes/n1$F" --data-urlencode target=n2 >/dev/null
check "n1 fences n2 while n2 is powered off ($(code))" code_is 200
if cl start n2 >"$work/start.log" 2>&1; then ok "n2 boots again"; else not_ok "n2 boots again" "$(tail -n 3 "$work/start.log")"; fi
check "n2 removes its own fence once it is back (its host booted)" \
	wait_for 40 fence_row '[.data[] | select(.node == "n2" and .fenced == 0)] | length == 1'
check "... and a client on n2 writes again" wait_for 30 fresh_write

# ---- bad input
rq 1 POST "/nodes/n1$F" >/dev/null
check "fencing without a target is 400 ($(cat "$work/status"))" code_is 400
rq 1 POST "/nodes/n1$F" --data-urlencode target=n9 >/dev/null
check "fencing a node that never used the storage fails naming it ($(cat "$work/status"))" \
	bash -c "[ '$(code)' -ge 400 ] && grep -q n9 '$work/status'"
rq 1 GET "/nodes/n1/storage/local/cairn-fence" >/dev/null
check "fencing is for rbd storages ($(cat "$work/status"))" \
	bash -c "[ '$(code)' = 400 ] && grep -q rbd '$work/status'"

done_testing
