/* Leveled, component-tagged logging in greppable key=value lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"

#define LOG_LINE_MAX 4096

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The sink is set once at start-up (or by a test) before threads log. */
static log_sink_cb sink_cb;
static void *sink_data;
static int log_fd = STDERR_FILENO;

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_level_parse(const char *text, enum log_level *out)
{
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(text, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if ((size_t)level >= CAIRN_ARRAY_SIZE(level_names))
		return "unknown";
	return level_names[level];
}

void log_set_sink(log_sink_cb sink, void *data)
{
	sink_cb = sink;
	sink_data = data;
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

struct line {
	char text[LOG_LINE_MAX];
	size_t len;
};

/* Keeps room for "...\n" so a clipped line still ends a line. */
static void put(struct line *l, const char *s, size_t n)
{
	size_t room = LOG_LINE_MAX - 5 - l->len;

	if (n > room)
		n = room;
	memcpy(l->text + l->len, s, n);
	l->len += n;
}

/* Quotes msg; a message can never break the one-event-one-line rule. */
static void put_quoted(struct line *l, const char *s)
{
	char esc[5];

	put(l, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(l, esc, 2);
		} else if (c == '\n') {
			put(l, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			put(l, esc, 4);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

void log_write(enum log_level level, const char *comp, const char *msg,
               const char *fields, ...)
{
	struct line l = {.len = 0};
	struct timespec ts;
	struct tm tm;
	char head[96];
	int n;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(head, sizeof head,
	             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
	             log_level_name(level));
	put(&l, head, (size_t)n);
	put(&l, comp, strlen(comp));
	put(&l, " msg=", 5);
	put_quoted(&l, msg);
	if (fields != NULL && fields[0] != '\0') {
		char tail[LOG_LINE_MAX];
		va_list ap;
		size_t i, start = l.len;

		va_start(ap, fields);
		n = vsnprintf(tail, sizeof tail, fields, ap);
		va_end(ap);
		if (n > 0) {
			put(&l, " ", 1);
			put(&l, tail, strlen(tail));
		}
		/* Field values are not quoted by us: neutralise line breaks
		 * and control characters they may carry. */
		for (i = start; i < l.len; i++) {
			if ((unsigned char)l.text[i] < 0x20)
				l.text[i] = '?';
		}
	}
	if (l.len == LOG_LINE_MAX - 5) {
		memcpy(l.text + l.len, "...", 3);
		l.len += 3;
	}
	l.text[l.len++] = '\n';
	l.text[l.len] = '\0';
	if (sink_cb != NULL) {
		sink_cb(sink_data, level, l.text, l.len);
		return;
	}
	/* One write per line keeps lines from different threads whole. */
	while (write(log_fd, l.text, l.len) < 0 && errno == EINTR)
		;
}
