#!/usr/bin/env bash
# Storage definitions and node status on a 3-node loopback cluster: PUT
# /storage runs POST's shared check (n2 in a mount namespace of its own,
# with a tmpfs over one directory: needs root), updates the rbd key in the
# same write and refuses to delete required options; rbd settings past
# librbd's limits are 400s; GET /nodes/{node}/storage lists disabled
# storages (enabled 0), filters by storage, content, enabled and target,
# and answers rbd rows from the 5-second poll without waiting on a dead
# monitor; download-url runs on a pool of its own (volume work goes on
# beside five slow downloads) and DELETE of its task kills curl and
# removes the temporary file; a task's owner aborts it without
# Sys.Modify; `cairn storage set --keyring-file` and `--keyring -`. With
# root and Ceph (deploy/ceph), an rbd row of a real pool goes inactive
# with a wrong key and active again with the right one.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
is_root=no
[ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && is_root=yes
skip() { ok "$1 # SKIP $2"; }

lo_init defs
REQ_MAX_TIME=30
mkdir -p "$dir/notshared" "$dir/shared" "$dir/shared2"

# n2 sees its own $dir/notshared (a tmpfs in its mount namespace) when we
# are root; the others see the host's.
for i in 1 2 3; do lo_conf "$i" "test_tasks = 1"; done
start_node 1
if [ "$is_root" = yes ]; then
	unshare --mount --propagation private bash -c \
		'mount -t tmpfs cairn-not-shared "$2" && exec "$0" -c "$1"' \
		"$CAIRND" "$dir/n2.conf" "$dir/notshared" 2>>"$dir/n2.start.err"
else
	start_node 2
fi
start_node 3
cairn_on 1 cluster create defstest >/dev/null
for i in 2 3; do
	cairn_on "$i" cluster join "$(cairn_on 1 cluster join-token)" >/dev/null
done
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"
ROOT_AUTH=$AUTH
check_files() { ls -A "$@" 2>/dev/null | grep -c cairn-shared; }

# ---- PUT runs POST's shared check
req 1 POST /storage --data-urlencode storage=ns1 --data-urlencode type=dir \
	--data-urlencode "path=$dir/notshared" --data-urlencode content=images,iso >/dev/null
check "a dir storage that is not shared ($(code))" code_is 200
req 1 POST /storage --data-urlencode storage=sh2 --data-urlencode type=dir \
	--data-urlencode "path=$dir/shared" --data-urlencode shared=1 >/dev/null
check "a shared dir storage every node sees ($(code))" code_is 200
if [ "$is_root" = yes ]; then
	req 1 PUT /storage/ns1 --data-urlencode shared=1 >/dev/null
	check "PUT shared=1 on a directory n2 sees differently is 400 naming n2 ($(code): $(jq -c .errors "$dir/body"))" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.shared | test(\"node n2\")' '$dir/body' >/dev/null"
	json=$(req 3 GET /storage/ns1)
	check "... and ns1 stays unshared" jq_true '.data | has("shared") | not' <<<"$json"
else
	skip "PUT shared=1 on a directory n2 sees differently is 400 naming n2" "needs root"
	skip "... and ns1 stays unshared" "needs root"
fi
req 2 PUT /storage/sh2 --data-urlencode "path=$dir/shared2" >/dev/null
check "a dir storage's path is fixed, as in Proxmox ($(code): $(jq -c .errors "$dir/body"))" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.path | test(\"fixed\")' '$dir/body' >/dev/null"
req 2 PUT /storage/sh2 --data-urlencode "path=$dir/shared" >/dev/null
check "... giving the same path is fine ($(code))" code_is 200
json=$(req 1 GET /storage/sh2)
check "... sh2 keeps its path, still shared" \
	jq_true ".data.path == \"$dir/shared\" and .data.shared == 1" <<<"$json"
check "no check file is left behind" \
	test "$(check_files "$dir/shared" "$dir/shared2" "$dir/notshared")" = 0

# ---- rbd keyring on PUT, required options
key1=AQBzKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx==
key2=AQBnewyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy==
secret() { cairn_on "${2:-1}" db query "SELECT value FROM cluster_secrets WHERE name = 'storage_keyring:$1'" | tail -n 1; }
deadmon=127.0.$net.99
req 1 POST /storage --data-urlencode storage=rb1 --data-urlencode type=rbd \
	--data-urlencode pool=rbd --data-urlencode "monhost=$deadmon" --data-urlencode "keyring=$key1" >/dev/null
check "an rbd storage whose monitor is not there ($(code))" code_is 200
check "... its key is the cluster secret storage_keyring:rb1" test "$(secret rb1)" = "$key1"
req 2 PUT /storage/rb1 --data-urlencode "keyring=$(printf '[client.admin]\n\tkey = %s\n' "$key2")" >/dev/null
check "PUT keyring= (a keyring file's text) is accepted ($(code))" code_is 200
check "... and replaces the secret" test "$(secret rb1 3)" = "$key2"
json=$(req 3 GET /storage/rb1)
check "... which is never shown back" \
	bash -c "! grep -q -- '${key2:0:20}' <<<'$json' && jq -e '.data | has(\"keyring\") | not' <<<'$json' >/dev/null"
req 2 PUT /storage/rb1 --data-urlencode keyring=short >/dev/null
check "PUT keyring=short is 400 naming keyring" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.keyring' '$dir/body' >/dev/null"
check "... and the secret is unchanged" test "$(secret rb1)" = "$key2"
for opt in monhost keyring; do
	req 1 PUT /storage/rb1 --data-urlencode "delete=$opt" >/dev/null
	check "PUT delete=$opt on rbd is 400 naming $opt ($(jq -c .errors "$dir/body"))" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.delete | test(\"$opt\")' '$dir/body' >/dev/null"
done
check "... and the key is still there" test "$(secret rb1)" = "$key2"
req 1 PUT /storage/ns1 --data-urlencode delete=path >/dev/null
check "PUT delete=path on dir is 400 naming path" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.delete | test(\"path\")' '$dir/body' >/dev/null"
req 1 PUT /storage/rb1 --data-urlencode delete=pool --data-urlencode pool=x >/dev/null
check "setting and deleting one option at once is 400" code_is 400
req 1 PUT /storage/rb1 --data-urlencode username=cairn >/dev/null
req 1 PUT /storage/rb1 --data-urlencode delete=username >/dev/null
json=$(req 1 GET /storage/rb1)
check "deleting an optional one works ($(jq -c .data <<<"$json"))" \
	jq_true ".data.monhost == \"$deadmon\" and (.data | has(\"username\") | not)" <<<"$json"
req 2 PUT /storage/ns1 --data-urlencode keyring="$key1" >/dev/null
check "a key for a dir storage is 400" code_is 400

# ---- the CLI reads the key from a file or stdin
key3=AQBfileyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy==
printf '[client.admin]\n\tkey = %s\n' "$key3" >"$dir/rb.keyring"
cairn_on 2 storage set rb1 --keyring-file "$dir/rb.keyring" >/dev/null
check "cairn storage set --keyring-file FILE stores the file's key" test "$(secret rb1)" = "$key3"
printf '%s\n' "$key1" | cairn_on 3 storage set rb1 --keyring - >/dev/null
check "cairn storage set --keyring - reads it from stdin" test "$(secret rb1)" = "$key1"
cairn_on 1 storage add rb2 --type rbd --pool rbd --monhost "$deadmon" --keyring-file "$dir/rb.keyring" >/dev/null
check "cairn storage add --keyring-file FILE" test "$(secret rb2)" = "$key3"
cairn_on 1 storage set rb1 --keyring-file "$dir/nope" >/dev/null 2>"$dir/err"
rc=$?
check "a missing keyring file fails before any call (exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'keyring' '$dir/err'"
cairn_on 1 storage remove rb2 >/dev/null

# ---- rbd settings within librbd's limits
long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }
rbd_post() { # rbd_post NAME=VALUE...: over pool, monhost and keyring
	local -A p=([pool]=rbd [monhost]=$deadmon [keyring]=$key1)
	local a args=()
	for a in "$@"; do p[${a%%=*}]=${a#*=}; done
	for a in "${!p[@]}"; do args+=(--data-urlencode "$a=${p[$a]}"); done
	req 1 POST /storage --data-urlencode storage=rbx --data-urlencode type=rbd "${args[@]}" >/dev/null
}
for bad in "pool=$(long 96)" "pool=a/b" "pool=-x" "monhost=$(long 1024 1)" \
	"namespace=$(long 96)" "username=$(long 64)" "username=client admin"; do
	name=${bad%%=*}
	rbd_post "$bad"
	check "POST rbd ${bad:0:40}... is a 400 on $name ($(jq -c ".errors.$name" "$dir/body" 2>/dev/null))" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.$name' '$dir/body' >/dev/null"
	req 2 PUT /storage/rb1 --data-urlencode "$bad" >/dev/null
	check "PUT ${bad:0:40}... is a 400 on $name" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.$name' '$dir/body' >/dev/null"
done
rbd_post "pool=$(long 95)" "username=$(long 63 u)" "namespace=$(long 95 n)"
check "the longest names librbd takes are accepted ($(code))" code_is 200
req 1 DELETE /storage/rbx >/dev/null
json=$(req 1 GET /storage)
check "... and no refused storage exists" \
	jq_true '[.data[].storage] | sort == ["local", "ns1", "rb1", "sh2"]' <<<"$json"

# ---- GET /nodes/{node}/storage
req 1 PUT /storage/ns1 --data-urlencode disable=1 >/dev/null
check "PUT disable=1 on ns1 ($(code))" code_is 200
json=$(req 2 GET /nodes/n1/storage)
check "GET /nodes/n1/storage lists the disabled ns1 with enabled 0, active 0 ($(jq -c '[.data[] | {storage, enabled, active}]' <<<"$json"))" \
	jq_true '[.data[] | select(.storage == "ns1" and .enabled == 0 and .active == 0 and .total == 0 and .used == 0 and .avail == 0 and (has("used_fraction") | not))] | length == 1' <<<"$json"
check "... local is enabled and active, with sizes" \
	jq_true '[.data[] | select(.storage == "local" and .enabled == 1 and .active == 1 and .total > 0 and (.used_fraction | type) == "number")] | length == 1' <<<"$json"
check "... rb1 is shared (rbd), enabled, and inactive (no monitor)" \
	jq_true '[.data[] | select(.storage == "rb1" and .type == "rbd" and .shared == 1 and .enabled == 1 and .active == 0)] | length == 1' <<<"$json"
json=$(req 1 GET '/nodes/n1/storage?enabled=1')
check "enabled=1 leaves ns1 out" jq_true '[.data[].storage] | sort == ["local", "rb1", "sh2"]' <<<"$json"
json=$(req 1 GET '/nodes/n1/storage?content=iso')
check "content=iso: the enabled ones with iso ($(jq -c '[.data[].storage]' <<<"$json"))" \
	jq_true '[.data[].storage] == ["local"]' <<<"$json"
json=$(req 1 GET '/nodes/n1/storage?storage=sh2')
check "storage=sh2: that row only" jq_true '[.data[].storage] == ["sh2"] and .data[0].shared == 1' <<<"$json"
req 1 GET '/nodes/n1/storage?storage=nope' >/dev/null
check "storage=nope is 400" code_is 400
json=$(req 3 GET '/nodes/n1/storage?target=n2')
check "target=n2: the shared ones both nodes have ($(jq -c '[.data[].storage]' <<<"$json"))" \
	jq_true '[.data[].storage] | sort == ["rb1", "sh2"]' <<<"$json"
# A monitor that accepts and never answers: a connection to it waits
# for librados' 5 s timeout.
mute_port=$((base + 41))
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    held.append(s.accept()[0])
' "$mute_port" &
mute_pid=$!
trap 'kill "$mute_pid" 2>/dev/null; lo_cleanup' EXIT
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$mute_port" 2>/dev/null
# a well-formed cephx key (type, creation time, length, 16 bytes), so
# that librados goes as far as the monitor
cephx=$(python3 -c 'import base64, os, struct, time; print(base64.b64encode(struct.pack("<HIIH", 1, int(time.time()), 0, 16) + os.urandom(16)).decode())')
req 1 POST /storage --data-urlencode storage=rbmute --data-urlencode type=rbd \
	--data-urlencode pool=rbd --data-urlencode "monhost=127.0.0.1:$mute_port" --data-urlencode "keyring=$cephx" >/dev/null
slowest=0
for i in 1 2 3; do
	t0=$(date +%s%N)
	req 1 GET /nodes/n1/storage >/dev/null
	ms=$(ms_since "$t0")
	[ "$ms" -gt "$slowest" ] && slowest=$ms
done
check "GET /nodes/n1/storage does not wait on a monitor that never answers (slowest of 3: $slowest ms < 1500)" \
	test "$slowest" -lt 1500
check "... whose row says inactive ($(jq -c '.data[] | select(.storage == "rbmute")' "$dir/body"))" \
	jq_true '[.data[] | select(.storage == "rbmute" and .active == 0 and .enabled == 1)] | length == 1' "$dir/body"
req 1 DELETE /storage/rbmute >/dev/null
kill "$mute_pid" 2>/dev/null
wait "$mute_pid" 2>/dev/null
req 1 PUT /storage/ns1 --data-urlencode disable=0 >/dev/null

# ---- download-url: its own pool, and aborted
port=$((base + 40))
cat >"$dir/slow.py" <<'PY'
import http.server, sys, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * 1024)
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
PY
python3 "$dir/slow.py" "$port" &
http_pid=$!
trap 'kill "$http_pid" 2>/dev/null; lo_cleanup' EXIT
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
iso=$dir/n1/local/template/iso
download() {
	req 1 POST /nodes/n1/storage/local/download-url --data-urlencode content=iso \
		--data-urlencode "url=http://127.0.0.1:$port/$1" --data-urlencode "filename=$1" | jq -r .data
}
status_is() { # status_is UPID JQ
	req 2 GET "/nodes/n1/tasks/$(esc "$1")/status" >/dev/null
	jq_true "$2" "$dir/body"
}
ups=()
for i in 1 2 3 4 5; do ups+=("$(download "slow$i.iso")"); done
check "five downloads of a slow URL start (${ups[0]})" \
	bash -c "[[ '${ups[0]}' =~ :download:: ]] && [[ '${ups[4]}' =~ :download:: ]]"
curls() { pgrep -af curl | grep -c "127.0.0.1:$port/"; }
check "... the first one is running and writing its temporary file" \
	wait_for 10 bash -c "ls -A '$iso' | grep -q '^\.tmp-.*-slow1.iso$'"
two_curls() { [ "$(curls)" = 2 ]; }
check "... two curls run (the transfer pool's two threads)" wait_for 5 two_curls
sleep 0.5
check "... and no more: the other three wait for a thread ($(curls))" two_curls
t0=$(date +%s%N)
json=$(req 1 GET /nodes/n1/storage/local/content)
ms=$(ms_since "$t0")
check "volume work goes on beside them: a content listing in $ms ms ($(code))" \
	test "$(code)" = 200 -a "$ms" -lt 2000
json=$(req 1 POST /nodes/n1/storage/local/content --data-urlencode vmid=100 --data-urlencode size=1M)
check "... and an allocation ($json)" jq_true '.data == "local:100/vm-100-disk-0.raw"' <<<"$json"
t0=$(date +%s%N)
req 3 DELETE "/nodes/n1/tasks/$(esc "${ups[0]}")" >/dev/null
check "DELETE of the running download's task ($(code))" code_is 200
check "... it stops with 'aborted by root@pam!t'" \
	wait_for 5 status_is "${ups[0]}" '.data.status == "stopped" and .data.exitstatus == "aborted by root@pam!t"'
ms=$(ms_since "$t0")
check "... within a few seconds ($ms ms)" test "$ms" -lt 5000
check "... its temporary file is gone, and no slow1.iso was made" \
	bash -c "! ls -A '$iso' | grep -q 'slow1.iso'"
json=$(req 2 GET "/nodes/n1/tasks/$(esc "${ups[0]}")/log")
check "... its log says who aborted it" \
	jq_true '[.data[].t] | any(test("received abort from root@pam!t")) and .[-1] == "TASK ERROR: aborted by root@pam!t"' <<<"$json"
for u in "${ups[@]:1}"; do req 1 DELETE "/nodes/n1/tasks/$(esc "$u")" >/dev/null; done
all_stopped() {
	local u
	for u in "${ups[@]:1}"; do
		status_is "$u" '.data.status == "stopped" and (.data.exitstatus | test("aborted by"))' || return 1
	done
}
check "the other four (running or waiting for a thread) stop too, aborted" wait_for 10 all_stopped
check "... leaving no temporary file" bash -c "! ls -A '$iso' | grep -q '^\.tmp-'"
check "... and no curl" test "$(curls)" = 0

# ---- the owner of a task may abort it without Sys.Modify
req 1 POST /access/roles --data-urlencode roleid=Fetcher \
	--data-urlencode privs=Datastore.AllocateTemplate,Datastore.Audit,Sys.AccessNetwork >/dev/null
for u in fetch peek; do
	req 1 POST /access/users --data-urlencode "userid=$u@pve" >/dev/null
done
req 1 PUT /access/acl --data-urlencode path=/storage/local --data-urlencode users=fetch@pve --data-urlencode roles=Fetcher >/dev/null
req 1 PUT /access/acl --data-urlencode path=/nodes/n1 --data-urlencode users=fetch@pve --data-urlencode roles=Fetcher >/dev/null
req 1 PUT /access/acl --data-urlencode path=/ --data-urlencode users=peek@pve --data-urlencode roles=PVEAuditor >/dev/null
FETCH="PVEAPIToken=fetch@pve!t=$(req 1 POST /access/users/fetch@pve/token/t --data-urlencode privsep=0 | jq -r .data.value)"
PEEK="PVEAPIToken=peek@pve!t=$(req 1 POST /access/users/peek@pve/token/t --data-urlencode privsep=0 | jq -r .data.value)"
AUTH=$FETCH
mine=$(download mine.iso)
check "fetch@pve (no Sys.Modify) starts a download ($mine)" \
	bash -c "[[ '$mine' =~ :download::fetch@pve\!t:$ ]]"
check "... which runs" wait_for 10 status_is "$mine" '.data.status == "running"'
AUTH=$PEEK
req 2 DELETE "/nodes/n1/tasks/$(esc "$mine")" >/dev/null
check "peek@pve (Sys.Audit, no Sys.Modify) may not abort it ($(code): $(status_line))" code_is 403
AUTH=$FETCH
req 2 DELETE "/nodes/n1/tasks/$(esc "$mine")" >/dev/null
check "its owner may ($(code): $(status_line))" code_is 200
check "... it stops, aborted by fetch@pve!t" \
	wait_for 5 status_is "$mine" '.data.status == "stopped" and .data.exitstatus == "aborted by fetch@pve!t"'
AUTH=$ROOT_AUTH
kill "$http_pid" 2>/dev/null
wait "$http_pid" 2>/dev/null

# ---- with Ceph: the rbd row follows the poll and the key
if [ "$is_root" != yes ] || ! command -v ceph-mon >/dev/null; then
	for name in "deploy/ceph up" "a real rbd storage's row: active, sizes, shared" \
		"a wrong key makes it inactive at the next poll" "the right key again, active again"; do
		skip "$name" "needs root and Ceph (deploy/install-deps)"
	done
	done_testing
	exit
fi
ceph_dir=$dir/ceph
ceph() { "$top/deploy/ceph" --dir "$ceph_dir" "$@"; }
trap 'ceph down >/dev/null 2>&1; lo_cleanup' EXIT
if ! ceph up >"$dir/ceph-up.log" 2>&1; then
	not_ok "deploy/ceph up" "$(tail -n 5 "$dir/ceph-up.log")"
	done_testing
	exit 1
fi
ok "deploy/ceph up"
monhost=$(sed -n 's/^mon_host = //p' "$ceph_dir/ceph.conf")
req 1 POST /storage --data-urlencode storage=ceph --data-urlencode type=rbd \
	--data-urlencode pool=rbd --data-urlencode "monhost=$monhost" \
	--data-urlencode "keyring=$(cat "$ceph_dir/ceph.client.admin.keyring")" >/dev/null
row_is() { # row_is NODE JQ: the ceph row of GET /nodes/NODE/storage
	req 1 GET "/nodes/$1/storage?storage=ceph" >/dev/null
	jq_true ".data[0] | $2" "$dir/body"
}
check "a real rbd storage's row: active, sizes, shared" \
	wait_for 30 row_is n2 '.active == 1 and .total > 0 and .avail > 0 and .shared == 1 and .enabled == 1'
req 1 PUT /storage/ceph --data-urlencode "keyring=$key1" >/dev/null
check "a wrong key makes it inactive at the next poll" wait_for 30 row_is n3 '.active == 0 and .total == 0'
cairn_on 2 storage set ceph --keyring-file "$ceph_dir/ceph.client.admin.keyring" >/dev/null
check "the right key again, active again" wait_for 30 row_is n3 '.active == 1 and .total > 0'

done_testing
