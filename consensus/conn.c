/* One blocking, deadline-bounded connection to a dqlite node. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "consensus/conn.h"

#define OUT_MAX ((size_t)16 << 20)

/* SQLite's and dqlite's codes that decide what a client does next. */
#define SQLITE_BUSY_PRIMARY          5
#define SQLITE_IOERR_NOT_LEADER      10250
#define SQLITE_IOERR_LEADERSHIP_LOST 10506

uint64_t db__now_ms(void)
{
	return clock_mono_ms(clock_real());
}

void db__conn_init(struct db_conn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	buf_init(&c->out, OUT_MAX);
	buf_init(&c->in, WIRE_BODY_MAX_DEFAULT);
}

void db__conn_close(struct db_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->has_db = false;
	buf_free(&c->out);
	buf_free(&c->in);
}

int db__failure_errno(uint64_t code)
{
	if (code == SQLITE_IOERR_NOT_LEADER)
		return -ENOTCONN;
	if (code == SQLITE_IOERR_LEADERSHIP_LOST)
		return -ECONNABORTED;
	if ((code & 0xff) == SQLITE_BUSY_PRIMARY)
		return -EBUSY;
	return -EREMOTEIO;
}

static int remaining_ms(struct db_conn *c)
{
	uint64_t now = db__now_ms();

	if (now >= c->deadline_ms)
		return 0;
	return (int)(c->deadline_ms - now);
}

/* Waits until fd is ready for events, before the deadline. */
static int wait_fd(struct db_conn *c, short events, const char *what,
                   struct err *e)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	int rv, left;

	for (;;) {
		left = remaining_ms(c);
		if (left == 0)
			return err_set(e, -ETIMEDOUT,
			               "%s %s: no answer in time", what,
			               c->address);
		rv = poll(&pfd, 1, left);
		if (rv > 0)
			return 0;
		if (rv < 0 && errno != EINTR)
			return err_sys(e, -errno, "poll %s", c->address);
	}
}

static int write_all(struct db_conn *c, const void *data, size_t len,
                     struct err *e)
{
	const char *p = data;
	ssize_t n;
	int rv;

	while (len > 0) {
		rv = wait_fd(c, POLLOUT, "send to", e);
		if (rv != 0)
			return rv;
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return err_sys(e, -errno, "send to %s", c->address);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(struct db_conn *c, void *data, size_t len, struct err *e)
{
	char *p = data;
	int one = 1;
	ssize_t n;
	int rv;

	while (len > 0) {
		rv = wait_fd(c, POLLIN, "read from", e);
		if (rv != 0)
			return rv;
		/* Without QUICKACK before each read every further ~4 KiB batch
		 * of a result waits 40 ms for a delayed ACK (trap 5). */
		setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
		n = recv(c->fd, p, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return err_sys(e, -errno, "read from %s", c->address);
		if (n == 0)
			return err_set(e, -ECONNRESET,
			               "%s closed the "
			               "connection",
			               c->address);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int db__conn_open(struct db_conn *c, const char *address, uint64_t deadline_ms,
                  db_dial_fn dial, void *dial_data, struct err *e)
{
	uint64_t now = db__now_ms();
	int rv;

	db__conn_close(c);
	db__conn_init(c);
	if (strlen(address) >= sizeof c->address)
		return err_set(e, -EINVAL, "address too long: %s", address);
	strcpy(c->address, address);
	c->deadline_ms = deadline_ms;
	rv = (dial != NULL ? dial : db__dial_tcp)(
	        dial_data, address,
	        now >= deadline_ms ? 1 : (unsigned)(deadline_ms - now), e);
	if (rv < 0)
		return rv;
	c->fd = rv;
	rv = wire_handshake_encode(&c->out, e);
	if (rv == 0)
		rv = write_all(c, c->out.data, c->out.len, e);
	buf_reset(&c->out);
	if (rv != 0)
		db__conn_close(c);
	return rv;
}

bool db__conn_is_stale(const struct db_conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};

	if (c->fd < 0)
		return true;
	/* Between requests a dqlite connection has nothing to read: any
	 * readable event is an end of stream or an error. */
	return poll(&pfd, 1, 0) != 0;
}

int db__conn_recv(struct db_conn *c, struct err *e)
{
	uint8_t head[WIRE_HEADER_SIZE];
	size_t len;
	int rv;

	rv = read_all(c, head, sizeof head, e);
	if (rv == 0)
		rv = wire_header_decode(head, WIRE_BODY_MAX_DEFAULT, &c->hdr,
		                        e);
	if (rv != 0)
		goto err_close;
	len = wire_header_body_len(&c->hdr);
	buf_reset(&c->in);
	rv = buf_reserve(&c->in, len);
	if (rv != 0) {
		err_set(e, rv, "response of %zu bytes from %s", len,
		        c->address);
		goto err_close;
	}
	rv = read_all(c, c->in.data, len, e);
	if (rv != 0)
		goto err_close;
	c->in.len = len;
	if (c->hdr.type == WIRE_RESPONSE_FAILURE) {
		struct wire_failure f;

		rv = wire_failure_decode(c->hdr.type, c->in.data, len, &f, e);
		if (rv != 0)
			goto err_close;
		return err_set(e, db__failure_errno(f.code),
		               "%s: %s (code %llu)", c->address, f.message,
		               (unsigned long long)f.code);
	}
	return 0;

err_close:
	/* After a framing or I/O error the stream's position is unknown. */
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->has_db = false;
	return rv;
}

int db__conn_roundtrip(struct db_conn *c, struct err *e)
{
	int rv;

	if (c->fd < 0)
		return err_set(e, -ENOTCONN, "not connected");
	rv = write_all(c, c->out.data, c->out.len, e);
	buf_reset(&c->out);
	if (rv != 0) {
		close(c->fd);
		c->fd = -1;
		c->has_db = false;
		return rv;
	}
	return db__conn_recv(c, e);
}
