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
req 2 DELETE /nodes/n2/storage/ceph/content/ceph:vm-100-disk-0 >/dev/null
check "n2 frees vm-100-disk-0" code_is 200
json=$(req 1 GET '/nodes/n1/storage/ceph/content?vmid=100')
check "... and only vm-100-disk-1 is left" \
	jq_true '[.data[].volid] == ["ceph:vm-100-disk-1"]' <<<"$json"
res_ceph() {
	req "$1" GET '/cluster/resources?type=storage' >/dev/null
	jq_true '[.data[] | select(.storage == "ceph" and .status == "available" and .maxdisk > 0 and .plugintype == "rbd")] | length == 3' "$dir/body"
}
check "/cluster/resources lists ceph on every node with sizes" wait_for 20 res_ceph 1

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
