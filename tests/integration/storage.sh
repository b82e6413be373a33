#!/usr/bin/env bash
# Storage over the REST API on a 3-node loopback cluster: the `local` dir
# storage on every node from cluster create, definitions (/storage) with
# digests, a dir storage shared by all three nodes (a directory they all
# see), volumes allocated, listed, read and freed from any node,
# /cluster/resources?type=storage with sizes, and bad input refused with
# nothing changed.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init storage

lo_cluster 3 storagetest
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"
mkdir -p "$dir/shared"

# ---- definitions
json=$(req 2 GET /storage)
check "GET /storage: 'local' exists from cluster create ($(jq -c '.data[0]' <<<"$json"))" \
	jq_true '.data[] | select(.storage == "local") | .type == "dir" and (.content | split(",") | index("images") and index("iso")) and (.digest | type) == "string"' <<<"$json"
req 1 POST /storage --data-urlencode storage=shared1 --data-urlencode type=dir \
	--data-urlencode "path=$dir/shared" --data-urlencode content=images,iso --data-urlencode shared=1 >/dev/null
check "POST /storage makes a shared dir storage ($(code))" code_is 200
req 3 POST /storage --data-urlencode storage=shared1 --data-urlencode type=dir --data-urlencode "path=$dir/x" >/dev/null
check "a second storage 'shared1' is refused: already defined ($(status_line))" \
	bash -c "[ '$(code)' != 200 ] && grep -q 'already defined' <<<'$(status_line)'"
for bad in 'storage=1abc' 'storage=a:b' 'storage=x/y' 'storage=-x' 'storage=a,b'; do
	req 1 POST /storage --data-urlencode "$bad" --data-urlencode type=dir --data-urlencode path=/tmp >/dev/null
	check "POST /storage $bad is 400 naming storage" \
		bash -c "[ '$(code)' = 400 ] && jq -e '.errors.storage' '$dir/body' >/dev/null"
done
req 1 POST /storage --data-urlencode storage=trav --data-urlencode type=dir --data-urlencode path=/tmp/../etc >/dev/null
check "a path with '..' is 400" code_is 400
req 1 POST /storage --data-urlencode storage=cx --data-urlencode type=dir --data-urlencode path=/tmp --data-urlencode content=images,bogus >/dev/null
check "an unknown content type is 400 naming it" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.content | test(\"bogus\")' '$dir/body' >/dev/null"
req 1 POST /storage --data-urlencode storage=rb --data-urlencode type=rbd --data-urlencode pool=rbd --data-urlencode monhost=127.0.0.1 --data-urlencode keyring=AQBzKxxxxxxxxxxxxxxxxxxxxxxxxxxxx== --data-urlencode content=iso >/dev/null
check "rbd storage for iso is 400" code_is 400
json=$(req 1 GET /storage)
check "... and none of the refused ones exists" \
	jq_true '[.data[].storage] | sort == ["local", "shared1"]' <<<"$json"

digest=$(req 2 GET /storage/shared1 | jq -r .data.digest)
req 2 PUT /storage/shared1 --data-urlencode content=images,iso,snippets --data-urlencode "digest=$digest" >/dev/null
check "PUT /storage/shared1 with the digest read" code_is 200
req 3 PUT /storage/shared1 --data-urlencode content=images --data-urlencode "digest=$digest" >/dev/null
check "PUT with a stale digest is refused (Proxmox's wording: $(status_line))" \
	bash -c "grep -q 'detected modified configuration' <<<'$(status_line)'"

# ---- node status and volumes
json=$(req 1 GET /nodes/n2/storage)
check "GET /nodes/n2/storage lists local and shared1 with sizes ($(jq -c '[.data[] | {storage, active}]' <<<"$json"))" \
	jq_true '(.data | length) == 2 and all(.data[]; .enabled == 1 and (.storage == "shared1" and .active == 1 and .total > 0 and .avail > 0 and .shared == 1 or .storage == "local"))' <<<"$json"
json=$(req 1 POST /nodes/n2/storage/shared1/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-100-disk-0 --data-urlencode size=1G --data-urlencode format=qcow2)
check "POST .../content allocates a volume and answers the volid ($json)" \
	jq_true '.data == "shared1:100/vm-100-disk-0.qcow2"' <<<"$json"
check "... a qcow2 file in the shared directory" \
	bash -c "qemu-img info '$dir/shared/images/100/vm-100-disk-0.qcow2' | grep -q 'virtual size: 1 GiB'"
json=$(req 3 GET /nodes/n3/storage/shared1/content)
check "n3 lists it too (the directory is shared): Proxmox's row keys ($(jq -c '.data[0]' <<<"$json"))" \
	jq_true '.data[0] | .volid == "shared1:100/vm-100-disk-0.qcow2" and .format == "qcow2" and .size == 1073741824 and .vmid == 100 and .content == "images" and (.ctime | type) == "number"' <<<"$json"
json=$(req 1 GET "/nodes/n3/storage/shared1/content/$(esc 'shared1:100/vm-100-disk-0.qcow2')")
check "GET .../content/{volume} (escaped) gives size and format" \
	jq_true '.data.size == 1073741824 and .data.format == "qcow2"' <<<"$json"
json=$(req 1 GET "/nodes/n3/storage/shared1/content/100/vm-100-disk-0.qcow2")
check "... and with the name raw in the path" code_is 200
json=$(req 2 POST /nodes/n1/storage/local/content --data-urlencode vmid=101 \
	--data-urlencode filename=vm-101-disk-0.raw --data-urlencode size=4096)
check "a raw volume on n1's local (size in KiB) ($json)" \
	jq_true '.data == "local:101/vm-101-disk-0.raw"' <<<"$json"
check "... lives in n1's local_dir" test -f "$dir/n1/local/images/101/vm-101-disk-0.raw"
req 1 POST /nodes/n2/storage/shared1/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-100-disk-0 --data-urlencode size=1G --data-urlencode format=qcow2 >/dev/null
check "allocating an existing volume again is refused ($(code))" test "$(code)" != 200
req 1 POST /nodes/n2/storage/shared1/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-200-disk-0 --data-urlencode size=1G >/dev/null
check "another guest's volume name is 400" code_is 400
req 1 POST /nodes/n2/storage/shared1/content --data-urlencode vmid=100 \
	--data-urlencode filename=../../etc/passwd --data-urlencode size=1G >/dev/null
check "a name with a path is 400" code_is 400
req 1 POST /nodes/n2/storage/shared1/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-100-disk-9 --data-urlencode size=0 >/dev/null
check "size 0 is 400" code_is 400
req 1 POST /nodes/n2/storage/nope/content --data-urlencode vmid=100 \
	--data-urlencode filename=vm-100-disk-9 --data-urlencode size=1G >/dev/null
line=$(status_line)
check "an unknown storage is 404 naming it ($line)" \
	test "$(code)" = 404 -a "${line#*storage \'nope\' does not exist}" != "$line"
json=$(req 1 GET /nodes/n2/storage/shared1/content)
check "... nothing was made by the refused calls" \
	jq_true '(.data | length) == 1' <<<"$json"
upid=$(req 3 DELETE "/nodes/n1/storage/shared1/content/$(esc 'shared1:100/vm-100-disk-0.qcow2')" | jq -r .data)
check "DELETE .../content/{volume} from another node answers an imgdel task, as Proxmox ($upid)" \
	bash -c "[[ '$upid' =~ ^UPID:n1:.*:imgdel::root@pam!t:$ ]]"
check "... which ends OK" test "$(task_wait 3 "$upid")" = OK
check "... the file is gone" test ! -e "$dir/shared/images/100/vm-100-disk-0.qcow2"
out=$(req_task 3 DELETE "/nodes/n1/storage/shared1/content/$(esc 'shared1:100/vm-100-disk-0.qcow2')")
check "freeing it again fails, naming it ($out)" \
	bash -c "[ '$out' != OK ] && grep -q 'vm-100-disk-0' <<<'$out'"

# ---- the CLI
out=$(cairn_on 2 storage list)
check "cairn storage list shows local and shared1" \
	bash -c "grep -q '^local ' <<<'$out' && grep -q '^shared1 ' <<<'$out'"
out=$(cairn_on 3 --output json storage alloc shared1 102 64M --format qcow2)
check "cairn storage alloc picks the next free name ($out)" \
	test "$out" = '"shared1:102/vm-102-disk-0.qcow2"'
out=$(cairn_on 1 storage content shared1 --vmid 102)
check "cairn storage content lists it (from another node)" \
	grep -q 'shared1:102/vm-102-disk-0.qcow2 *qcow2 *67108864' <<<"$out"
cairn_on 2 storage free shared1:102/vm-102-disk-0.qcow2 >/dev/null
check "cairn storage free frees it" test ! -e "$dir/shared/images/102/vm-102-disk-0.qcow2"
out=$(cairn_on 3 storage status)
check "cairn storage status: this node's storages, active" \
	bash -c "grep -q '^shared1 *dir *1 ' <<<'$out' && grep -q '^local *dir *1 ' <<<'$out'"
cairn_on 1 storage add bad1 --type dir --path relative >/dev/null 2>"$dir/err"
rc=$?
check "cairn storage add with a bad path fails, naming it (exit $rc: $(tail -n 1 "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'path:' '$dir/err'"

# ---- uploads and downloads (tasks)
task_ends() {
	local n=$1 upid=$2
	req "$n" GET "/nodes/n1/tasks/$(esc "$upid")/status" >/dev/null
	jq_true '.data.status == "stopped"' "$dir/body"
}
head -c 300000 /dev/urandom >"$dir/img.iso"
sum=$(sha256sum "$dir/img.iso" | cut -d' ' -f1)
upid=$(req 2 POST /nodes/n1/storage/local/upload -F content=iso \
	-F "checksum=$sum" -F checksum-algorithm=sha256 \
	-F "filename=@$dir/img.iso;filename=test.iso" | jq -r .data)
check "POST .../upload (multipart, through n2) answers a UPID ($upid)" \
	bash -c "[[ '$upid' =~ ^UPID:n1:.*:imgcopy::root@pam!t:$ ]]"
check "the upload task ends" wait_for 10 task_ends 3 "$upid"
check "... OK, its checksum verified" jq_true '.data.exitstatus == "OK"' "$dir/body"
check "... and the file is in n1's local iso dir, byte for byte" \
	cmp -s "$dir/img.iso" "$dir/n1/local/template/iso/test.iso"
json=$(req 3 GET '/nodes/n1/storage/local/content?content=iso')
check "it is listed as local:iso/test.iso" \
	jq_true '[.data[] | select(.volid == "local:iso/test.iso" and .size == 300000 and .content == "iso")] | length == 1' <<<"$json"
upid=$(req 1 POST /nodes/n1/storage/local/upload -F content=iso \
	-F checksum=0000 -F checksum-algorithm=sha256 \
	-F "filename=@$dir/img.iso;filename=bad.iso" | jq -r .data)
wait_for 10 task_ends 1 "$upid"
check "a wrong checksum fails the task, saying so ($(jq -c .data.exitstatus "$dir/body"))" \
	jq_true '.data.exitstatus | test("checksum mismatch")' "$dir/body"
check "... and leaves no file" test ! -e "$dir/n1/local/template/iso/bad.iso"
upid=$(req 1 POST /nodes/n1/storage/local/upload -F content=iso \
	-F "filename=@$dir/img.iso;filename=test.iso" | jq -r .data)
wait_for 10 task_ends 1 "$upid"
check "uploading over an existing file fails: already exists" \
	jq_true '.data.exitstatus | test("already exists")' "$dir/body"
no_tmp() { ! ls -A "$dir/n1/local/template/iso" | grep -q '^\.tmp-'; }
check "... and no upload left a temporary file behind" no_tmp
head -c 1100000 /dev/zero >"$dir/big.iso"
req 1 POST /nodes/n1/storage/local/upload -F content=iso -F "filename=@$dir/big.iso;filename=big.iso" >/dev/null
check "an upload above the 1 MiB body limit is refused (413)" code_is 413
req 1 POST /nodes/n1/storage/local/upload -F content=vztmpl -F "filename=@$dir/img.iso;filename=../x.tar.gz" >/dev/null
check "a file name with a path is 400" code_is 400

port=$((base + 40))
(cd "$dir" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
http_pid=$!
trap 'kill "$http_pid" 2>/dev/null; lo_cleanup' EXIT
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
upid=$(req 3 POST /nodes/n1/storage/local/download-url --data-urlencode content=iso \
	--data-urlencode "url=http://127.0.0.1:$port/img.iso" --data-urlencode filename=fetched.iso \
	--data-urlencode "checksum=$sum" --data-urlencode checksum-algorithm=sha256 | jq -r .data)
check "POST .../download-url answers a download task ($upid)" \
	bash -c "[[ '$upid' =~ :download:: ]]"
wait_for 20 task_ends 1 "$upid"
check "... which fetches the file and checks it ($(jq -c .data.exitstatus "$dir/body"))" \
	bash -c "jq -e '.data.exitstatus == \"OK\"' '$dir/body' >/dev/null && cmp -s '$dir/img.iso' '$dir/n1/local/template/iso/fetched.iso'"
upid=$(req 3 POST /nodes/n1/storage/local/download-url --data-urlencode content=iso \
	--data-urlencode "url=http://127.0.0.1:$port/missing.iso" --data-urlencode filename=missing.iso | jq -r .data)
wait_for 20 task_ends 1 "$upid"
check "a URL that 404s fails the task, saying why ($(jq -c .data.exitstatus "$dir/body"))" \
	jq_true '.data.exitstatus | test("download failed")' "$dir/body"
out=$(cairn_on 2 storage download local iso "http://127.0.0.1:$port/img.iso" --filename cli.iso --node n1)
rc=$?
check "cairn storage download follows the task to TASK OK (exit $rc)" \
	bash -c "[ $rc = 0 ] && grep -qx 'TASK OK' <<<'$out' && cmp -s '$dir/img.iso' '$dir/n1/local/template/iso/cli.iso'"
kill "$http_pid" 2>/dev/null
wait "$http_pid" 2>/dev/null

# ---- /cluster/resources
res_storage() {
	req "$1" GET '/cluster/resources?type=storage' >/dev/null
	jq_true '([.data[] | select(.storage == "shared1" and .status == "available" and .maxdisk > 0 and (.disk | type) == "number" and .shared == 1)] | length) == 3 and ([.data[] | select(.storage == "local")] | length) == 3' "$dir/body"
}
check "/cluster/resources?type=storage lists every storage on every node with sizes" \
	wait_for 15 res_storage 2

req 1 DELETE /storage/shared1 >/dev/null
check "DELETE /storage/shared1" code_is 200
json=$(req 3 GET /storage/shared1)
check "... then it does not exist (404)" code_is 404

done_testing
