/* consensus/conn: one blocking connection to a dqlite node, private to
 * consensus/. Every read and write is bounded by a deadline. */
#ifndef CAIRN_CONSENSUS_CONN_H
#define CAIRN_CONSENSUS_CONN_H

#include <sys/socket.h>

#include "consensus/consensus.h"

struct db_conn {
	int fd; /* -1 when closed */
	char address[128];
	uint32_t db_id;
	bool has_db;
	struct buf out;         /* the request being sent */
	struct buf in;          /* the last response body */
	struct wire_header hdr; /* the last response header */
	uint64_t deadline_ms;   /* monotonic; set per operation */
};

void db__conn_init(struct db_conn *c);
/* Connects, sends the protocol version. */
int db__conn_open(struct db_conn *c, const char *address, uint64_t deadline_ms,
                  db_dial_fn dial, void *dial_data, struct err *e);
void db__conn_close(struct db_conn *c);
/* Sends c->out, reads one response into c->hdr/c->in. A FAILURE answer
 * becomes an error (db__failure_code). On I/O errors the connection is
 * closed. */
int db__conn_roundtrip(struct db_conn *c, struct err *e);
/* Reads the next response (ROWS batches after PART). */
int db__conn_recv(struct db_conn *c, struct err *e);
/* True when an idle connection was closed or broken by the peer. */
bool db__conn_is_stale(const struct db_conn *c);
/* Maps a dqlite/SQLite failure code to cairn's errno convention. */
int db__failure_errno(uint64_t code);

/* Socket helpers shared with the node's connect function. */
int db__address_parse(const char *address, struct sockaddr_storage *sa,
                      socklen_t *len, struct err *e);
/* The plain-TCP dialer (db_dial_fn), for tests and tools. */
int db__dial_tcp(void *data, const char *address, unsigned timeout_ms,
                 struct err *e);
int db__socket_connect(const char *address, unsigned timeout_ms, struct err *e);

uint64_t db__now_ms(void);

#endif /* CAIRN_CONSENSUS_CONN_H */
