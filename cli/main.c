/* cairn: the command-line client of a cairn cluster. */
#include <stdio.h>
#include <string.h>

#include "lib/lib.h"
#include "rpc/rpc.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: cairn COMMAND [ARGS...]\n"
	        "\n"
	        "cairn drives a cairn cluster (virtual machines, containers,\n"
	        "storage, HA) through any of its nodes.\n"
	        "\n"
	        "Commands:\n"
	        "  version      print cairn's version (also: --version)\n"
	        "  help         this text (also: --help)\n"
	        "\n"
	        "Exit status: 0 success, 1 the command failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") ||
	    !strcmp(cmd, "version")) {
		printf("cairn %s (commit %s, %s)\n", cairn_version(),
		       cairn_repoid(), rpc_tls_library_version());
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cairn: unknown command '%s'\nTry 'cairn help'.\n",
	        cmd);
	return 2;
}
