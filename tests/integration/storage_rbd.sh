#!/usr/bin/env bash
# Ceph RBD storage through the REST API, against a real throw-away Ceph
# cluster (deploy/ceph: 1 mon, 1 mgr, 3 OSDs) and 3 agents on loopback:
# volumes allocated, listed, read and freed from different nodes, every
# node's figures in /cluster/resources, and with the monitor down an error
# within 10 s while a DB write from the same agent still commits quickly.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v ceph-mon >/dev/null; then
	echo "1..0 # SKIP needs root and Ceph (deploy/install-deps)"
	exit 0
fi
top=$(cd "$(dirname "$0")/../.." && pwd)

lo_init rbd
REQ_MAX_TIME=30
ceph_dir=$dir/ceph
ceph() { "$top/deploy/ceph" --dir "$ceph_dir" "$@"; }
trap 'ceph down >/dev/null 2>&1; lo_cleanup' EXIT

t0=$(date +%s%N)
if ceph up >"$dir/ceph-up.log" 2>&1; then
	ok "deploy/ceph up: HEALTH_OK in $(ms_since "$t0") ms"
else
	not_ok "deploy/ceph up" "$(tail -n 5 "$dir/ceph-up.log")"
	done_testing
	exit 1
fi
monhost=$(sed -n 's/^mon_host = //p' "$ceph_dir/ceph.conf")
key=$(sed -n 's/^[[:space:]]*key = //p' "$ceph_dir/ceph.client.admin.keyring")

lo_cluster 3 rbdtest
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"

req 2 POST /storage --data-urlencode storage=ceph --data-urlencode type=rbd \
	--data-urlencode pool=rbd --data-urlencode "monhost=$monhost" \
	--data-urlencode "keyring=$(cat "$ceph_dir/ceph.client.admin.keyring")" >/dev/null
check "POST /storage type=rbd with a keyring file's text ($(code))" code_is 200
json=$(req 3 GET /storage/ceph)
check "the key is never shown back ($(jq -c .data <<<"$json"))" \
	bash -c "! grep -q -- '${key:0:20}' <<<'$json' && jq -e '.data.pool == \"rbd\" and (has(\"keyring\") | not)' <<<'$json' >/dev/null"

json=$(req 1 POST /nodes/n1/storage/ceph/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-100-disk-0 --data-urlencode size=1G)
check "n1 allocates ceph:vm-100-disk-0 ($json)" jq_true '.data == "ceph:vm-100-disk-0"' <<<"$json"
json=$(req 2 GET /nodes/n2/storage/ceph/content)
check "n2 lists it with its size" \
	jq_true '[.data[] | select(.volid == "ceph:vm-100-disk-0" and .size == 1073741824 and .vmid == 100 and .format == "raw")] | length == 1' <<<"$json"
json=$(req 1 GET /nodes/n3/storage/ceph/content/ceph:vm-100-disk-0)
check "n3 reads its size" jq_true '.data.size == 1073741824' <<<"$json"
json=$(req 3 POST /nodes/n3/storage/ceph/content --data-urlencode vmid=100 --data-urlencode size=64M)
check "n3 allocates the next free name ($json)" jq_true '.data == "ceph:vm-100-disk-1"' <<<"$json"
req 3 POST /nodes/n3/storage/ceph/content --data-urlencode vmid=100 --data-urlencode size=64M --data-urlencode format=qcow2 >/dev/null
check "qcow2 on rbd is 400" code_is 400
out=$(req_task 2 DELETE /nodes/n2/storage/ceph/content/ceph:vm-100-disk-0)
check "n2 frees vm-100-disk-0 ($out)" test "$out" = OK
json=$(req 1 GET '/nodes/n1/storage/ceph/content?vmid=100')
check "... and only vm-100-disk-1 is left" \
	jq_true '[.data[].volid] == ["ceph:vm-100-disk-1"]' <<<"$json"
res_ceph() {
	req "$1" GET '/cluster/resources?type=storage' >/dev/null
	jq_true '[.data[] | select(.storage == "ceph" and .status == "available" and .maxdisk > 0 and .plugintype == "rbd")] | length == 3' "$dir/body"
}
check "/cluster/resources lists ceph on every node with sizes" wait_for 20 res_ceph 1

# ---- a volume's life on rbd, each step on another node; the data is
# read and written by QEMU's own rbd driver (qemu-io), as a guest would.
V=cairn-volume
qio() { qemu-io -f raw "rbd:rbd/$1:conf=$ceph_dir/ceph.conf:id=admin:keyring=$ceph_dir/ceph.client.admin.keyring" -c "$2" 2>&1; }
pattern_write() { qio "$1" "write -P $2 0 1M" | grep -q 'wrote 1048576/1048576'; }
pattern_is() { local out; out=$(qio "$1" "read -P $2 0 1M"); grep -q 'read 1048576/1048576' <<<"$out" && ! grep -qi fail <<<"$out"; }
not_pattern() { ! pattern_is "$@"; }
status_has() { grep -qi -- "$1" <<<"$(status_line)"; }
json=$(req 1 POST /nodes/n1/storage/ceph/content --data-urlencode vmid=300 --data-urlencode size=64M)
check "n1 allocates ceph:vm-300-disk-0 ($json)" jq_true '.data == "ceph:vm-300-disk-0"' <<<"$json"
check "qemu-io writes 0xaa into it" pattern_write vm-300-disk-0 0xaa
req 2 POST /nodes/n2/storage/ceph/$V/snapshot --data-urlencode volume=ceph:vm-300-disk-0 --data-urlencode snapname=s1 >/dev/null
check "n2 snapshots it ($(code))" code_is 200
json=$(req 3 GET "/nodes/n3/storage/ceph/$V/snapshot?volume=vm-300-disk-0")
check "n3 lists the snapshot with its size ($(jq -c .data <<<"$json"))" \
	jq_true '.data == [{"name": "s1", "size": 67108864, "protected": 0}]' <<<"$json"
check "qemu-io overwrites it with 0x55" pattern_write vm-300-disk-0 0x55
check "... and reads 0x55, not 0xaa" not_pattern vm-300-disk-0 0xaa
req 3 PUT /nodes/n3/storage/ceph/$V/resize --data-urlencode volume=ceph:vm-300-disk-0 --data-urlencode size=+64M >/dev/null
check "n3 grows it by 64M ($(code))" code_is 200
json=$(req 1 GET /nodes/n1/storage/ceph/content/ceph:vm-300-disk-0)
check "n1 sees 128 MiB" jq_true '.data.size == 134217728' <<<"$json"
req 2 PUT /nodes/n2/storage/ceph/$V/resize --data-urlencode volume=ceph:vm-300-disk-0 --data-urlencode size=32M >/dev/null
check "shrinking is 400 ($(status_line))" bash -c "[ '$(code)' = 400 ]"
out=$(req_task 1 POST /nodes/n1/storage/ceph/$V/rollback --data-urlencode volume=ceph:vm-300-disk-0 --data-urlencode snapname=s1)
check "n1 rolls back to s1 (a task: $out)" test "$out" = OK
check "... the data of s1 is back (0xaa)" pattern_is vm-300-disk-0 0xaa
json=$(req 2 GET /nodes/n2/storage/ceph/content/ceph:vm-300-disk-0)
check "... and so is its size (64 MiB, as n2 sees it)" jq_true '.data.size == 67108864' <<<"$json"
out=$(req_clone 2 POST /nodes/n2/storage/ceph/$V/clone --data-urlencode volume=ceph:vm-300-disk-0 \
	--data-urlencode vmid=301 --data-urlencode full=1 --data-urlencode snapname=s1)
check "n2 makes a full clone of s1 for guest 301 (a task: $out)" test "$out" = ceph:vm-301-disk-0
check "... holding s1's data" pattern_is vm-301-disk-0 0xaa
req 3 DELETE "/nodes/n3/storage/ceph/$V/snapshot?volume=ceph:vm-300-disk-0&snapname=s1" >/dev/null
check "n3 deletes the snapshot ($(code))" code_is 200
json=$(req 3 POST /nodes/n3/storage/ceph/$V/template --data-urlencode volume=ceph:vm-300-disk-0)
check "n3 makes it a template's volume ($json)" jq_true '.data == "ceph:base-300-disk-0"' <<<"$json"
out=$(req_clone 1 POST /nodes/n1/storage/ceph/$V/clone --data-urlencode volume=ceph:base-300-disk-0 --data-urlencode vmid=302)
check "n1 makes a linked clone for guest 302 ($out)" test "$out" = ceph:base-300-disk-0/vm-302-disk-0
check "... whose data is the template's" pattern_is vm-302-disk-0 0xaa
check "writing to the clone" pattern_write vm-302-disk-0 0x11
check "... leaves the template as it was" pattern_is base-300-disk-0 0xaa
json=$(req 2 GET /nodes/n2/storage/ceph/content/ceph:base-300-disk-0/vm-302-disk-0)
check "n2 reads the linked clone by its volid ($(jq -c .data <<<"$json"))" jq_true '.data.size == 67108864' <<<"$json"
out=$(req_task 2 DELETE /nodes/n2/storage/ceph/content/ceph:base-300-disk-0)
check "freeing the template while a clone hangs from it fails, naming the clone ($out)" \
	bash -c "grep -q vm-302-disk-0 <<<'$out'"
for v in base-300-disk-0/vm-302-disk-0:2 base-300-disk-0:3 vm-301-disk-0:1; do
	n=${v##*:}
	v=${v%:*}
	out=$(req_task "$n" DELETE "/nodes/n$n/storage/ceph/content/ceph:$v")
	check "n$n frees ceph:$v ($out)" test "$out" = OK
done
json=$(req 3 GET '/nodes/n3/storage/ceph/content')
check "only ceph:vm-100-disk-1 is left ($(jq -c '[.data[].volid]' <<<"$json"))" \
	jq_true '[.data[].volid] == ["ceph:vm-100-disk-1"]' <<<"$json"

# ---- fencing needs an address that stands for one node: on loopback
# every agent is 127.0.0.1 to the monitor, so none is recorded
json=$(req 1 GET /nodes/n1/storage/ceph/cairn-fence)
check "no node records a loopback RADOS client address ($json)" jq_true '.data == []' <<<"$json"
req 1 POST /nodes/n1/storage/ceph/cairn-fence --data-urlencode target=n2 >/dev/null
check "... so fencing n2 is refused, saying why ($(status_line))" \
	bash -c "[ '$(code)' = 404 ] && grep -q 'has not recorded' '$dir/headers'"
said_why() { grep -q 'cannot stand for it alone' "$dir/n2/cairnd.log"; }
check "... and the agents say why in their logs" wait_for 20 said_why

# ---- the monitor goes away
ceph stop-mon >/dev/null 2>&1
t0=$(date +%s%N)
req 1 GET /nodes/n1/storage/ceph/content >/dev/null
ms=$(ms_since "$t0")
check "with the monitor down, the API answers an error within 10 s ($ms ms, $(code): $(status_line))" \
	test "$(code)" -ge 500 -a "$ms" -le 10000
for i in 1 2 3 4 5 6 7 8; do
	req 1 GET /nodes/n1/storage/ceph/content >/dev/null 2>&1 &
done
sleep 0.5
t0=$(date +%s%N)
cairn_on 1 db query "INSERT INTO guests (vmid, type, node, config, digest) VALUES (900, 'qemu', 'n1', '{}', 'x')" >/dev/null
ms=$(ms_since "$t0")
check "... and with 8 storage calls in flight a DB write from the same agent commits in $ms ms (< 100 ms, CLI start-up included)" \
	test "$ms" -lt 100
wait
ceph start-mon >/dev/null 2>&1
back() { req 2 GET /nodes/n2/storage/ceph/content >/dev/null; code_is 200; }
check "once the monitor is back, the storage answers again" wait_for 30 back

done_testing
