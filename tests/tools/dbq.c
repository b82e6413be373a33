/* dbq: runs SQL, or a membership request, against a cairn dqlite cluster.
 *
 *   dbq -a IP:PORT [-a ...] [-t MS] [--local] SQL [PARAM...]
 *   dbq -a IP:PORT leader | cluster | add ID ADDR | join ID ADDR |
 *       assign ID voter|standby|spare | remove ID | transfer ID
 *
 * SELECT/PRAGMA/WITH/VALUES print rows (tab-separated, NULL as \N);
 * other statements print "rows_affected=N last_insert_id=N". PARAMs bind
 * as text, or as integers when they are decimal numbers. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consensus/consensus.h"

static int print_rows(const struct db_rows *r)
{
	uint64_t i;
	unsigned j;

	for (i = 0; i < r->nrows; i++) {
		for (j = 0; j < r->ncols; j++) {
			const struct wire_value *v = db_rows_at(r, i, j);

			if (j > 0)
				putchar('\t');
			switch (v->type) {
			case WIRE_INTEGER:
			case WIRE_UNIXTIME:
				printf("%lld", (long long)v->integer);
				break;
			case WIRE_FLOAT:
				printf("%g", v->real);
				break;
			case WIRE_BOOLEAN:
				printf("%d", v->boolean ? 1 : 0);
				break;
			case WIRE_TEXT:
			case WIRE_ISO8601:
				fwrite(v->text.ptr, 1, v->text.len, stdout);
				break;
			case WIRE_BLOB:
				printf("<blob %zu bytes>", v->blob.len);
				break;
			default:
				printf("\\N");
			}
		}
		putchar('\n');
	}
	return 0;
}

static bool is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

static enum wire_role parse_role(const char *s)
{
	if (!strcmp(s, "voter"))
		return WIRE_ROLE_VOTER;
	if (!strcmp(s, "standby"))
		return WIRE_ROLE_STANDBY;
	if (!strcmp(s, "spare"))
		return WIRE_ROLE_SPARE;
	fprintf(stderr, "dbq: role must be voter, standby or spare\n");
	exit(2);
}

static const char *role_name(enum wire_role r)
{
	return r == WIRE_ROLE_VOTER     ? "voter"
	       : r == WIRE_ROLE_STANDBY ? "standby"
	       : r == WIRE_ROLE_SPARE   ? "spare"
	                                : "unknown";
}

static int run(struct db_client *c, int argc, char **argv, struct err *e)
{
	const char *cmd = argv[0];
	struct wire_value params[WIRE_PARAMS_MAX];
	int i, rv;

	if (!strcmp(cmd, "leader")) {
		char address[128];
		uint64_t id;

		rv = db_leader(c, &id, address, sizeof address, e);
		if (rv == 0)
			printf("%llu\t%s\n", (unsigned long long)id, address);
		return rv;
	}
	if (!strcmp(cmd, "cluster")) {
		struct db_member m[64];
		unsigned n, k;

		rv = db_cluster(c, m, 64, &n, e);
		for (k = 0; rv == 0 && k < n; k++)
			printf("%llu\t%s\t%s\n", (unsigned long long)m[k].id,
			       m[k].address, role_name(m[k].role));
		return rv;
	}
	if (!strcmp(cmd, "add") && argc == 3)
		return db_add(c, strtoull(argv[1], NULL, 10), argv[2], e);
	if (!strcmp(cmd, "join") && argc == 3)
		return db_membership_join(c, strtoull(argv[1], NULL, 10),
		                          argv[2], e);
	if (!strcmp(cmd, "assign") && argc == 3)
		return db_assign(c, strtoull(argv[1], NULL, 10),
		                 parse_role(argv[2]), e);
	if (!strcmp(cmd, "remove") && argc == 2)
		return db_membership_remove(c, strtoull(argv[1], NULL, 10), e);
	if (!strcmp(cmd, "transfer") && argc == 2)
		return db_transfer(c, strtoull(argv[1], NULL, 10), e);

	if (argc - 1 > WIRE_PARAMS_MAX)
		return err_set(e, -E2BIG, "at most %d parameters",
		               WIRE_PARAMS_MAX);
	for (i = 1; i < argc; i++)
		params[i - 1] =
		        is_number(argv[i])
		                ? wire_value_integer(strtoll(argv[i], NULL, 10))
		                : wire_value_text(argv[i]);
	while (isspace((unsigned char)*cmd))
		cmd++;
	if (!strncasecmp(cmd, "select", 6) || !strncasecmp(cmd, "pragma", 6) ||
	    !strncasecmp(cmd, "with", 4) || !strncasecmp(cmd, "values", 6)) {
		struct db_rows rows;

		rv = db_query(c, cmd, params, (unsigned)argc - 1, &rows, e);
		if (rv == 0) {
			print_rows(&rows);
			db_rows_free(&rows);
		}
		return rv;
	} else {
		struct wire_result res;

		rv = db_exec(c, cmd, params, (unsigned)argc - 1, &res, e);
		if (rv == 0)
			printf("rows_affected=%llu last_insert_id=%llu\n",
			       (unsigned long long)res.rows_affected,
			       (unsigned long long)res.last_insert_id);
		return rv;
	}
}

int main(int argc, char **argv)
{
	const char *addresses[DB_MAX_ADDRESSES];
	struct db_client_config cc = {.addresses = addresses};
	struct db_client *client;
	struct err e;
	int opt, rv;

	while ((opt = getopt(argc, argv, "+a:t:lh")) != -1) {
		switch (opt) {
		case 'a':
			if (cc.naddresses == DB_MAX_ADDRESSES) {
				fprintf(stderr, "dbq: too many addresses\n");
				return 2;
			}
			addresses[cc.naddresses++] = optarg;
			break;
		case 't':
			cc.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			cc.local_only = true;
			break;
		default:
			fprintf(stderr,
			        "usage: dbq -a IP:PORT [-a ...] [-t MS] "
			        "[-l] SQL [PARAM...] | leader | cluster "
			        "| add|join ID ADDR | assign ID ROLE | "
			        "remove ID | transfer ID\n");
			return 2;
		}
	}
	if (cc.naddresses == 0 || optind >= argc) {
		fprintf(stderr, "dbq: need -a ADDRESS and a command (-h)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	rv = db_client_create(&cc, &client, &e);
	if (rv == 0)
		rv = run(client, argc - optind, argv + optind, &e);
	db_client_destroy(client);
	if (rv != 0) {
		fprintf(stderr, "dbq: %s\n", e.msg);
		return 1;
	}
	return 0;
}
