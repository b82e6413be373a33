/* Proxmox task ids (UPIDs) and the task log files behind /nodes/{node}/tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/task.h"

/* ------------------------------------------------------------- UPIDs */

/* Perl's \s on a byte string. */
static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
static bool node_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alnum((unsigned char)s[0]) ||
	    !is_alnum((unsigned char)s[len - 1]))
		return false;
	for (i = 1; i + 1 < len; i++) {
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* The offending byte of a [^:\s/]* field, or NULL when there is none. */
static const char *field_bad_char(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == ':' || s[i] == '/' || s[i] == '\0' ||
		    is_space((unsigned char)s[i]))
			return s + i;
	}
	return NULL;
}

static const char *char_name(char c)
{
	switch (c) {
	case ':':
		return "':'";
	case '/':
		return "'/'";
	case ' ':
		return "a space";
	case '\0':
		return "a NUL byte";
	default:
		return "white space";
	}
}

/* Checks one of the text fields type, id, user: `value` (len bytes) must
 * match [^:\s/]+ ([^:\s/]* when may_be_empty) and fit in cap - 1 bytes. */
static int check_field(const char *what, const char *value, size_t len,
                       size_t cap, bool may_be_empty, struct err *e)
{
	const char *bad;

	if (len == 0 && !may_be_empty)
		return err_set(e, -EINVAL, "UPID %s is empty", what);
	if (len >= cap)
		return err_set(e, -EINVAL, "UPID %s is longer than %zu bytes",
		               what, cap - 1);
	bad = field_bad_char(value, len);
	if (bad != NULL)
		return err_set(e, -EINVAL, "UPID %s '%.*s' contains %s", what,
		               (int)len, value, char_name(*bad));
	return 0;
}

int task_upid_format(const struct task_upid *u, char *out, size_t size,
                     struct err *e)
{
	size_t node_len = strnlen(u->node, sizeof u->node);
	int n, rv;

	if (node_len == sizeof u->node)
		return err_set(e, -EINVAL, "UPID node is not terminated");
	if (!node_ok(u->node, node_len))
		return err_set(e, -EINVAL,
		               "UPID node '%s' is not a host name "
		               "([a-zA-Z0-9] and inner '-')",
		               u->node);
	if (u->pid > TASK_UPID_NUM_MAX)
		return err_set(e, -EINVAL, "UPID pid %08X is above 7FFFFFFF",
		               u->pid);
	if (u->pstart > TASK_UPID_NUM_MAX)
		return err_set(e, -EINVAL, "UPID pstart %08X is above 7FFFFFFF",
		               u->pstart);
	if (u->starttime > TASK_UPID_NUM_MAX)
		return err_set(e, -EINVAL,
		               "UPID starttime %08X is above 7FFFFFFF",
		               u->starttime);
	rv = check_field("type", u->type, strnlen(u->type, sizeof u->type),
	                 sizeof u->type, false, e);
	if (rv == 0)
		rv = check_field("id", u->id, strnlen(u->id, sizeof u->id),
		                 sizeof u->id, true, e);
	if (rv == 0)
		rv = check_field("user", u->user,
		                 strnlen(u->user, sizeof u->user),
		                 sizeof u->user, false, e);
	if (rv != 0)
		return rv;
	n = snprintf(out, size, "UPID:%s:%08X:%08X:%08X:%s:%s:%s:", u->node,
	             u->pid, u->pstart, u->starttime, u->type, u->id, u->user);
	if (n < 0 || (size_t)n >= size)
		return err_set(e, -ERANGE, "UPID needs %d bytes, have %zu",
		               n + 1, size);
	return 0;
}

static int bad_upid(struct err *e, const char *text, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);

static int bad_upid(struct err *e, const char *text, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	return err_set(e, -EINVAL, "invalid UPID '%.80s%s': %s", text,
	               strnlen(text, 81) > 80 ? "..." : "", reason);
}

/* min..max hex digits (either case), value <= TASK_UPID_NUM_MAX. */
static bool parse_hex(const char *s, size_t len, size_t min_digits,
                      size_t max_digits, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len < min_digits || len > max_digits)
		return false;
	for (i = 0; i < len; i++) {
		int d = hex_digit((unsigned char)s[i]);

		if (d < 0)
			return false;
		v = v * 16 + (uint64_t)d;
	}
	if (v > TASK_UPID_NUM_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

int task_upid_parse(const char *text, struct task_upid *out, struct err *e)
{
	static const char *const number_names[] = {"pid", "pstart",
	                                           "starttime"};
	/* node, pid, pstart, starttime, type, id, user */
	const char *field[7];
	size_t len[7], text_len, nfields, i;
	struct task_upid u;
	const char *p, *colon;
	uint32_t *numbers[] = {&u.pid, &u.pstart, &u.starttime};
	int rv;

	text_len = strnlen(text, TASK_UPID_MAX + 1);
	if (text_len > TASK_UPID_MAX)
		return bad_upid(e, text, "longer than %d bytes", TASK_UPID_MAX);
	if (strncmp(text, "UPID:", 5) != 0)
		return bad_upid(e, text, "does not start with 'UPID:'");
	/* No field holds a ':', so splitting on ':' is the regex's split. */
	nfields = 1;
	for (p = text; *p != '\0'; p++)
		nfields += *p == ':';
	if (nfields != 9 || text[text_len - 1] != ':')
		return bad_upid(e, text,
		                "has %zu ':'-separated fields, not 9 ending "
		                "in ':'",
		                nfields);
	p = text + 5;
	for (i = 0; i < 7; i++) {
		colon = strchr(p, ':');
		CAIRN_ASSERT(colon != NULL);
		field[i] = p;
		len[i] = (size_t)(colon - p);
		p = colon + 1;
	}

	memset(&u, 0, sizeof u);
	if (len[0] >= sizeof u.node || !node_ok(field[0], len[0]))
		return bad_upid(e, text, "node '%.*s' is not a host name",
		                (int)len[0], field[0]);
	memcpy(u.node, field[0], len[0]);
	for (i = 0; i < 3; i++) {
		if (!parse_hex(field[1 + i], len[1 + i], 8, i == 1 ? 9 : 8,
		               numbers[i]))
			return bad_upid(e, text,
			                "%s '%.*s' is not %s hex digits up to "
			                "7FFFFFFF",
			                number_names[i], (int)len[1 + i],
			                field[1 + i], i == 1 ? "8 or 9" : "8");
	}
	rv = check_field("type", field[4], len[4], sizeof u.type, false, e);
	if (rv == 0)
		rv = check_field("id", field[5], len[5], sizeof u.id, true, e);
	if (rv == 0)
		rv = check_field("user", field[6], len[6], sizeof u.user, false,
		                 e);
	if (rv != 0 && e != NULL)
		return err_wrap(e, "invalid UPID '%.80s%s'", text,
		                text_len > 80 ? "..." : "");
	if (rv != 0)
		return rv;
	memcpy(u.type, field[4], len[4]);
	memcpy(u.id, field[5], len[5]);
	memcpy(u.user, field[6], len[6]);
	*out = u;
	return 0;
}

uint32_t task_pid_seed(uint32_t agent_pid, uint32_t agent_start)
{
	/* murmur3's finaliser: nearby pids and start times land far apart,
	 * so two runs of the agent do not walk the same stretch of pids. */
	uint32_t h = agent_pid * UINT32_C(0x9E3779B1) ^ agent_start;

	h ^= h >> 16;
	h *= UINT32_C(0x85EBCA6B);
	h ^= h >> 13;
	h *= UINT32_C(0xC2B2AE35);
	h ^= h >> 16;
	h &= TASK_UPID_NUM_MAX;
	return h == 0 ? 1 : h;
}

uint32_t task_next_pid(uint32_t *counter)
{
	uint32_t pid = *counter;

	if (pid == 0 || pid > TASK_UPID_NUM_MAX)
		pid = 1;
	*counter = pid == TASK_UPID_NUM_MAX ? 1 : pid + 1;
	return pid;
}

int task_pstart_self(uint32_t *out, struct err *e)
{
	struct buf stat;
	unsigned long long ticks;
	const char *p;
	char *end;
	int field, rv;

	buf_init(&stat, 4096);
	rv = file_read_all("/proc/self/stat", 4096, &stat, e);
	if (rv != 0)
		goto cleanup;
	/* "pid (comm) state ...": comm may hold spaces and ')', so fields are
	 * counted from the last ')'; the state is field 3, starttime 22. */
	p = stat.data != NULL ? strrchr(stat.data, ')') : NULL;
	for (field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL) {
		rv = err_set(e, -EINVAL, "/proc/self/stat: no starttime field");
		goto cleanup;
	}
	errno = 0;
	ticks = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1) {
		rv = err_set(e, -EINVAL, "/proc/self/stat: bad starttime");
		goto cleanup;
	}
	*out = (uint32_t)(ticks & TASK_UPID_NUM_MAX);
cleanup:
	buf_free(&stat);
	return rv;
}

bool task_type_known(const char *type)
{
	/* pve-manager, qemu-server and pve-container fork_worker() names. */
	static const char *const types[] = {
	        "qmcreate",   "qmstart",       "qmstop",        "qmshutdown",
	        "qmreboot",   "qmreset",       "qmpause",       "qmsuspend",
	        "qmresume",   "qmdestroy",     "qmclone",       "qmtemplate",
	        "qmsnapshot", "qmdelsnapshot", "qmrollback",    "qmconfig",
	        "qmmove",     "qmigrate",      "resize",        "vzcreate",
	        "vzstart",    "vzstop",        "vzshutdown",    "vzreboot",
	        "vzsuspend",  "vzresume",      "vzdestroy",     "vzclone",
	        "vztemplate", "vzsnapshot",    "vzdelsnapshot", "vzrollback",
	        "vzmigrate",  "hastart",       "hastop",        "hamigrate",
	        "imgcopy",    "download",      "vncproxy",      "startall",
	        "stopall",    "srvreload",     "aptupdate",     "imgdel",
	};
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(types); i++) {
		if (strcmp(type, types[i]) == 0)
			return true;
	}
	return false;
}

/* --------------------------------------------------------- log files */

#define NAME_HASH_PREFIX (TASK_LOG_NAME_MAX - 17) /* then '~' + 16 hex */

static bool name_keeps(unsigned char c)
{
	return is_alnum(c) || c == '@' || c == '!' || c == '.' || c == ',' ||
	       c == '+' || c == '=' || c == '-';
}

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = UINT64_C(0xCBF29CE484222325);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001B3);
	}
	return h;
}

int task_log_file_name(const char *upid, char *out, size_t size, struct err *e)
{
	static const char hex[] = "0123456789ABCDEF";
	/* The longest UPID escapes to 3 bytes a byte. */
	char name[TASK_UPID_MAX * 3 + 1];
	struct task_upid parsed;
	size_t len = 0;
	const char *p;
	int rv;

	rv = task_upid_parse(upid, &parsed, e);
	if (rv != 0)
		return rv;
	for (p = upid; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == ':') {
			name[len++] = '_';
		} else if (name_keeps(c)) {
			name[len++] = (char)c;
		} else {
			name[len++] = '%';
			name[len++] = hex[c >> 4];
			name[len++] = hex[c & 0xF];
		}
	}
	if (len > TASK_LOG_NAME_MAX) {
		/* File systems cap names (255 bytes, eCryptfs 143): keep a
		 * readable prefix and let the hash tell long UPIDs apart. */
		snprintf(name + NAME_HASH_PREFIX,
		         sizeof name - NAME_HASH_PREFIX, "~%016llX",
		         (unsigned long long)fnv1a64(upid));
		len = TASK_LOG_NAME_MAX;
	}
	name[len] = '\0';
	if (len >= size)
		return err_set(e, -ERANGE, "task log name needs %zu bytes",
		               len + 1);
	memcpy(out, name, len + 1);
	return 0;
}

static int log_path(const char *dir, const char *upid, char *path, size_t size,
                    struct err *e)
{
	char name[TASK_LOG_NAME_MAX + 1];
	int n, rv;

	rv = task_log_file_name(upid, name, sizeof name, e);
	if (rv != 0)
		return rv;
	n = snprintf(path, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		return err_set(e, -ENAMETOOLONG,
		               "task log dir '%.64s' is too long", dir);
	return 0;
}

struct task_log {
	int fd;
	char path[PATH_MAX];
};

/* Retries short writes; a regular file only returns one when it fills up
 * or a signal interrupts, and then the rest follows. */
static int write_all(int fd, const char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Where to cut text of len bytes so that it holds at most max bytes and
 * no split UTF-8 character. */
static size_t cut_at(const char *s, size_t len, size_t max)
{
	size_t cut = max, back;

	if (len <= cut)
		return len;
	for (back = 0;
	     back < 3 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80;
	     back++)
		cut--;
	return cut;
}

static size_t line_cut(const char *s, size_t len)
{
	return cut_at(s, len, TASK_LOG_LINE_MAX);
}

/* Writes text (len bytes) as lines, see task_log_append. */
static int write_lines(struct task_log *l, const char *text, size_t len)
{
	char *out;
	size_t out_len = 0, start = 0, end, n, i;
	int rv;

	if (len > 0 && text[len - 1] == '\n')
		len--;
	/* Each line gains a '\n' and loses at least the one that ended it. */
	out = mem_alloc(len + 2);
	if (out == NULL)
		return -ENOMEM;
	for (;;) {
		for (end = start; end < len && text[end] != '\n'; end++)
			;
		n = end - start;
		if (n > 0 && text[start + n - 1] == '\r')
			n--;
		n = line_cut(text + start, n);
		for (i = 0; i < n; i++) {
			char c = text[start + i];

			out[out_len++] = c == '\0' ? ' ' : c;
		}
		out[out_len++] = '\n';
		if (end >= len)
			break;
		start = end + 1;
	}
	rv = write_all(l->fd, out, out_len);
	mem_free(out);
	return rv;
}

int task_log_create(const char *dir, const char *upid, const char *first_line,
                    struct task_log **out, struct err *e)
{
	struct task_log *l;
	int rv;

	l = mem_alloc(sizeof *l);
	if (l == NULL)
		return err_set(e, -ENOMEM, "task log: out of memory");
	rv = log_path(dir, upid, l->path, sizeof l->path, e);
	if (rv != 0)
		goto err_after_alloc;
	l->fd = open(l->path,
	             O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC |
	                     O_NOFOLLOW,
	             0640);
	if (l->fd < 0) {
		rv = err_sys(e, -errno, "create task log %s", l->path);
		goto err_after_alloc;
	}
	rv = write_lines(l, first_line, strlen(first_line));
	if (rv != 0) {
		err_sys(e, rv, "write task log %s", l->path);
		goto err_after_open;
	}
	*out = l;
	return 0;

err_after_open:
	close(l->fd);
	unlink(l->path);
err_after_alloc:
	mem_free(l);
	return rv;
}

static int vappend(struct task_log *l, const char *fmt, va_list ap)
        CAIRN_PRINTF(2, 0);

static int vappend(struct task_log *l, const char *fmt, va_list ap)
{
	va_list ap2;
	char *text;
	size_t len;
	int n, rv;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	len = (size_t)n < TASK_LOG_APPEND_MAX ? (size_t)n : TASK_LOG_APPEND_MAX;
	text = mem_alloc(len + 1);
	if (text == NULL)
		return -ENOMEM;
	vsnprintf(text, len + 1, fmt, ap);
	rv = write_lines(l, text, len);
	mem_free(text);
	return rv;
}

int task_log_append(struct task_log *l, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = vappend(l, fmt, ap);
	va_end(ap);
	return rv;
}

int task_log_finish(struct task_log *l, const char *error)
{
	/* "TASK ERROR: " + a line + '\n' */
	char line[TASK_LOG_LINE_MAX + 16];
	size_t len, n;
	int rv;

	if (error == NULL) {
		len = (size_t)snprintf(line, sizeof line, "TASK OK");
	} else {
		n = strcspn(error, "\r\n");
		if (n == 0) {
			error = "unknown error";
			n = strlen(error);
		}
		len = (size_t)snprintf(line, sizeof line, "TASK ERROR: ");
		n = cut_at(error, n, TASK_LOG_LINE_MAX - len);
		memcpy(line + len, error, n);
		len += n;
	}
	line[len++] = '\n';
	/* No allocation here: the last line must get out. */
	rv = write_all(l->fd, line, len);
	if (close(l->fd) != 0 && rv == 0)
		rv = -errno;
	mem_free(l);
	return rv;
}

void task_log_close(struct task_log *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	mem_free(l);
}

/* Opens an existing log for reading; a FIFO planted in the directory must
 * not block us, hence O_NONBLOCK and the regular-file check. */
static int open_log(const char *dir, const char *upid, char *path, size_t size,
                    off_t *file_size, struct err *e)
{
	struct stat st;
	int fd, rv;

	rv = log_path(dir, upid, path, size, e);
	if (rv != 0)
		return rv;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return err_sys(e, -errno, "open task log %s", path);
	if (fstat(fd, &st) != 0) {
		rv = err_sys(e, -errno, "stat task log %s", path);
		close(fd);
		return rv;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, -EINVAL, "task log %s is not a file", path);
	}
	*file_size = st.st_size;
	return fd;
}

/* Length of the valid UTF-8 character at s (n bytes available), 0 when
 * there is none: jansson's rules (no overlong forms, no surrogates, at
 * most U+10FFFF). */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	}
	return len;
}

/* A JSON string of a log line, with each byte that is not part of valid
 * UTF-8 read as '?'; NULL when out of memory. s is changed in place. */
static json_t *line_text(char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_char_len((const unsigned char *)s + i, len - i);
		if (n == 0) {
			s[i] = '?';
			n = 1;
		}
		i += n;
	}
	return json_stringn(s, len);
}

struct log_reader {
	json_t *lines;
	unsigned start, limit;
	unsigned count;                   /* lines seen so far */
	bool in_line;                     /* bytes seen since the last '\n' */
	size_t len;                       /* bytes kept of the current line */
	char line[TASK_LOG_LINE_MAX + 1]; /* one more to cut between chars */
	char chunk[65536];
};

/* Ends the current line: counts it, and keeps it when it is on the page. */
static int reader_end_line(struct log_reader *r)
{
	unsigned index = r->count++;
	json_t *row, *text;

	r->in_line = false;
	if (index < r->start || index - r->start >= r->limit) {
		r->len = 0;
		return 0;
	}
	text = line_text(r->line, line_cut(r->line, r->len));
	r->len = 0;
	if (text == NULL)
		return -ENOMEM;
	/* The *_new calls take their value's reference even when failing. */
	row = json_object();
	if (row == NULL) {
		json_decref(text);
		return -ENOMEM;
	}
	if (json_object_set_new(row, "n", json_integer(r->count)) != 0) {
		json_decref(text);
		json_decref(row);
		return -ENOMEM;
	}
	if (json_object_set_new(row, "t", text) != 0) {
		json_decref(row);
		return -ENOMEM;
	}
	return json_array_append_new(r->lines, row) != 0 ? -ENOMEM : 0;
}

static int reader_feed(struct log_reader *r, const char *data, size_t len)
{
	size_t i = 0, end, keep;
	int rv;

	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);

		end = nl != NULL ? (size_t)(nl - data) : len;
		if (end > i)
			r->in_line = true;
		keep = end - i;
		if (keep > sizeof r->line - r->len)
			keep = sizeof r->line - r->len;
		memcpy(r->line + r->len, data + i, keep);
		r->len += keep;
		if (nl == NULL)
			break;
		rv = reader_end_line(r);
		if (rv != 0)
			return rv;
		i = end + 1;
	}
	return 0;
}

int task_log_read(const char *dir, const char *upid, unsigned start,
                  unsigned limit, json_t **lines, unsigned *total,
                  struct err *e)
{
	char path[PATH_MAX];
	struct log_reader *r;
	size_t left = TASK_LOG_READ_MAX;
	off_t file_size;
	ssize_t n;
	int fd, rv = 0;

	fd = open_log(dir, upid, path, sizeof path, &file_size, e);
	if (fd < 0)
		return fd;
	r = mem_alloc(sizeof *r);
	if (r == NULL) {
		rv = err_set(e, -ENOMEM, "read task log: out of memory");
		goto err_after_open;
	}
	r->lines = json_array();
	if (r->lines == NULL) {
		rv = err_set(e, -ENOMEM, "read task log: out of memory");
		goto err_after_reader;
	}
	r->start = start;
	r->limit = limit == 0                   ? TASK_LOG_LIMIT_DEFAULT
	           : limit > TASK_LOG_LIMIT_MAX ? TASK_LOG_LIMIT_MAX
	                                        : limit;
	r->count = 0;
	r->in_line = false;
	r->len = 0;
	while (left > 0) {
		n = read(fd, r->chunk,
		         left < sizeof r->chunk ? left : sizeof r->chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = err_sys(e, -errno, "read task log %s", path);
			goto err_after_array;
		}
		if (n == 0)
			break;
		left -= (size_t)n;
		rv = reader_feed(r, r->chunk, (size_t)n);
		if (rv != 0)
			goto err_out_of_memory;
	}
	/* A last line without '\n' — the task is still writing, or died. */
	if (r->in_line) {
		rv = reader_end_line(r);
		if (rv != 0)
			goto err_out_of_memory;
	}
	*lines = r->lines;
	*total = r->count;
	mem_free(r);
	close(fd);
	return 0;

err_out_of_memory:
	rv = err_set(e, -ENOMEM, "read task log %s: out of memory", path);
err_after_array:
	json_decref(r->lines);
err_after_reader:
	mem_free(r);
err_after_open:
	close(fd);
	return rv;
}

int task_log_last_line(const char *dir, const char *upid, char *out,
                       size_t size, struct err *e)
{
	/* A whole line of cairn's and the '\n' before it always fit. */
	char tail[2 * TASK_LOG_LINE_MAX + 2];
	char path[PATH_MAX];
	off_t file_size, offset;
	size_t got = 0, want, begin, end;
	ssize_t n;
	int fd, rv = 0;

	CAIRN_ASSERT(size > 0);
	fd = open_log(dir, upid, path, sizeof path, &file_size, e);
	if (fd < 0)
		return fd;
	want = file_size < (off_t)sizeof tail ? (size_t)file_size : sizeof tail;
	offset = file_size - (off_t)want;
	while (got < want) {
		n = pread(fd, tail + got, want - got, offset + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = err_sys(e, -errno, "read task log %s", path);
			goto cleanup;
		}
		if (n == 0)
			break; /* truncated under us: use what we have */
		got += (size_t)n;
	}
	end = got;
	if (end > 0 && tail[end - 1] == '\n')
		end--;
	for (begin = end; begin > 0 && tail[begin - 1] != '\n'; begin--)
		;
	if (end - begin >= size)
		end = begin + size - 1;
	memcpy(out, tail + begin, end - begin);
	out[end - begin] = '\0';
cleanup:
	close(fd);
	return rv;
}

void task_exitstatus_from_last_line(const char *last_line, char *out,
                                    size_t size)
{
	/* Proxmox's upid_read_status: ^TASK OK$, ^TASK ERROR: (.+)$,
	 * ^TASK (WARNINGS: \d+)$. */
	const char *status = "unexpected status";
	const char *p;

	CAIRN_ASSERT(size > 0);
	if (strcmp(last_line, "TASK OK") == 0) {
		status = "OK";
	} else if (strncmp(last_line, "TASK ERROR: ", 12) == 0 &&
	           last_line[12] != '\0') {
		status = last_line + 12;
	} else if (strncmp(last_line, "TASK WARNINGS: ", 15) == 0 &&
	           last_line[15] != '\0') {
		for (p = last_line + 15; *p >= '0' && *p <= '9'; p++)
			;
		if (*p == '\0')
			status = last_line + 5;
	}
	snprintf(out, size, "%s", status);
}
