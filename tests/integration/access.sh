#!/usr/bin/env bash
# Users, tickets, API tokens and privileges over the REST API of a 3-node
# loopback cluster, as Proxmox clients use them: the ticket + CSRF flow, a
# ticket of n1 accepted by n3, renewal with the ticket as the password,
# token flow and an expired token, 401s after a delay, a PVEAuditor
# refused on every non-GET route (walking the route table), and
# /access/permissions matching the ACLs set.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init access
# req NODE METHOD PATH [CURL ARGS...]: body on stdout, code in $dir/code,
# headers in $dir/headers.

lo_cluster 3 accesstest

# ---- unauthenticated
up() { req "$1" GET /access/domains >/dev/null 2>&1 && code_is 200; }
check "GET /access/domains answers without credentials" wait_for 10 up 1
check "... listing the pam and pve realms" \
	jq_true '[.data[].realm] | sort == ["pam", "pve"]' "$dir/body"
t0=$(date +%s%N)
req 2 GET /cluster/resources >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
check "no credentials: 401 after a delay ($ms ms: $(status_line))" \
	test "$(code)" = 401 -a "$ms" -ge 900
req 2 GET /version -H 'Authorization: PVEAPIToken=root@pam!x=not-a-secret' >/dev/null
check "a wrong token: 401 invalid token value ($(status_line))" \
	bash -c "[ '$(code)' = 401 ] && grep -q 'invalid token value' <<<'$(status_line)'"

# ---- the first credentials: root@pam's password and token, from a node
printf 'rootsecret1\n' | cairn_on 1 user passwd root@pam >/dev/null
check "root@pam gets a password through the local socket (cairn user passwd)" test $? = 0
secret=$(cairn_on 1 --output json user token-add root@pam admin --privsep 0 | jq -r .value)
check "cairn user token-add prints a UUID secret ($secret)" \
	bash -c "[[ '$secret' =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]"
ROOT="Authorization: PVEAPIToken=root@pam!admin=$secret"
json=$(req 3 GET /version -H "$ROOT")
check "root's token works on another node (n3)" code_is 200
dbsecret=$(cairn_on 2 db query "SELECT digest FROM tokens WHERE tokenid = 'admin'" | tail -n 1)
check "the DB keeps the token's SHA-256, not the secret" \
	test "$dbsecret" = "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)"

# ---- tickets
json=$(req 1 POST /access/ticket --data-urlencode username=root@pam --data-urlencode password=rootsecret1)
check "POST /access/ticket: username, ticket, CSRFPreventionToken, clustername, cap ($(code))" \
	jq_true '.data | .username == "root@pam" and (.ticket | startswith("PVE:root@pam:")) and (.CSRFPreventionToken | test("^[0-9A-F]{8}:")) and .clustername == "accesstest" and (.cap.vms["VM.Allocate"] == 1)' <<<"$json"
ticket=$(jq -r .data.ticket <<<"$json")
csrf=$(jq -r .data.CSRFPreventionToken <<<"$json")
req 3 GET /cluster/status -b "PVEAuthCookie=$(jq -rn --arg t "$ticket" '$t|@uri')" >/dev/null
check "a ticket of n1 works on n3 (cookie, URL-escaped)" code_is 200
req 2 GET /cluster/status -H "Authorization: PVEAuthCookie=$ticket" >/dev/null
check "... and as Authorization: PVEAuthCookie=" code_is 200
req 3 POST /access/users -b "PVEAuthCookie=$ticket" --data-urlencode userid=nocsrf@pve >/dev/null
check "a write with a ticket but no CSRF header is refused (401: $(status_line))" \
	bash -c "[ '$(code)' = 401 ] && grep -q csrf <<<'$(status_line)'"
req 3 POST /access/users -b "PVEAuthCookie=$ticket" -H "CSRFPreventionToken: $csrf" \
	--data-urlencode userid=alice@pve --data-urlencode password=alicepass1 >/dev/null
check "with the CSRF header it goes through (create alice@pve: $(code))" code_is 200
json=$(req 2 POST /access/ticket --data-urlencode username=root@pam --data-urlencode "password=$ticket")
check "renewal: the ticket as the password gives a new ticket" \
	jq_true '.data.ticket | startswith("PVE:root@pam:")' <<<"$json"
t0=$(date +%s%N)
req 1 POST /access/ticket --data-urlencode username=root@pam --data-urlencode password=wrong >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
check "a wrong password: 401 authentication failure, after a delay, with a JSON body ($ms ms)" \
	bash -c "[ '$(code)' = 401 ] && [ $ms -ge 900 ] && [ $ms -lt 5000 ] && jq -e 'has(\"data\")' '$dir/body' >/dev/null"
json=$(req 2 POST /access/ticket --data-urlencode username=alice --data-urlencode realm=pve --data-urlencode password=alicepass1)
check "a pve user logs in with username + realm" \
	jq_true '.data.username == "alice@pve"' <<<"$json"
forged="PVE:root@pam:$(printf '%08X' "$(date +%s)")::AAAA"
req 1 GET /version -b "PVEAuthCookie=$forged" >/dev/null
check "a forged ticket is refused" code_is 401

# ---- tokens
json=$(req 1 POST /access/users/alice@pve/token/ci -H "$ROOT" --data-urlencode comment=pipeline)
check "token create answers full-tokenid, info, value ($json)" \
	jq_true '.data["full-tokenid"] == "alice@pve!ci" and .data.info.privsep == 1 and (.data.value | test("^[a-zA-Z0-9-]+$"))' <<<"$json"
alice_ci=$(jq -r .data.value <<<"$json")
req 2 GET /version -H "Authorization: PVEAPIToken=alice@pve!ci=$alice_ci" >/dev/null
check "alice's token authenticates on n2" code_is 200
req 2 GET /nodes/n2/status -H "Authorization: PVEAPIToken=alice@pve!ci=$alice_ci" >/dev/null
check "... but a privsep token without ACLs gets 403 ($(status_line))" \
	bash -c "[ '$(code)' = 403 ] && grep -q 'Permission check failed (/nodes/n2, Sys.Audit)' <<<'$(status_line)'"
past=$(($(date +%s) - 10))
json=$(req 1 POST /access/users/alice@pve/token/old -H "$ROOT" --data-urlencode "expire=$past")
old=$(jq -r .data.value <<<"$json")
req 3 GET /version -H "Authorization: PVEAPIToken=alice@pve!old=$old" >/dev/null
check "an expired token is refused (401: $(status_line))" \
	bash -c "[ '$(code)' = 401 ] && grep -q expired <<<'$(status_line)'"
req 3 POST /access/users/alice@pve/token/evil -H "Authorization: PVEAPIToken=alice@pve!ci=$alice_ci" --data-urlencode privsep=0 >/dev/null
check "a privsep token cannot mint an unrestricted sibling token (403: $(status_line))" code_is 403
req 1 DELETE /access/users/alice@pve/token/ci -H "$ROOT" >/dev/null
gone_ci() { req 3 GET /version -H "Authorization: PVEAPIToken=alice@pve!ci=$alice_ci" >/dev/null; code_is 401; }
check "a deleted token stops working on every node" wait_for 5 gone_ci

# ---- an auditor: every non-GET route is refused
req 1 POST /access/users -H "$ROOT" --data-urlencode userid=aud@pve --data-urlencode password=auditor1 >/dev/null
req 1 PUT /access/acl -H "$ROOT" --data-urlencode path=/ --data-urlencode users=aud@pve --data-urlencode roles=PVEAuditor >/dev/null
check "PUT /access/acl gives aud@pve PVEAuditor on /" code_is 200
aud=$(req 2 POST /access/users/aud@pve/token/t -H "$ROOT" --data-urlencode privsep=0 | jq -r .data.value)
AUD="Authorization: PVEAPIToken=aud@pve!t=$aud"
aud_ok() { req 3 GET /nodes/n1/status -H "$AUD" >/dev/null; code_is 200; }
check "the auditor reads /nodes/n1/status (Sys.Audit)" wait_for 5 aud_ok
routes=$(req 1 GET /cairn/routes -H "$ROOT")
check "GET /cairn/routes lists the routes, each with its permissions" \
	jq_true '(.data | length) > 20 and all(.data[]; (.permissions | length) > 0)' <<<"$routes"
fill() { sed -e 's/{node}/n1/g; s/{vmid}/100/g; s/{userid}/other@pve/g; s/{tokenid}/t/g; s/{roleid}/Custom/g; s/{[a-z*]*}/x/g'; }
walked=0
refused=0
while read -r method path; do
	p=$(fill <<<"$path")
	req 2 "$method" "$p" -H "$AUD" --data-urlencode path=/ --data-urlencode roles=PVEAuditor --data-urlencode users=aud@pve >/dev/null
	walked=$((walked + 1))
	if [ "$(code)" = 403 ]; then
		refused=$((refused + 1))
	else
		not_ok "auditor: $method $p is $(code), not 403 ($(status_line))"
	fi
done < <(jq -r '.data[] | select(.method != "GET" and (.permissions.public | not)) | "\(.method) \(.path)"' <<<"$routes")
check "the auditor gets 403 on all $walked non-GET routes ($refused refused)" \
	test "$walked" -gt 5 -a "$refused" = "$walked"

# ---- the CLI from elsewhere, with a token
remote() { "$CAIRN" --host "127.0.$net.3:$((base + 16))" --ca "$dir/n1/data/pki/ca.crt" "$@"; }
out=$(remote --token "root@pam!admin=$secret" api get /cluster/status 2>&1)
check "cairn --host --token: the API through n3's RPC port ($(jq -c '.[0].name' <<<"$out" 2>/dev/null))" \
	jq_true '.[0].type == "cluster" and .[0].name == "accesstest"' <<<"$out"
out=$(remote --token "root@pam!admin=00000000-0000-4000-8000-000000000000" api get /version 2>&1)
rc=$?
check "... a wrong token fails (exit $rc: $out)" \
	bash -c "[ $rc = 1 ] && grep -q '401 invalid token value' <<<'$out'"
out=$(remote --token "aud@pve!t=$aud" api post /access/roles roleid=X 2>&1)
rc=$?
check "... the auditor's token is refused a write (exit $rc: $out)" \
	bash -c "[ $rc = 1 ] && grep -q '403 Permission check failed' <<<'$out'"
out=$(remote --token "root@pam!admin=$secret" cluster status 2>&1)
check "... commands that act on the local node refuse --host" test $? = 2

# ---- passwords: root@pam is root's; a ticket holder proves itself again
req 1 PUT /access/acl -H "$ROOT" --data-urlencode path=/access/groups --data-urlencode users=alice@pve --data-urlencode roles=PVEUserAdmin >/dev/null
alice_login() { req 2 POST /access/ticket --data-urlencode username=alice@pve --data-urlencode "password=$1" | jq -r '.data.ticket + " " + .data.CSRFPreventionToken'; }
read -r at ac <<<"$(alice_login alicepass1)"
req 2 PUT /access/password -b "PVEAuthCookie=$at" -H "CSRFPreventionToken: $ac" --data-urlencode userid=root@pam --data-urlencode password=takeover123 --data-urlencode confirmation-password=alicepass1 >/dev/null
check "a user admin cannot set root@pam's password (403: $(status_line))" code_is 403
req 2 PUT /access/password -b "PVEAuthCookie=$at" -H "CSRFPreventionToken: $ac" --data-urlencode userid=alice@pve --data-urlencode password=alicepass2 >/dev/null
check "changing one's password with a ticket needs confirmation-password (400)" code_is 400
req 2 PUT /access/password -b "PVEAuthCookie=$at" -H "CSRFPreventionToken: $ac" --data-urlencode userid=alice@pve --data-urlencode password=alicepass2 --data-urlencode confirmation-password=alicepass1 >/dev/null
check "... and with it, the password changes" code_is 200
new_pw() { req 3 POST /access/ticket --data-urlencode username=alice@pve --data-urlencode password=alicepass2 >/dev/null; code_is 200; }
check "... the new password logs in on another node" wait_for 5 new_pw

# ---- permissions match the ACLs
req 1 POST /access/roles -H "$ROOT" --data-urlencode roleid=Operator --data-urlencode 'privs=VM.PowerMgmt,VM.Audit' >/dev/null
check "a custom role from Proxmox privilege names" code_is 200
req 1 PUT /access/acl -H "$ROOT" --data-urlencode path=/vms/100 --data-urlencode users=alice@pve --data-urlencode roles=Operator --data-urlencode propagate=0 >/dev/null
alice_perm() {
	req 3 GET '/access/permissions?userid=alice@pve' -H "$ROOT" >/dev/null
	jq_true '.data["/vms/100"]["VM.PowerMgmt"] != null and .data["/vms/100"]["VM.Audit"] != null and (.data["/vms/100"]["VM.Allocate"] == null) and (.data["/"] == null)' "$dir/body"
}
check "/access/permissions shows alice's Operator privileges on /vms/100 only" wait_for 5 alice_perm
json=$(req 2 GET /access/acl -H "$ROOT")
check "GET /access/acl lists the entries" \
	jq_true '[.data[] | select(.path == "/vms/100" and .ugid == "alice@pve" and .roleid == "Operator" and .type == "user" and .propagate == 0)] | length == 1' <<<"$json"
json=$(req 2 GET /access/roles -H "$ROOT")
check "GET /access/roles has the built-ins (special 1) and Operator" \
	jq_true '([.data[] | select(.roleid == "PVEAuditor" and .special == 1)] | length == 1) and ([.data[] | select(.roleid == "Operator" and .privs == "VM.Audit,VM.PowerMgmt")] | length == 1)' <<<"$json"
req 1 PUT /access/acl -H "$ROOT" --data-urlencode path=/nowhere --data-urlencode users=alice@pve --data-urlencode roles=Operator >/dev/null
check "an ACL on a path Proxmox does not know is 400" code_is 400
req 1 POST /access/users -H "$ROOT" --data-urlencode userid=alice@pve >/dev/null
check "creating an existing user says already exists ($(status_line))" \
	bash -c "grep -q 'already exists' <<<'$(status_line)'"

done_testing
