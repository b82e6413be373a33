#!/usr/bin/env bash
# Checks the module rules of DESIGN.md §2 on the sources (TAP): modules
# include each other only through their public header and only in the
# allowed direction, each outside library is included by its one owner
# module, and sched/ stays free of I/O headers.
set -u
top=${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 1

n=0 bad=0
result() { # result OK? NAME DETAILS...
	n=$((n + 1))
	if [ "$1" = yes ]; then
		echo "ok $n - $2"
	else
		bad=$((bad + 1))
		echo "not ok $n - $2"
		shift 2
		printf '# %s\n' "$@"
	fi
}

modules="lib proto rpc consensus store sched hv ct node cli"
# Which modules each module may include.
declare -A allowed=(
	[lib]=""
	[proto]="lib"
	[rpc]="lib proto"
	[consensus]="lib proto"
	[store]="lib proto"
	[sched]="lib proto"
	[hv]="lib proto consensus store sched"
	[ct]="lib proto consensus store sched"
	[node]="lib proto rpc consensus store sched hv ct"
	[cli]="lib proto rpc"
)

for m in $modules; do
	[ -d "$m" ] || continue
	problems=()
	while IFS=: read -r file _ inc; do
		target=$(sed -n 's/.*#include "\([a-z]*\)\/\([^"]*\)".*/\1 \2/p' <<<"$inc")
		[ -n "$target" ] || continue
		set -- $target
		other=$1 header=$2
		[ "$other" = "$m" ] && continue
		case " $modules " in *" $other "*) ;; *) continue ;; esac
		if [ "$header" != "$other.h" ] && ! [ "$other" = proto ] ; then
			problems+=("$file includes $other/$header: use $other/$other.h")
		elif [ "$other" = proto ] && [ "$header" != proto.h ]; then
			problems+=("$file includes proto/$header: use proto/proto.h")
		elif ! grep -qw "$other" <<<"${allowed[$m]}"; then
			problems+=("$file: $m may not depend on $other")
		fi
	done < <(grep -Hn '#include "' $(find "$m" -name '*.[ch]') 2>/dev/null)
	result "$([ ${#problems[@]} -eq 0 ] && echo yes || echo no)" \
		"$m/ includes other modules only through their door, downwards" \
		"${problems[@]}"
done

# Outside libraries and their owner module.
owners=(
	"dqlite.h|raft.h:consensus"
	"rados/|rbd/:store"
	"lxc/:ct"
	"h2o:node"
	"openssl/:rpc lib"
	"protobuf-c/:proto"
	"sqlite3.h:consensus"
)
for entry in "${owners[@]}"; do
	pattern=${entry%%:*} owner=${entry#*:}
	problems=()
	while IFS=: read -r file _; do
		mod=${file%%/*}
		grep -qw "$mod" <<<"$owner" || problems+=("$file")
	done < <(grep -HnE "#include <($pattern)" $(find $modules -name '*.[ch]' 2>/dev/null) 2>/dev/null)
	result "$([ ${#problems[@]} -eq 0 ] && echo yes || echo no)" \
		"<${pattern//|/, <}> only in $owner" "${problems[@]/#/included by }"
done

problems=$(grep -HnE '#include <(sys/socket|sys/stat|fcntl|unistd|netinet/|arpa/|stdio|uv|dirent|pthread)\.?h?>' $(find sched -name '*.[ch]') 2>/dev/null)
result "$([ -z "$problems" ] && echo yes || echo no)" "sched/ includes no I/O headers" "$problems"

echo "1..$n"
[ "$bad" -eq 0 ]
