/* `cairn storage upload`: a file of any size streamed to a dir storage of
 * the node the client talks to, over cairn.Storage/Upload (the protocol is
 * described in proto/storage.proto): the request names the target and the
 * size, the agent checks everything and says "ready", then the file goes
 * in flow-controlled DATA messages and the answer is the new volid.
 * Progress goes to stderr once a second (rewritten in place on a
 * terminal). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/lib.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

#define UPLOAD_METHOD     "cairn.Storage/Upload"
#define CHUNK_DEFAULT     ((size_t)128 * 1024) /* half the RPC window */
#define CONNECT_TIMEOUT   30000
#define PROGRESS_EVERY_MS 1000

struct upload {
	uv_loop_t *loop;
	struct rpc_conn *conn;
	struct rpc_call call;
	bool is_ready, is_half_closed, is_done;
	uint8_t *request; /* packed */
	size_t request_len;
	/* the file */
	const char *file;
	int fd;
	uint64_t size, sent;
	char *chunk;
	size_t chunk_size, chunk_len; /* chunk_len > 0: read, not yet sent */
	/* progress */
	uv_timer_t timer;
	bool has_timer, is_tty, has_line;
	uint64_t started_ms, tick_ms, tick_sent;
	/* the end */
	int exit_status;
	char error[ERR_MSG_MAX];
	char local_error[ERR_MSG_MAX]; /* why we cancelled, if we did */
	char volid[1100];
	char upid[600];
};

static uint64_t now_ms(void)
{
	return clock_mono_ms(clock_real());
}

/* "512 B", "12.0 KiB", "123.4 MiB", "1.0 GiB"... */
static const char *human(uint64_t bytes, char *out, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(out, size, "%" PRIu64 " B", bytes);
		return out;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < CAIRN_ARRAY_SIZE(units)) {
		v /= 1024;
		i++;
	}
	snprintf(out, size, "%.1f %s", v, units[i]);
	return out;
}

static void progress_line(struct upload *u)
{
	uint64_t now = now_ms(), dt = now - u->tick_ms;
	char done[32], total[32], rate[32];
	double pct =
	        u->size > 0 ? 100.0 * (double)u->sent / (double)u->size : 100.0;
	double per_s =
	        dt > 0 ? (double)(u->sent - u->tick_sent) * 1000.0 / (double)dt
	               : 0;

	human(u->sent, done, sizeof done);
	human(u->size, total, sizeof total);
	human((uint64_t)per_s, rate, sizeof rate);
	fprintf(stderr, "%suploaded %s of %s (%.0f%%), %s/s%s",
	        u->is_tty ? "\r" : "", done, total, pct, rate,
	        u->is_tty ? "\033[K" : "\n");
	fflush(stderr);
	u->has_line = u->is_tty;
	u->tick_ms = now;
	u->tick_sent = u->sent;
}

static void on_tick(uv_timer_t *t)
{
	progress_line(t->data);
}

static void end_line(struct upload *u)
{
	if (u->has_line)
		fputc('\n', stderr);
	u->has_line = false;
}

static void finish(struct upload *u, int exit_status, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);
static void finish(struct upload *u, int exit_status, const char *fmt, ...)
{
	va_list ap;

	if (u->is_done)
		return;
	u->is_done = true;
	u->exit_status = exit_status;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(u->error, sizeof u->error, fmt, ap);
		va_end(ap);
	}
	if (u->has_timer) {
		uv_close((uv_handle_t *)&u->timer, NULL);
		u->has_timer = false;
	}
	if (u->conn != NULL)
		rpc_conn_close(u->conn);
}

/* Our side cannot go on: the call is cancelled, and on_done (which always
 * follows) tells why: the agent's reason if it failed the call first,
 * else ours. */
static void give_up(struct upload *u, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static void give_up(struct upload *u, const char *fmt, ...)
{
	struct err e;
	va_list ap;

	if (u->local_error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(u->local_error, sizeof u->local_error, fmt, ap);
		va_end(ap);
	}
	rpc_call_cancel(&u->call, &e); /* -EPIPE: it ended already */
}

/* Sends what the window lets through; half-closes after the last byte. */
static void pump(struct upload *u)
{
	struct err e;
	ssize_t n;
	int rv;

	while (u->sent < u->size && !u->is_done && u->local_error[0] == '\0') {
		if (u->chunk_len == 0) {
			size_t want = u->size - u->sent < u->chunk_size
			                      ? (size_t)(u->size - u->sent)
			                      : u->chunk_size;

			n = read(u->fd, u->chunk, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				give_up(u, "%s: %s", u->file,
				        n < 0 ? strerror(errno)
				              : "the file got shorter while it "
				                "was sent");
				return;
			}
			u->chunk_len = (size_t)n;
		}
		rv = rpc_call_send(&u->call, u->chunk, u->chunk_len, &e);
		if (rv == -EAGAIN)
			return; /* on_writable */
		if (rv != 0) {
			give_up(u, "%s", e.msg);
			return;
		}
		u->sent += u->chunk_len;
		u->chunk_len = 0;
	}
	if (u->sent == u->size && !u->is_half_closed && !u->is_done &&
	    u->local_error[0] == '\0') {
		u->is_half_closed = true;
		if (rpc_call_half_close(&u->call, &e) != 0)
			give_up(u, "%s", e.msg);
	}
}

static void on_message(struct rpc_call *call, const void *data, size_t len)
{
	struct upload *u = call->data;
	Cairn__StorageStreamUploadReady *ready;
	struct err e;

	rpc_call_consume(call, len, &e);
	if (u->is_ready) {
		give_up(u, "the agent sent more than 'ready'");
		return;
	}
	ready = cairn__storage_stream_upload_ready__unpack(NULL, len, data);
	if (ready == NULL) {
		give_up(u, "the agent sent a malformed 'ready'");
		return;
	}
	snprintf(u->volid, sizeof u->volid, "%s",
	         ready->volid != NULL ? ready->volid : "");
	snprintf(u->upid, sizeof u->upid, "%s",
	         ready->upid != NULL ? ready->upid : "");
	if (ready->has_chunk_max && ready->chunk_max >= 4096 &&
	    ready->chunk_max < u->chunk_size)
		u->chunk_size = ready->chunk_max;
	cairn__storage_stream_upload_ready__free_unpacked(ready, NULL);
	u->is_ready = true;
	u->started_ms = u->tick_ms = now_ms();
	uv_timer_init(u->loop, &u->timer);
	u->timer.data = u;
	u->has_timer = true;
	uv_timer_start(&u->timer, on_tick, PROGRESS_EVERY_MS,
	               PROGRESS_EVERY_MS);
	pump(u);
}

static void on_writable(struct rpc_call *call)
{
	pump(call->data);
}

static void on_done(struct rpc_call *call, enum rpc_status status,
                    const char *message, const void *payload, size_t len)
{
	struct upload *u = call->data;
	Cairn__StorageStreamUploadResponse *resp;

	if (status == RPC_STATUS_CANCELLED && u->local_error[0] != '\0')
		message = u->local_error;
	if (status != RPC_STATUS_OK) {
		if (u->is_ready && u->sent < u->size)
			finish(u, CLI_EXIT_FAILED,
			       "%s (after %" PRIu64 " of %" PRIu64 " bytes)",
			       message[0] != '\0' ? message
			                          : rpc_status_name(status),
			       u->sent, u->size);
		else
			finish(u, CLI_EXIT_FAILED, "%s",
			       message[0] != '\0' ? message
			                          : rpc_status_name(status));
		return;
	}
	resp = cairn__storage_stream_upload_response__unpack(NULL, len,
	                                                     payload);
	if (resp == NULL || resp->volid == NULL || !u->is_half_closed) {
		if (resp != NULL)
			cairn__storage_stream_upload_response__free_unpacked(
			        resp, NULL);
		finish(u, CLI_EXIT_FAILED, "the agent sent a malformed answer");
		return;
	}
	snprintf(u->volid, sizeof u->volid, "%s", resp->volid);
	cairn__storage_stream_upload_response__free_unpacked(resp, NULL);
	finish(u, 0, NULL);
}

static const struct rpc_call_cbs upload_cbs = {
        .on_message = on_message,
        .on_writable = on_writable,
        .on_done = on_done,
};

static void on_ready(struct rpc_conn *c, int status, void *data)
{
	struct upload *u = data;
	struct err e;

	(void)status;
	u->call.data = u;
	if (rpc_call_start(&u->call, rpc_conn_session(c), &upload_cbs,
	                   RPC_CALL_BIDI, UPLOAD_METHOD, u->request,
	                   u->request_len, 0, &e) != 0) {
		finish(u, CLI_EXIT_FAILED, "%s", e.msg);
		return;
	}
}

static void on_closed(struct rpc_conn *c, int status, void *data)
{
	struct upload *u = data;

	(void)status;
	u->conn = NULL;
	finish(u, CLI_EXIT_FAILED, "cannot reach the agent: %s",
	       rpc_conn_error(c)[0] != '\0' ? rpc_conn_error(c)
	                                    : "connection closed");
}

static int connect_agent(struct upload *u, const struct cli_target *t,
                         struct rpc_tls_ctx **ctx, struct err *e)
{
	char address[300];
	int rv;

	if (t->host == NULL)
		return rpc_conn_connect_unix(u->loop, t->socket_path, on_ready,
		                             on_closed, u, &u->conn, e);
	rv = cli_tls_ctx(t->ca, ctx, e);
	if (rv != 0)
		return rv;
	cli_rpc_address(t->host, address, sizeof address);
	return rpc_conn_connect_tls(u->loop, *ctx, address, CONNECT_TIMEOUT,
	                            on_ready, on_closed, u, &u->conn, e);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcasecmp(s + n - m, suffix) == 0;
}

/* The content type a file name suggests, or NULL. */
static const char *content_of(const char *name)
{
	static const struct {
		const char *suffix, *content;
	} kinds[] = {
	        {".iso", "iso"},        {".img", "iso"},
	        {".tar.gz", "vztmpl"},  {".tar.xz", "vztmpl"},
	        {".tar.zst", "vztmpl"}, {".tar.bz2", "vztmpl"},
	        {".tar", "vztmpl"},     {".qcow2", "import"},
	        {".raw", "import"},     {".vmdk", "import"},
	        {".ova", "import"},     {".ovf", "import"},
	};
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(kinds); i++) {
		if (has_suffix(name, kinds[i].suffix))
			return kinds[i].content;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cairn storage upload STORAGE FILE [--content "
	        "iso|vztmpl|import]\n"
	        "                            [--filename NAME] [--checksum HEX "
	        "--checksum-algorithm ALG]\n"
	        "\n"
	        "Streams FILE, of any size, into the dir storage STORAGE of the "
	        "node cairn talks\n"
	        "to (this node, or --host with --token and --ca), as an imgcopy "
	        "task. The agent\n"
	        "checks the caller (Datastore.AllocateTemplate on "
	        "/storage/STORAGE), the name\n"
	        "and the room before the first byte; a failed upload leaves "
	        "nothing behind.\n"
	        "\n"
	        "  --content C      iso, vztmpl or import (default: from the "
	        "file name: .iso .img;\n"
	        "                   .tar[.gz|.xz|.zst|.bz2]; .qcow2 .raw .vmdk "
	        ".ova .ovf)\n"
	        "  --filename NAME  the name on the storage (default: FILE's "
	        "base name)\n"
	        "  --checksum HEX --checksum-algorithm "
	        "md5|sha1|sha224|sha256|sha384|sha512\n"
	        "                   the agent checks the bytes it got against "
	        "it\n"
	        "\n"
	        "Progress goes to stderr, the new volume id to stdout.\n"
	        "Exit status: 0 uploaded, 1 failed (the agent's reason on "
	        "stderr), 2 bad usage.\n");
}

int cli_storage_upload(const struct cli_target *t, int argc, char **argv)
{
	static const struct option options[] = {
	        {"content", required_argument, NULL, 'c'},
	        {"filename", required_argument, NULL, 'f'},
	        {"checksum", required_argument, NULL, 's'},
	        {"checksum-algorithm", required_argument, NULL, 'a'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	Cairn__StorageStreamUploadRequest req =
	        CAIRN__STORAGE_STREAM_UPLOAD_REQUEST__INIT;
	const char *content = NULL, *filename = NULL, *checksum = NULL,
	           *algorithm = NULL, *slash;
	struct rpc_tls_ctx *ctx = NULL;
	struct upload u = {.fd = -1, .chunk_size = CHUNK_DEFAULT};
	char cred[4200], total[32], rate[32];
	uv_loop_t loop;
	struct stat sb;
	struct err e;
	double secs;
	int opt, rv;

	/* argv[0] is "upload"; options may follow the arguments (0: glibc
	 * starts over, main() parsed with getopt already) */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			content = optarg;
			break;
		case 'f':
			filename = optarg;
			break;
		case 's':
			checksum = optarg;
			break;
		case 'a':
			algorithm = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((checksum != NULL) != (algorithm != NULL)) {
		fprintf(stderr, "cairn: --checksum and --checksum-algorithm "
		                "go together\n");
		return CLI_EXIT_USAGE;
	}
	u.file = argv[optind + 1];
	slash = strrchr(u.file, '/');
	if (filename == NULL)
		filename = slash != NULL ? slash + 1 : u.file;
	if (content == NULL)
		content = content_of(filename);
	if (content == NULL) {
		fprintf(stderr,
		        "cairn: cannot tell the content type of '%s': give "
		        "--content iso|vztmpl|import\n",
		        filename);
		return CLI_EXIT_USAGE;
	}
	u.fd = open(u.file, O_RDONLY | O_CLOEXEC);
	if (u.fd < 0 || fstat(u.fd, &sb) != 0) {
		fprintf(stderr, "cairn: %s: %s\n", u.file, strerror(errno));
		if (u.fd >= 0)
			close(u.fd);
		return CLI_EXIT_FAILED;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "cairn: %s: not a regular file\n", u.file);
		close(u.fd);
		return CLI_EXIT_FAILED;
	}
	u.size = (uint64_t)sb.st_size;
	req.storage = argv[optind];
	req.content = (char *)content;
	req.filename = (char *)filename;
	req.has_size = true;
	req.size = u.size;
	req.checksum = (char *)checksum;
	req.checksum_algorithm = (char *)algorithm;
	if (t->host != NULL) {
		cli_token_credential(t->token, cred, sizeof cred);
		req.principal = cred;
	}
	u.request_len = protobuf_c_message_get_packed_size(&req.base);
	u.request = mem_alloc(u.request_len + 1);
	u.chunk = mem_alloc(u.chunk_size);
	if (u.request == NULL || u.chunk == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		rv = CLI_EXIT_FAILED;
		goto out;
	}
	protobuf_c_message_pack(&req.base, u.request);
	explicit_bzero(cred, sizeof cred);
	u.is_tty = isatty(STDERR_FILENO) == 1;
	/* A connection the agent closes must fail the upload, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	u.loop = &loop;
	rv = connect_agent(&u, t, &ctx, &e);
	if (rv != 0) {
		fprintf(stderr, "cairn: %s\n", e.msg);
		rv = CLI_EXIT_FAILED;
	} else {
		uv_run(&loop, UV_RUN_DEFAULT);
		rv = u.exit_status;
	}
	uv_loop_close(&loop);
	if (ctx != NULL)
		rpc_tls_ctx_destroy(ctx);
	end_line(&u);
	if (rv == 0) {
		secs = (double)(now_ms() - u.started_ms) / 1000.0;
		human(u.size, total, sizeof total);
		human(secs > 0 ? (uint64_t)((double)u.size / secs) : u.size,
		      rate, sizeof rate);
		fprintf(stderr, "uploaded %s in %.1f s (%s/s) as %s, task %s\n",
		        total, secs, rate, u.volid, u.upid);
		printf("%s\n", u.volid);
	} else if (u.error[0] != '\0') {
		fprintf(stderr, "cairn: %s\n", u.error);
	}
out:
	if (u.request != NULL)
		explicit_bzero(u.request, u.request_len);
	mem_free(u.request);
	mem_free(u.chunk);
	close(u.fd);
	return rv;
}
