#!/usr/bin/env bash
# Proxmox tasks on a 3-node loopback cluster, with the test worker
# (test_tasks = 1: POST /nodes/{node}/cairn-test/sleep): a UPID answered
# only once its task is registered, status/log/abort from any node, the
# task list with filters and `total`, /cluster/tasks, `cairn task follow`
# and its exit status, and a task cut short by a cairnd kill reported
# stopped with an error after the restart.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/loopback.sh"

lo_init tasks

lo_cluster 3 tasktest "test_tasks = 1"
AUTH="PVEAPIToken=root@pam!t=$(cairn_on 1 --output json user token-add root@pam t --privsep 0 | jq -r .value)"

# ---- a task on n2, started through n1, polled from n3
upid=$(req 1 POST /nodes/n2/cairn-test/sleep --data-urlencode seconds=2 --data-urlencode vmid=100 | jq -r .data)
check "POST .../cairn-test/sleep on n2 through n1 answers a UPID ($upid)" \
	bash -c "[[ '$upid' =~ ^UPID:n2:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:cairntest:100:root@pam\!t:$ ]]"
json=$(req 3 GET "/nodes/n2/tasks/$(esc "$upid")/status")
check "its status is readable at once from n3: running ($json)" \
	jq_true '.data.status == "running" and .data.node == "n2" and .data.type == "cairntest" and .data.id == "100" and (.data | has("exitstatus") | not) and (.data.pid | type) == "number"' <<<"$json"
stopped() { req "$1" GET "/nodes/n2/tasks/$(esc "$upid")/status" >/dev/null; jq_true '.data.status == "stopped"' "$dir/body"; }
check "it stops" wait_for 10 stopped 1
check "... with exitstatus exactly OK" jq_true '.data.exitstatus == "OK"' "$dir/body"
json=$(req 3 GET "/nodes/n2/tasks/$(esc "$upid")/log")
check "its log: {n, t} lines, total, first line says what, last TASK OK ($(jq -c '[.data[].t]' <<<"$json"))" \
	jq_true '.total == (.data | length) and .data[0].n == 1 and (.data[0].t | test("test task: sleep 2 s")) and .data[-1].t == "TASK OK"' <<<"$json"
json=$(req 1 GET "/nodes/n2/tasks/$(esc "$upid")/log?start=1&limit=1")
check "log paging: start=1 limit=1 gives line 2, total stays" \
	jq_true '(.data | length) == 1 and .data[0].n == 2 and .total >= 3' <<<"$json"

# ---- failure, abort, unknown
bad=$(req 2 POST /nodes/n3/cairn-test/sleep --data-urlencode seconds=1 --data-urlencode fail=1 | jq -r .data)
failed() { req 1 GET "/nodes/n3/tasks/$(esc "$bad")/status" >/dev/null; jq_true '.data.status == "stopped"' "$dir/body"; }
check "a failing task stops" wait_for 10 failed
check "... with its error text as exitstatus" \
	jq_true '.data.exitstatus == "the test task failed as asked"' "$dir/body"
long=$(req 1 POST /nodes/n3/cairn-test/sleep --data-urlencode seconds=600 | jq -r .data)
req 2 DELETE "/nodes/n3/tasks/$(esc "$long")" >/dev/null
check "DELETE aborts a running task from another node" code_is 200
aborted() { req 1 GET "/nodes/n3/tasks/$(esc "$long")/status" >/dev/null; jq_true '.data.status == "stopped" and (.data.exitstatus | test("aborted by root@pam!t"))' "$dir/body"; }
check "... it stops with 'aborted by root@pam!t'" wait_for 10 aborted
json=$(req 1 GET "/nodes/n1/tasks/$(esc "$upid")/log")
check "a task's log through another {node} in the path comes from the UPID's node" \
	jq_true '.data[-1].t == "TASK OK" and .total >= 3' <<<"$json"
json=$(req 1 GET "/nodes/n2/tasks/$(esc "UPID:n2:00000001:00000002:00000003:cairntest::root@pam:")/status")
check "an unknown task is 400 upid: no such task ($json)" \
	bash -c "[ '$(code)' = 400 ] && jq -e '.errors.upid == \"no such task\"' <<<'$json' >/dev/null"

# ---- lists
json=$(req 1 GET '/nodes/n3/tasks?limit=1')
check "GET /nodes/n3/tasks?limit=1: one row, total 2, newest first" \
	jq_true '(.data | length) == 1 and .total == 2 and .data[0].upid == "'"$long"'"' <<<"$json"
json=$(req 1 GET '/nodes/n3/tasks?errors=1')
check "errors=1 lists the failed and the aborted ones" \
	jq_true '(.data | length) == 2 and all(.data[]; .status != "OK")' <<<"$json"
json=$(req 3 GET '/nodes/n2/tasks?vmid=100&typefilter=cairntest')
check "vmid and typefilter select the first task" \
	jq_true '(.data | length) == 1 and .data[0].upid == "'"$upid"'" and .data[0].status == "OK" and (.data[0].endtime | type) == "number"' <<<"$json"
json=$(req 2 GET /cluster/tasks)
check "/cluster/tasks lists the tasks of every node" \
	jq_true '([.data[].node] | unique) == ["n2", "n3"] and (.data | length) == 3' <<<"$json"

# ---- the CLI follows a task and fails with it
ok_task=$(req 1 POST /nodes/n1/cairn-test/sleep --data-urlencode seconds=1 | jq -r .data)
out=$(cairn_on 1 task follow "$ok_task")
check "cairn task follow prints the log to TASK OK and exits 0" \
	bash -c "[ $? = 0 ] && grep -qx 'TASK OK' <<<'$out'"
bad_task=$(req 1 POST /nodes/n2/cairn-test/sleep --data-urlencode seconds=1 --data-urlencode fail=1 | jq -r .data)
cairn_on 3 task follow "$bad_task" >"$dir/follow.out"
rc=$?
check "... and exits 1 for a failed task (from another node: $rc)" \
	bash -c "[ $rc = 1 ] && grep -q 'TASK ERROR: the test task failed as asked' '$dir/follow.out'"

# ---- a task cut short by a kill
cut=$(req 1 POST /nodes/n2/cairn-test/sleep --data-urlencode seconds=600 | jq -r .data)
running() { req 1 GET "/nodes/n2/tasks/$(esc "$cut")/status" >/dev/null; jq_true '.data.status == "running"' "$dir/body"; }
check "a long task runs on n2" wait_for 5 running
kill -KILL "$(cat "$dir/n2/run/cairnd.pid")"
sleep 0.5
start_node 2
interrupted() { req 1 GET "/nodes/n2/tasks/$(esc "$cut")/status" >/dev/null; jq_true '.data.status == "stopped"' "$dir/body"; }
check "after cairnd is killed and restarts, the task is stopped" wait_for 20 interrupted
check "... with an error saying why ($(jq -c .data.exitstatus "$dir/body"))" \
	jq_true '.data.exitstatus | test("interrupted")' "$dir/body"
json=$(req 3 GET "/nodes/n2/tasks/$(esc "$cut")/log")
check "... and its log ends with TASK ERROR" \
	jq_true '.data[-1].t | startswith("TASK ERROR: interrupted")' <<<"$json"

done_testing
