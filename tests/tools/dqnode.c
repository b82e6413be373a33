/* dqnode: runs one cairn dqlite node until SIGTERM, for tests and benches.
 *
 *   dqnode --id N --address IP:PORT --dir DIR [--bootstrap]
 *          [--join SEED_IP:PORT] [--latency MS]
 *   dqnode --id N --address IP:PORT --dir DIR --recover ID=ADDR[,...]
 *
 * --recover rewrites a STOPPED node's Raft configuration to exactly the
 * listed voters and exits (disaster recovery after a lost quorum).
 *
 * Prints "ready" on stdout once the node runs (and, with --join, is a
 * member), so a test can wait for that line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"

static void usage(void)
{
	fprintf(stderr,
	        "usage: dqnode --id N --address IP:PORT --dir DIR "
	        "[--bootstrap] [--join SEED] [--latency MS] [--recover ID=ADDR,...]\n");
	exit(2);
}

/* Parses "ID=ADDR,ID=ADDR" into voters and recovers the node's dir. */
static int run_recover(const struct db_node_config *c, const char *list)
{
	struct db_member members[16];
	char copy[2048], *item, *save = NULL;
	unsigned n = 0;
	struct err e;

	snprintf(copy, sizeof copy, "%s", list);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (eq == NULL || n == 16) {
			fprintf(stderr,
			        "dqnode: --recover takes ID=ADDR,...\n");
			return 2;
		}
		*eq = '\0';
		members[n].id = strtoull(item, NULL, 10);
		snprintf(members[n].address, sizeof members[n].address, "%s",
		         eq + 1);
		members[n].role = WIRE_ROLE_VOTER;
		n++;
	}
	if (db_node_recover(c, members, n, &e) != 0) {
		fprintf(stderr, "dqnode: %s\n", e.msg);
		return 1;
	}
	printf("recovered\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"id", required_argument, NULL, 'i'},
	        {"address", required_argument, NULL, 'a'},
	        {"dir", required_argument, NULL, 'd'},
	        {"bootstrap", no_argument, NULL, 'b'},
	        {"join", required_argument, NULL, 'j'},
	        {"latency", required_argument, NULL, 'l'},
	        {"recover", required_argument, NULL, 'r'},
	        {NULL, 0, NULL, 0},
	};
	struct db_node_config c = {0};
	const char *join = NULL, *recover = NULL;
	char marker[PATH_MAX];
	struct db_node *node;
	sigset_t set;
	struct err e;
	int opt, sig;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'i':
			c.id = strtoull(optarg, NULL, 10);
			break;
		case 'a':
			c.address = optarg;
			break;
		case 'd':
			c.dir = optarg;
			break;
		case 'b':
			c.bootstrap = true;
			break;
		case 'j':
			join = optarg;
			break;
		case 'l':
			c.latency_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			recover = optarg;
			break;
		default:
			usage();
		}
	}
	if (c.id == 0 || c.address == NULL || c.dir == NULL)
		usage();
	snprintf(marker, sizeof marker, "%s.initialized", c.dir);
	c.marker_path = marker;

	if (recover != NULL)
		return run_recover(&c, recover);

	/* dqlite's thread must not take our signals: we wait for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (db_node_start(&c, &node, &e) != 0) {
		fprintf(stderr, "dqnode: %s\n", e.msg);
		return 1;
	}
	if (join != NULL) {
		const char *seed[] = {join};
		struct db_client_config cc = {.addresses = seed,
		                              .naddresses = 1,
		                              .timeout_ms = 20000};
		struct db_client *client;
		int rv;

		rv = db_client_create(&cc, &client, &e);
		if (rv == 0)
			rv = db_membership_join(client, c.id, c.address, &e);
		if (rv == 0 || rv == -EEXIST)
			rv = db_node_mark_initialized(node, &e);
		db_client_destroy(client);
		if (rv != 0) {
			fprintf(stderr, "dqnode: %s\n", e.msg);
			db_node_stop(node);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	db_node_stop(node);
	return 0;
}
