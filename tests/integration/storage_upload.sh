#!/usr/bin/env bash
# `cairn storage upload` (cairn.Storage/Upload) on a 2-node loopback
# cluster: files past the REST body limit streamed locally and with
# --host/--token to another node, byte for byte and listed; refusals that
# come before the first byte (bad token, no privilege, bad or existing
# names, a content type the storage does not take, no room) with no file,
# no task and nothing received; a wrong checksum, a client killed and an
# agent stopped mid-upload leave nothing behind; the agent stays healthy.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init upload
lo_cluster 2 uploadtest
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"
rpc2="127.0.$net.2:$((base + 16))"
ca="$dir/n1/data/pki/ca.crt"
iso1="$dir/n1/local/template/iso"
iso2="$dir/n2/local/template/iso"
pid1=$(cat "$dir/n1/run/cairnd.pid")

# Nothing of an upload but finished files: no hidden temporary name, and
# no file the agent still holds open (an O_TMPFILE has no name at all).
no_leftovers() { # DIR PID
	[ -z "$(find "$1" -name '.tmp-*' 2>/dev/null)" ] &&
		! ls -l "/proc/$2/fd" 2>/dev/null | grep -q -- "$1"
}
holds_open() { ls -l "/proc/$2/fd" 2>/dev/null | grep -q -- "$1"; }
tasks() { # NODE: how many imgcopy tasks it ran
	req "$1" GET "/nodes/n$1/tasks?typefilter=imgcopy&limit=1000" | jq '.data | length'
}
# The agent logged the refusal of FILENAME with nothing received.
refused_unread() { # NODE FILENAME
	grep 'comp=upload msg="failed"' "$dir/n$1/cairnd.log" |
		grep -F "filename=\"$2\"" | grep -q ' received=0 '
}

head -c 4096 /dev/urandom >"$dir/warm.iso"
warm() { cairn_on "$1" storage upload local "$dir/warm.iso" --filename "warm$1.iso" >/dev/null; }
check "n1 takes uploads once it reconciled its tasks" wait_for 15 warm 1
check "n2 too" wait_for 15 warm 2

# ---- a big file, locally (past the 1 MiB REST body limit)
head -c $((64 << 20)) /dev/urandom >"$dir/big.iso"
sum=$(sha256sum "$dir/big.iso" | cut -d' ' -f1)
out=$(cairn_on 1 storage upload local "$dir/big.iso" 2>"$dir/err")
rc=$?
check "a 64 MiB file uploads through the local socket (exit $rc, stdout: $out)" \
	test "$rc" = 0 -a "$out" = local:iso/big.iso
check "... with progress and a summary on stderr ($(tail -n 1 "$dir/err"))" \
	grep -q '^uploaded 64.0 MiB in .* as local:iso/big.iso, task UPID:n1:.*:imgcopy::root@pam:$' "$dir/err"
check "... byte for byte (sha256)" \
	test "$(sha256sum "$iso1/big.iso" | cut -d' ' -f1)" = "$sum"
json=$(req 2 GET '/nodes/n1/storage/local/content?content=iso')
check "... listed in GET .../content" \
	jq_true '[.data[] | select(.volid == "local:iso/big.iso" and .size == 67108864)] | length == 1' <<<"$json"
upid=$(sed -n 's/.*, task \(UPID:[^ ]*\)$/\1/p' "$dir/err")
json=$(req 1 GET "/nodes/n1/tasks/$(esc "$upid")/status")
check "... as an imgcopy task that ended OK" \
	jq_true '.data.status == "stopped" and .data.exitstatus == "OK"' <<<"$json"
check "... and nothing is left behind" no_leftovers "$iso1" "$pid1"
out=$(cairn_on 1 storage upload local "$dir/big.iso" --filename sum.iso \
	--checksum "${sum^^}" --checksum-algorithm sha256 2>/dev/null)
check "with its sha256 (upper case hex) it is checked and goes in ($out)" \
	bash -c "[ '$out' = local:iso/sum.iso ] && cmp -s '$dir/big.iso' '$iso1/sum.iso'"

# ---- with --host / --token to another node's RPC port
out=$("$CAIRN" --host "$rpc2" --token "${AUTH#PVEAPIToken=}" --ca "$ca" \
	storage upload local "$dir/big.iso" --filename remote.iso 2>"$dir/err")
rc=$?
check "--host n2 --token: the file goes to n2 (exit $rc, $out)" \
	test "$rc" = 0 -a "$out" = local:iso/remote.iso
check "... byte for byte" test "$(sha256sum "$iso2/remote.iso" | cut -d' ' -f1)" = "$sum"
check "... and not to n1" test ! -e "$iso1/remote.iso"
json=$(req 1 GET '/nodes/n2/storage/local/content?content=iso')
check "... listed by n2" \
	jq_true '[.data[] | select(.volid == "local:iso/remote.iso" and .size == 67108864)] | length == 1' <<<"$json"
check "... its task belongs to the token" grep -q 'imgcopy::root@pam!t:$' "$dir/err"

# ---- refusals before the first byte
req 1 POST /access/users --data-urlencode userid=bob@pve >/dev/null
req 1 POST /access/users --data-urlencode userid=carol@pve >/dev/null
req 1 PUT /access/acl --data-urlencode path=/storage/local \
	--data-urlencode users=carol@pve --data-urlencode roles=PVEDatastoreAdmin >/dev/null
bob="bob@pve!t=$(cairn_on 1 --output json user token-add bob@pve t --privsep 0 | jq -r .value)"
carol="carol@pve!t=$(cairn_on 1 --output json user token-add carol@pve t --privsep 0 | jq -r .value)"
head -c $((2 << 20)) /dev/urandom >"$dir/small.iso"
ntasks=$(tasks 2)

t0=$(date +%s%N)
"$CAIRN" --host "$rpc2" --token 'root@pam!t=00000000-0000-4000-8000-000000000000' --ca "$ca" \
	storage upload local "$dir/small.iso" --filename badtoken.iso >/dev/null 2>"$dir/err"
rc=$?
check "a wrong token is refused, after the 401 delay ($(ms_since "$t0") ms, exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'invalid token value' '$dir/err' && [ $(ms_since "$t0") -ge 900 ]"
check "... the agent received nothing" refused_unread 2 badtoken.iso
"$CAIRN" --host "$rpc2" --token "$bob" --ca "$ca" \
	storage upload local "$dir/small.iso" --filename bob.iso >/dev/null 2>"$dir/err"
rc=$?
check "a token without Datastore.AllocateTemplate is refused (exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'Permission check failed (/storage/local, Datastore.AllocateTemplate)' '$dir/err'"
check "... the agent received nothing" refused_unread 2 bob.iso
"$CAIRN" --host "$rpc2" --token "$bob" --ca "$ca" \
	storage upload local "$dir/warm.iso" --filename bob2.iso --content nonsense >/dev/null 2>"$dir/err"
check "... even with bad parameters, the permission comes first ($(cat "$dir/err"))" \
	grep -q 'Permission check failed' "$dir/err"
"$CAIRN" --host "$rpc2" --ca "$ca" --token "$carol" \
	storage upload local "$dir/small.iso" --filename carol.iso >/dev/null 2>"$dir/err"
rc=$?
check "a token with PVEDatastoreAdmin on /storage/local may upload (exit $rc)" \
	bash -c "[ $rc = 0 ] && cmp -s '$dir/small.iso' '$iso2/carol.iso'"
check "no file for the refused ones" \
	test ! -e "$iso2/badtoken.iso" -a ! -e "$iso2/bob.iso" -a ! -e "$iso2/bob2.iso"
check "... exactly one more imgcopy task on n2 (carol's)" test "$(tasks 2)" = $((ntasks + 1))

ntasks=$(tasks 1)
cairn_on 1 storage upload local "$dir/small.iso" --filename big.iso >/dev/null 2>"$dir/err"
rc=$?
check "an existing file name is refused (exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'local:iso/big.iso already exists' '$dir/err'"
check "... the file is untouched" test "$(sha256sum "$iso1/big.iso" | cut -d' ' -f1)" = "$sum"
check "... and the agent received nothing" refused_unread 1 big.iso
for bad in '../x.iso' 'a/b.iso' 'x:y.iso' '.hidden.iso' 'x y.iso'; do
	cairn_on 1 storage upload local "$dir/small.iso" --filename "$bad" >/dev/null 2>"$dir/err"
	rc=$?
	check "file name '$bad' is refused (exit $rc: $(tail -n 1 "$dir/err"))" \
		bash -c "[ $rc = 1 ] && grep -q '^cairn: filename: ' '$dir/err'"
done
check "... none of them made a file anywhere" \
	bash -c "[ -z \"\$(find '$dir/n1' -name x.iso -o -name b.iso -o -name 'x:y.iso' -o -name .hidden.iso -o -name 'x y.iso')\" ]"
mkdir -p "$dir/isoonly"
req 1 POST /storage --data-urlencode storage=isoonly --data-urlencode type=dir \
	--data-urlencode "path=$dir/isoonly" --data-urlencode content=iso >/dev/null
head -c 1000 /dev/urandom >"$dir/ct.tar.zst"
cairn_on 1 storage upload isoonly "$dir/ct.tar.zst" >/dev/null 2>"$dir/err"
rc=$?
check "a content type the storage does not take is refused (exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q \"storage 'isoonly' does not support content-type 'vztmpl'\" '$dir/err'"
cairn_on 1 storage upload nosuch "$dir/small.iso" >/dev/null 2>"$dir/err"
check "an unknown storage is refused ($(cat "$dir/err"))" \
	grep -q "storage 'nosuch' does not exist" "$dir/err"
truncate -s 15T "$dir/huge.iso"
cairn_on 1 storage upload local "$dir/huge.iso" >/dev/null 2>"$dir/err"
rc=$?
check "a file larger than the room left is refused before it is sent (exit $rc: $(cat "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'not enough room' '$dir/err'"
check "... the agent received nothing" refused_unread 1 huge.iso
check "no imgcopy task on n1 for any of these" test "$(tasks 1)" = "$ntasks"

# ---- failures after the first byte leave nothing
cairn_on 1 storage upload local "$dir/big.iso" --filename wrongsum.iso \
	--checksum "$(printf '%064d' 0)" --checksum-algorithm sha256 >/dev/null 2>"$dir/err"
rc=$?
check "a wrong checksum fails the upload (exit $rc: $(tail -n 1 "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q \"checksum mismatch: got '$sum'\" '$dir/err'"
gone() { [ ! -e "$1" ] && no_leftovers "$iso1" "$pid1"; }
check "... no file, nothing left behind" gone "$iso1/wrongsum.iso"
upid=$(req 1 GET '/nodes/n1/tasks?typefilter=imgcopy&errors=1&limit=1' | jq -r '.data[0].upid')
json=$(req 1 GET "/nodes/n1/tasks/$(esc "$upid")/status")
check "... and its task says why ($(jq -c .data.exitstatus <<<"$json"))" \
	jq_true '.data.exitstatus | test("checksum mismatch")' <<<"$json"
cairn_on 1 storage upload local "$dir/big.iso" --filename md5.iso \
	--checksum "$(md5sum "$dir/big.iso" | cut -d' ' -f1)" --checksum-algorithm md5 >/dev/null 2>&1
check "md5 works too" cmp -s "$dir/big.iso" "$iso1/md5.iso"

truncate -s 4G "$dir/sparse.iso"
"$CAIRN" --socket "$(sock 1)" storage upload local "$dir/sparse.iso" --filename killed.iso >/dev/null 2>"$dir/err" &
cli=$!
check "a client in the middle of a 4 GiB upload: the agent writes to a file with no name" \
	wait_for 5 holds_open "$iso1" "$pid1"
sleep 0.5
kill -9 "$cli"
wait "$cli" 2>/dev/null
check "... the client is killed (kill -9): the file goes, nothing is left" \
	wait_for 5 gone "$iso1/killed.iso"
check "... and the agent logged why" \
	grep -q 'comp=upload msg="failed" storage=local filename="killed.iso".*error="the client went away' "$dir/n1/cairnd.log"

"$CAIRN" --socket "$(sock 1)" storage upload local "$dir/sparse.iso" --filename aborted.iso >/dev/null 2>"$dir/err" &
cli=$!
wait_for 5 holds_open "$iso1" "$pid1"
upid=$(req 1 GET '/nodes/n1/tasks?typefilter=imgcopy&source=active' | jq -r '.data[0].upid')
req 1 DELETE "/nodes/n1/tasks/$(esc "$upid")" >/dev/null
check "DELETE .../tasks/{upid} of a running upload ($(code))" code_is 200
wait "$cli"
rc=$?
check "... fails it, saying who (exit $rc: $(tail -n 1 "$dir/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'aborted by root@pam!t' '$dir/err'"
check "... and leaves nothing" wait_for 5 gone "$iso1/aborted.iso"

# ---- the agent is healthy
req 1 GET /version >/dev/null
check "n1 still answers (GET /version: $(code))" code_is 200
takes_upload() { cairn_on 1 storage upload local "$dir/small.iso" --filename after.iso >/dev/null 2>&1; }
check "... and still takes uploads" takes_upload
check "... by the same process" test "$(cat "$dir/n1/run/cairnd.pid")" = "$pid1" -a -d "/proc/$pid1"

# ---- usage
"$CAIRN" storage upload local >/dev/null 2>&1
check "no FILE: exit 2" test $? = 2
"$CAIRN" storage upload local "$dir/small.iso" --checksum abc >/dev/null 2>&1
check "--checksum without --checksum-algorithm: exit 2" test $? = 2
"$CAIRN" --socket "$(sock 1)" storage upload local "$dir/warm.iso" --filename noext >/dev/null 2>&1
check "no content type to guess from the name: exit 2" test $? = 2
out=$("$CAIRN" storage upload --help)
check "--help explains it" grep -q 'checksum-algorithm' <<<"$out"

# ---- the agent stops in the middle of an upload
"$CAIRN" --socket "$(sock 1)" storage upload local "$dir/sparse.iso" --filename stopped.iso >/dev/null 2>"$dir/err" &
cli=$!
wait_for 5 holds_open "$iso1" "$pid1"
sleep 0.3
kill -TERM "$pid1"
wait "$cli"
rc=$?
check "an agent that stops fails the upload (exit $rc: $(tail -n 1 "$dir/err"))" test "$rc" = 1
check "... the agent exits" wait_for 10 bash -c "! kill -0 $pid1"
check "... and leaves nothing behind" \
	bash -c "[ ! -e '$iso1/stopped.iso' ] && [ -z \"\$(find '$iso1' -name '.tmp-*')\" ]"

done_testing
