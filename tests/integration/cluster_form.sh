#!/usr/bin/env bash
# Forming a cluster with real agents on loopback addresses: create,
# join-token, join; refused tokens change nothing; only cluster
# certificates reach the RPC and database ports; nothing of the database
# listens in plaintext; members survive restarts and a killed leader.
set -u
source "$(dirname "$0")/tap.sh"

dir=$(mktemp -d /tmp/cairn-it-cluster.XXXXXX)
base=$((20000 + RANDOM % 9000))
net=$((20 + RANDOM % 200))
cleanup() {
	local f p
	for f in "$dir"/n*/run/cairnd.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "${CAIRN_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

ip() { echo "127.0.$net.$1"; }
sock() { echo "$dir/n$1/run/cairnd.sock"; }
cairn_on() { local n=$1; shift; "$CAIRN" --socket "$(sock "$n")" "$@"; }
has_no_cluster() {
	[ ! -e "$dir/n$1/data/cluster.json" ] && [ ! -e "$dir/n$1/data/pki" ] &&
		[ ! -e "$dir/n$1/data/db" ]
}

start_node() {
	"$CAIRND" -c "$dir/n$1.conf" 2>>"$dir/n$1.start.err"
}

for i in 1 2 3 4; do
	mkdir -p "$dir/n$i"
	cat >"$dir/n$i.conf" <<CONF
node_name = n$i
data_dir = $dir/n$i/data
local_dir = $dir/n$i/local
run_dir = $dir/n$i/run
log_file = $dir/n$i/cairnd.log
log_level = debug
rpc_listen = $(ip "$i"):$((base + 16))
db_listen = $(ip "$i"):$((base + 17))
api_listen = $(ip "$i"):$((base + 6))
bridge = ""
db_latency_ms = 20
CONF
	start_node "$i" || true
done
if [ -S "$(sock 1)" ] && [ -S "$(sock 2)" ] && [ -S "$(sock 3)" ] && [ -S "$(sock 4)" ]; then
	ok "four agents start"
else
	not_ok "four agents start" "$(cat "$dir"/n*.start.err)"
fi

out=$(cairn_on 1 cluster create itc 2>&1)
if [ $? -eq 0 ] && grep -q "created cluster itc with node n1" <<<"$out"; then
	ok "cluster create makes a one-node cluster"
else
	not_ok "cluster create makes a one-node cluster" "$out"
fi
out=$(cairn_on 1 cluster create other 2>&1)
if [ $? -eq 1 ] && grep -q "already a member of cluster 'itc'" <<<"$out"; then
	ok "a member cannot create another cluster"
else
	not_ok "a member cannot create another cluster" "$out"
fi
check "the node key is 0600 and its directory 0700" \
	test "$(stat -c %a "$dir/n1/data/pki/node.key")/$(stat -c %a "$dir/n1/data/pki")" = 600/700

token2=$(cairn_on 1 cluster join-token)
check "join-token prints a token" grep -q '^cairn-join-v1\.' <<<"$token2"
out=$(cairn_on 2 cluster join "$token2" 2>&1)
if [ $? -eq 0 ] && grep -q "node n2 joined cluster itc" <<<"$out"; then
	ok "a second node joins with the token"
else
	not_ok "a second node joins with the token" "$out" "$(tail -5 "$dir/n2/cairnd.log")"
fi
token3=$(cairn_on 2 cluster join-token)
out=$(cairn_on 3 cluster join "$token3" 2>&1)
if [ $? -eq 0 ]; then
	ok "a third node joins with a token issued by the second"
else
	not_ok "a third node joins with a token issued by the second" "$out"
fi
nodes=$(cairn_on 3 cluster nodes 2>&1)
if [ "$(grep -cE '^n[123] .* voter' <<<"$nodes")" = 3 ]; then
	ok "all three are voters, seen from any member"
else
	not_ok "all three are voters, seen from any member" "$nodes"
fi

# --- tokens that must be refused, changing nothing -----------------------
out=$(cairn_on 4 cluster join "$token2" 2>&1)
if [ $? -eq 1 ] && grep -q "already used (by node n2)" <<<"$out" && has_no_cluster 4; then
	ok "a reused token is refused and changes nothing"
else
	not_ok "a reused token is refused and changes nothing" "$out"
fi
short=$(cairn_on 1 cluster join-token --ttl 1)
sleep 2
out=$(cairn_on 4 cluster join "$short" 2>&1)
if [ $? -eq 1 ] && grep -q "expired at" <<<"$out" && has_no_cluster 4; then
	ok "an expired token is refused and changes nothing"
else
	not_ok "an expired token is refused and changes nothing" "$out"
fi
out=$(cairn_on 4 cluster join "cairn-join-v1.bm90IGEgdG9rZW4" 2>&1)
if [ $? -eq 1 ] && grep -q "join token" <<<"$out" && has_no_cluster 4; then
	ok "a malformed token is refused with a clear error"
else
	not_ok "a malformed token is refused with a clear error" "$out"
fi
fresh=$(cairn_on 1 cluster join-token)
forged=$(python3 - "$fresh" <<'PY'
import base64, json, sys
body = sys.argv[1].split(".", 1)[1]
obj = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
obj["secret"] = base64.urlsafe_b64encode(b"\x07" * 32).decode().rstrip("=")
print("cairn-join-v1." + base64.urlsafe_b64encode(
    json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("="))
PY
)
out=$(cairn_on 4 cluster join "$forged" 2>&1)
if [ $? -eq 1 ] && grep -q "not valid for this cluster" <<<"$out" && has_no_cluster 4; then
	ok "a token with a wrong secret is refused and changes nothing"
else
	not_ok "a token with a wrong secret is refused and changes nothing" "$out"
fi
out=$(cairn_on 4 cluster join "$fresh" 2>&1)
if [ $? -eq 0 ]; then
	ok "the genuine token still works after the forged attempt"
else
	not_ok "the genuine token still works after the forged attempt" "$out"
fi
nodes=$(cairn_on 1 cluster nodes 2>&1)
check "with four nodes, three are voters and one is a standby" \
	test "$(grep -c ' voter' <<<"$nodes")/$(grep -c ' standby' <<<"$nodes")" = 3/1

# --- who may talk to the ports ---------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$dir/foreign.key" -out "$dir/foreign.crt" -subj /CN=n1 \
	-days 1 2>/dev/null
s_client() { # PORT [ARGS]: the alerts a TLS client gets
	local port=$1
	shift
	(echo hello; sleep 1) | timeout 10 openssl s_client -connect "$(ip 2):$port" "$@" 2>&1 |
		grep -oE 'alert [a-z ]+' | head -n 1
}
out=$(s_client $((base + 17)) -cert "$dir/foreign.crt" -key "$dir/foreign.key")
check "a foreign CA's certificate is refused on the database port ($out)" \
	test "$out" = "alert unknown ca"
out=$(s_client $((base + 16)) -cert "$dir/foreign.crt" -key "$dir/foreign.key")
check "a foreign CA's certificate is refused on the RPC port ($out)" \
	test "$out" = "alert unknown ca"
out=$(s_client $((base + 17)))
check "the database port requires a certificate ($out)" \
	test "$out" = "alert certificate required"
# dqlite's handshake and a LEADER request, in plaintext.
reply=$(timeout 5 bash -c "exec 3<>/dev/tcp/$(ip 2)/$((base + 17)); \
	printf '\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' >&3; \
	od -An -tx1 -v <&3" 2>/dev/null | tr -d ' \n')
if [ -z "$reply" ] || [ "${reply:0:2}" = 15 ]; then
	ok "a plaintext dqlite client gets nothing from the database port (${reply:0:10})"
else
	not_ok "a plaintext dqlite client gets nothing from the database port" "reply: $reply"
fi
listeners=$(ss -Hltn | awk '{print $4}' | grep -c "^127\.0\.$net\.")
check "each agent listens on TCP only on its RPC, database and API ports ($listeners)" \
	test "$listeners" = 12
abstract=0
for i in 1 2 3 4; do
	pid=$(cat "$dir/n$i/run/cairnd.pid")
	ss -Hlxp | grep -q "@cairn-db-n$i-$pid .*pid=$pid," && abstract=$((abstract + 1))
done
check "the dqlite nodes listen on abstract unix sockets ($abstract of 4)" \
	test "$abstract" = 4

# --- revocation: every node refuses a revoked certificate ----------------
fp4=$(cairn_on 1 db query "SELECT cert_fingerprint FROM nodes WHERE name = 'n4'" | tail -n 1)
out=$(s_client $((base + 17)) -cert "$dir/n4/data/pki/node.crt" -key "$dir/n4/data/pki/node.key")
check "before revocation, n4's certificate is accepted (${out:-no alert})" test -z "$out"
cairn_on 1 db query "INSERT INTO revoked_certs (fingerprint, node, revoked_at) VALUES ('$fp4', 'n4', 0)" >/dev/null
revoked_on_n2() {
	[ "$(s_client $((base + 17)) -cert "$dir/n4/data/pki/node.crt" -key "$dir/n4/data/pki/node.key")" = "alert certificate revoked" ]
}
if wait_for 5 revoked_on_n2; then
	ok "a revoked certificate is refused by the other nodes within seconds"
else
	not_ok "a revoked certificate is refused by the other nodes within seconds" "fingerprint: $fp4"
fi
out=$(s_client $((base + 17)) -cert "$dir/n3/data/pki/node.crt" -key "$dir/n3/data/pki/node.key")
check "other members' certificates are still accepted (${out:-no alert})" test -z "$out"

# --- restarts and a killed leader -----------------------------------------
for i in 1 2 3 4; do
	kill -TERM "$(cat "$dir/n$i/run/cairnd.pid")"
done
for i in 1 2 3 4; do
	wait_for 5 test ! -e "$dir/n$i/run/cairnd.pid"
done
for i in 1 2 3 4; do
	start_node "$i"
done
# (n4 is revoked now: the others refuse it, so ask n3.)
if wait_for 10 bash -c "'$CAIRN' --socket '$(sock 3)' cluster nodes | grep -c ' voter' | grep -qx 3"; then
	ok "after all agents restart, the cluster is whole again"
else
	not_ok "after all agents restart, the cluster is whole again" "$(cairn_on 3 cluster nodes 2>&1)"
fi
out=$(cairn_on 4 db query "SELECT count(*) FROM nodes" 2>&1)
if [ $? -ne 0 ]; then
	ok "the revoked node no longer reaches the database"
else
	not_ok "the revoked node no longer reaches the database" "$out"
fi
kill -KILL "$(cat "$dir/n1/run/cairnd.pid")"
t0=$(date +%s%N)
if wait_for 10 bash -c "'$CAIRN' --socket '$(sock 2)' cluster nodes >/dev/null 2>&1"; then
	ok "with the first node killed, the others answer (in $((($(date +%s%N) - t0) / 1000000)) ms)"
else
	not_ok "with the first node killed, the others answer" "$(cairn_on 2 cluster nodes 2>&1)"
fi

done_testing
