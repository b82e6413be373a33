#!/usr/bin/env bash
# A volume's whole life on a dir storage shared by three agents, each step
# through a different node's REST API: alloc, write, snapshot, rollback (the
# data comes back), grow, template, linked and full clones, free; every
# node sees the same volumes. Bad input and conflicting operations are
# refused with nothing changed.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init volumes
lo_cluster 3 voltest
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"
mkdir -p "$dir/shared"
V=cairn-volume

req 1 POST /storage --data-urlencode storage=sh --data-urlencode type=dir \
	--data-urlencode "path=$dir/shared" --data-urlencode content=images \
	--data-urlencode shared=1 >/dev/null
check "a dir storage 'sh' shared by n1, n2 and n3 ($(code))" code_is 200

# qemu-io on the volume's file: write or check a pattern at offset 0.
img() { echo "$dir/shared/images/$1"; }
pattern_write() { qemu-io -f qcow2 -c "write -P $2 0 1M" "$(img "$1")" >/dev/null 2>&1; }
pattern_is() { # the whole first MiB holds byte $2
	local out
	out=$(qemu-io -f "${3:-qcow2}" -c "read -P $2 0 1M" "$(img "$1")" 2>&1)
	grep -q 'read 1048576/1048576' <<<"$out" && ! grep -qi 'fail' <<<"$out"
}
not_pattern() { ! pattern_is "$@"; }
status_has() { grep -qi -- "$1" <<<"$(status_line)"; }
# failed CODE TEXT: the last call answered CODE ("4xx": any 400-class,
# "err": any error) and its status line says TEXT.
failed() {
	case $1 in
	4xx) [ "$(code)" -ge 400 ] && [ "$(code)" -lt 500 ] ;;
	err) [ "$(code)" -ge 400 ] ;;
	*) code_is "$1" ;;
	esac && status_has "$2"
}
on_all() { # on_all PATH JQ: the JQ holds for GET PATH on every node
	local i
	for i in 1 2 3; do
		req "$i" GET "/nodes/n$i$1" >/dev/null
		jq_true "$2" "$dir/body" || return 1
	done
}

vol=sh:100/vm-100-disk-0.qcow2
json=$(req 1 POST /nodes/n1/storage/sh/content --data-urlencode vmid=100 \
	--data-urlencode size=64M --data-urlencode format=qcow2)
check "n1 allocates $vol ($json)" jq_true ".data == \"$vol\"" <<<"$json"
check "every node lists it, 64 MiB" \
	on_all /storage/sh/content "[.data[] | select(.volid == \"$vol\" and .size == 67108864)] | length == 1"
pattern_write 100/vm-100-disk-0.qcow2 0xaa
check "data written into it (pattern 0xaa)" pattern_is 100/vm-100-disk-0.qcow2 0xaa

req 2 POST /nodes/n2/storage/sh/$V/snapshot --data-urlencode "volume=$vol" \
	--data-urlencode snapname=before >/dev/null
check "n2 snapshots it as 'before' ($(code))" code_is 200
req 3 POST /nodes/n3/storage/sh/$V/snapshot --data-urlencode "volume=$vol" \
	--data-urlencode snapname=before >/dev/null
check "a second 'before' from n3 is refused ($(status_line))" \
	status_has 'already has a snapshot'
check "... not with 200 ($(code))" test "$(code)" -ge 400
check "every node lists the snapshot" \
	on_all "/storage/sh/$V/snapshot?volume=$(esc "$vol")" '[.data[].name] == ["before"]'
pattern_write 100/vm-100-disk-0.qcow2 0x55
check "data overwritten (0x55)" pattern_is 100/vm-100-disk-0.qcow2 0x55
check "... and the check sees that it is not 0xaa any more" not_pattern 100/vm-100-disk-0.qcow2 0xaa
out=$(req_task 3 POST /nodes/n3/storage/sh/$V/rollback --data-urlencode "volume=100/vm-100-disk-0.qcow2" \
	--data-urlencode snapname=before)
check "n3 rolls back to 'before' (a task), the volume named without its storage ($out)" test "$out" = OK
check "... and the data written before the snapshot is back" pattern_is 100/vm-100-disk-0.qcow2 0xaa
out=$(req_task 1 POST /nodes/n1/storage/sh/$V/rollback --data-urlencode "volume=$vol" \
	--data-urlencode snapname=nosuch)
check "rollback to an unknown snapshot fails naming it ($out)" \
	bash -c "[ '$out' != OK ] && grep -q nosuch <<<'$out'"

req 1 PUT /nodes/n1/storage/sh/$V/resize --data-urlencode "volume=$vol" --data-urlencode size=+64M >/dev/null
check "n1 grows it by 64M ($(code))" code_is 200
check "every node sees 128 MiB" \
	on_all /storage/sh/content "[.data[] | select(.volid == \"$vol\" and .size == 134217728)] | length == 1"
req 2 PUT /nodes/n2/storage/sh/$V/resize --data-urlencode "volume=$vol" --data-urlencode size=256M >/dev/null
check "n2 grows it to 256M ($(code))" code_is 200
req 3 PUT /nodes/n3/storage/sh/$V/resize --data-urlencode "volume=$vol" --data-urlencode size=100M >/dev/null
check "shrinking is 400-class, saying why ($(status_line))" \
	failed 400 shrinking
json=$(req 3 GET "/nodes/n3/storage/sh/content/$(esc "$vol")")
check "... and the size is unchanged" jq_true '.data.size == 268435456' <<<"$json"

req 2 DELETE "/nodes/n2/storage/sh/$V/snapshot?volume=$(esc "$vol")&snapname=before" >/dev/null
check "n2 deletes the snapshot ($(code))" code_is 200
json=$(req 1 POST /nodes/n1/storage/sh/$V/template --data-urlencode "volume=$vol")
tmpl=sh:100/base-100-disk-0.qcow2
check "n1 turns it into a template's volume ($json)" jq_true ".data == \"$tmpl\"" <<<"$json"
out=$(req_clone 2 POST /nodes/n2/storage/sh/$V/clone --data-urlencode "volume=$tmpl" --data-urlencode vmid=101)
linked=sh:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2
check "n2 makes a linked clone for guest 101 (a task: $out)" test "$out" = "$linked"
check "... whose data is the template's" pattern_is 101/vm-101-disk-0.qcow2 0xaa
out=$(req_clone 3 POST /nodes/n3/storage/sh/$V/clone --data-urlencode "volume=$tmpl" \
	--data-urlencode vmid=102 --data-urlencode full=1)
check "n3 makes a full clone for guest 102 ($out)" test "$out" = sh:102/vm-102-disk-0.qcow2
check "... with the data" pattern_is 102/vm-102-disk-0.qcow2 0xaa
check "... in an independent file (no backing file)" \
	bash -c "! qemu-img info '$(img 102/vm-102-disk-0.qcow2)' | grep -q 'backing file'"
req 1 POST /nodes/n1/storage/sh/$V/clone --data-urlencode "volume=$linked" --data-urlencode vmid=103 >/dev/null
check "a linked clone of a volume that is no template's is 400 ($(jq -c .errors "$dir/body"))" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.volume | test(\"template\")' '$dir/body' >/dev/null"
check "every node lists the base, the linked and the full clone" \
	on_all /storage/sh/content "[.data[].volid] | sort == [\"$tmpl\", \"$linked\", \"sh:102/vm-102-disk-0.qcow2\"]"

# ---- bad input, nothing changed
bad() { # bad WHAT METHOD OP ARGS...: 400 naming the parameter
	local what=$1 m=$2 op=$3 param=$4
	shift 4
	req 1 "$m" "/nodes/n1/storage/sh/$V/$op" "$@" >/dev/null
	check "$what is 400 naming $param ($(jq -c .errors "$dir/body"))" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.\"$param\"' '$dir/body' >/dev/null"
}
bad "a snapshot name with a slash" POST snapshot snapname --data-urlencode "volume=$linked" --data-urlencode snapname=a/b
bad "a snapshot name of 41 characters" POST snapshot snapname --data-urlencode "volume=$linked" --data-urlencode "snapname=a$(printf 'b%.0s' {1..40})"
bad "a volume of another storage" POST snapshot volume --data-urlencode volume=local:100/vm-100-disk-0.qcow2 --data-urlencode snapname=x
bad "a volume name with '..'" POST snapshot volume --data-urlencode "volume=sh:100/../etc/passwd" --data-urlencode snapname=x
bad "a size of 0" PUT resize size --data-urlencode "volume=$linked" --data-urlencode size=0
bad "a size that is no size" PUT resize size --data-urlencode "volume=$linked" --data-urlencode size=12Q
bad "a clone without vmid" POST clone vmid --data-urlencode "volume=$tmpl"
bad "a clone for vmid 99" POST clone vmid --data-urlencode "volume=$tmpl" --data-urlencode vmid=99
bad "a linked clone from a snapshot" POST clone snapname --data-urlencode "volume=$tmpl" --data-urlencode vmid=104 --data-urlencode snapname=x
req 1 POST /nodes/n1/storage/nosuch/$V/snapshot --data-urlencode "volume=nosuch:100/vm-100-disk-0.qcow2" --data-urlencode snapname=x >/dev/null
check "an unknown storage is 404 naming it ($(status_line))" \
	failed 404 nosuch
req 1 POST /nodes/n1/storage/sh/$V/snapshot --data-urlencode "volume=sh:100/vm-100-disk-7.qcow2" --data-urlencode snapname=x >/dev/null
check "a volume that does not exist fails naming it ($(code): $(status_line))" \
	failed err vm-100-disk-7
check "... and nothing changed" \
	on_all /storage/sh/content "[.data[].volid] | sort == [\"$tmpl\", \"$linked\", \"sh:102/vm-102-disk-0.qcow2\"]"
check "... and no snapshot was made" \
	on_all "/storage/sh/$V/snapshot?volume=$(esc "$linked")" '.data == []'

# ---- who sees which volume (Proxmox's check_volume_access): a user with
# Datastore.Audit on the storage and VM.Config.Disk on guest 102 only
req 1 POST /access/users --data-urlencode userid=disk@pve >/dev/null
req 1 PUT /access/acl --data-urlencode path=/storage/sh --data-urlencode users=disk@pve \
	--data-urlencode roles=PVEAuditor >/dev/null
req 1 PUT /access/acl --data-urlencode path=/vms/102 --data-urlencode users=disk@pve \
	--data-urlencode roles=PVEVMAdmin >/dev/null
json=$(req 1 POST /access/users/disk@pve/token/t --data-urlencode privsep=0)
DISK="PVEAPIToken=disk@pve!t=$(jq -r .data.value <<<"$json")"
json=$(AUTH=$DISK req 2 GET /nodes/n2/storage/sh/content)
check "disk@pve lists only guest 102's volume ($(jq -c '[.data[].volid]' <<<"$json"))" \
	jq_true '[.data[].volid] == ["sh:102/vm-102-disk-0.qcow2"]' <<<"$json"
AUTH=$DISK req 3 GET "/nodes/n3/storage/sh/content/$(esc "$linked")" >/dev/null
check "... and may not read guest 101's ($(status_line))" code_is 403
AUTH=$DISK req 3 GET "/nodes/n3/storage/sh/content/$(esc sh:102/vm-102-disk-0.qcow2)" >/dev/null
check "... but reads 102's ($(code))" code_is 200
req 1 PUT /access/acl --data-urlencode path=/storage/sh --data-urlencode users=disk@pve \
	--data-urlencode roles=PVEDatastoreUser >/dev/null
AUTH=$DISK req 2 POST /nodes/n2/storage/sh/$V/snapshot --data-urlencode "volume=$linked" --data-urlencode snapname=x >/dev/null
check "with Datastore.AllocateSpace, disk@pve still may not snapshot guest 101's volume ($(status_line))" code_is 403
AUTH=$DISK req 2 POST /nodes/n2/storage/sh/$V/snapshot --data-urlencode volume=sh:102/vm-102-disk-0.qcow2 --data-urlencode snapname=x >/dev/null
check "... but may snapshot guest 102's ($(code))" code_is 200
req 1 POST /access/roles --data-urlencode roleid=DiskOnly --data-urlencode privs=VM.Config.Disk >/dev/null
req 1 PUT /access/acl --data-urlencode path=/vms/102 --data-urlencode users=disk@pve --data-urlencode roles=DiskOnly >/dev/null
req 1 PUT /access/acl --data-urlencode path=/vms/102 --data-urlencode users=disk@pve \
	--data-urlencode roles=PVEVMAdmin --data-urlencode delete=1 >/dev/null
AUTH=$DISK req 2 POST /nodes/n2/storage/sh/$V/rollback --data-urlencode volume=sh:102/vm-102-disk-0.qcow2 --data-urlencode snapname=x >/dev/null
check "with VM.Config.Disk alone on guest 102, a rollback needs VM.Snapshot.Rollback ($(status_line))" \
	bash -c "[ '$(code)' = 403 ] && grep -q 'VM.Snapshot.Rollback' '$dir/headers'"
AUTH=$DISK req 2 PUT /nodes/n2/storage/sh/$V/resize --data-urlencode volume=sh:102/vm-102-disk-0.qcow2 --data-urlencode size=+1M >/dev/null
check "... while a resize goes through ($(code))" code_is 200

# ---- one operation at a time on a volume: a full clone of a large raw
# image is slow enough to overlap with a second operation on it.
json=$(req 1 POST /nodes/n1/storage/sh/content --data-urlencode vmid=200 --data-urlencode size=4G --data-urlencode format=raw)
big=$(jq -r .data <<<"$json")
dd if=/dev/urandom of="$(img 200/vm-200-disk-0.raw)" bs=1M count=512 conv=notrunc status=none
running() { req 1 GET "/nodes/n1/tasks/$(esc "$1")/status" >/dev/null; jq_true '.data.status == "running"' "$dir/body"; }
upid=$(req 1 POST /nodes/n1/storage/sh/$V/clone --data-urlencode "volume=$big" --data-urlencode vmid=201 --data-urlencode full=1 | jq -r .data)
check "a full clone answers a volclone task at once ($upid)" bash -c "[[ '$upid' =~ :volclone:: ]]"
busy=no
for _ in $(seq 1 100); do
	req 1 PUT /nodes/n1/storage/sh/$V/resize --data-urlencode "volume=$big" --data-urlencode size=+1M >/dev/null
	if grep -q busy "$dir/headers"; then busy=yes; break; fi
	running "$upid" || break
	sleep 0.05
done
check "while the task clones $big, a resize of it is refused as busy" test "$busy" = yes
check "... and the clone ends OK" test "$(task_wait 1 "$upid")" = OK
req 1 GET "/nodes/n1/tasks/$(esc "$upid")/log" >/dev/null
check "... its log says what it made" jq_true '[.data[].t] | index("created volume '"'"'sh:201/vm-201-disk-0.raw'"'"'") != null' "$dir/body"
upid=$(req 1 POST /nodes/n1/storage/sh/$V/clone --data-urlencode "volume=$big" --data-urlencode vmid=202 --data-urlencode full=1 | jq -r .data)
req 2 DELETE "/nodes/n1/tasks/$(esc "$upid")" >/dev/null
out=$(task_wait 2 "$upid")
check "an aborted full clone stops, saying who ($out)" bash -c "grep -q 'aborted by root@pam!t' <<<'$out'"
check "... and leaves no file" test ! -e "$(img 202/vm-202-disk-0.raw)"
out=$(req_task 2 DELETE "/nodes/n2/storage/sh/content/$(esc sh:201/vm-201-disk-0.raw)")
check "n2 frees the clone ($out)" test "$out" = OK

# ---- free, from different nodes
for v in "$linked:2" "sh:102/vm-102-disk-0.qcow2:3" "$tmpl:1" "$big:2"; do
	n=${v##*:}
	v=${v%:*}
	out=$(req_task "$n" DELETE "/nodes/n$n/storage/sh/content/$(esc "$v")")
	check "n$n frees $v ($out)" test "$out" = OK
done
check "every node lists the storage empty" on_all /storage/sh/content '.data == []'
check "... and no file is left in it" \
	bash -c "[ -z \"\$(find '$dir/shared/images' -type f)\" ]"

done_testing
