/* Unit tests for the logger: level filtering, line format, escaping, sinks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define CAPTURE_LINES    16
#define CAPTURE_LINE_MAX 16384

/* Lines the test sink received, copied as delivered. */
struct capture {
	pthread_mutex_t mutex;
	int count;
	enum log_level levels[CAPTURE_LINES];
	size_t lens[CAPTURE_LINES];
	char lines[CAPTURE_LINES][CAPTURE_LINE_MAX];
	int overflowed; /* lines that did not fit in `lines` */
};

static struct capture cap;
static enum log_level saved_threshold;

static void capture_sink(void *data, enum log_level level, const char *line,
                         size_t len)
{
	struct capture *c = data;

	pthread_mutex_lock(&c->mutex);
	if (c->count < CAPTURE_LINES && len < CAPTURE_LINE_MAX) {
		memcpy(c->lines[c->count], line, len);
		c->lines[c->count][len] = '\0';
		c->lens[c->count] = len;
		c->levels[c->count] = level;
		c->count++;
	} else {
		c->overflowed++;
	}
	pthread_mutex_unlock(&c->mutex);
}

static int setup_capture(void **state)
{
	(void)state;
	memset(&cap, 0, sizeof(cap));
	pthread_mutex_init(&cap.mutex, NULL);
	saved_threshold = log_threshold;
	log_set_sink(capture_sink, &cap);
	log_set_level(LOG_LEVEL_DEBUG);
	return 0;
}

static int teardown_capture(void **state)
{
	(void)state;
	log_set_sink(NULL, NULL);
	log_set_level(saved_threshold);
	pthread_mutex_destroy(&cap.mutex);
	return 0;
}

static size_t count_char(const char *s, size_t len, char c)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

/* The line with its leading "ts=... " removed, so tests can compare the
 * rest exactly. */
static const char *after_ts(const char *line)
{
	const char *space;

	assert_int_equal(strncmp(line, "ts=", 3), 0);
	space = strchr(line, ' ');
	assert_non_null(space);
	return space + 1;
}

static void assert_one_line(int i)
{
	assert_true(cap.lens[i] > 0);
	assert_int_equal(cap.lens[i], strlen(cap.lines[i]));
	assert_int_equal(cap.lines[i][cap.lens[i] - 1], '\n');
	assert_int_equal(count_char(cap.lines[i], cap.lens[i], '\n'), 1);
}

static int evaluations;

static int counted(int v)
{
	evaluations++;
	return v;
}

static void test_log_line_has_level_comp_quoted_msg_and_fields(void **state)
{
	(void)state;
	LOG_WARN("ha", "lease expired", "age_ms=%d", 10012);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	assert_string_equal(after_ts(cap.lines[0]),
	                    "level=warn comp=ha msg=\"lease expired\" "
	                    "age_ms=10012\n");
}

static void test_log_line_without_fields_ends_after_msg(void **state)
{
	(void)state;
	LOG_ERROR("db", "slow", NULL);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	assert_string_equal(after_ts(cap.lines[0]),
	                    "level=error comp=db msg=\"slow\"\n");
}

static void test_log_fields_are_appended_as_given(void **state)
{
	(void)state;
	LOG_INFO("node", "started", "pid=%d node=%s path=%s", 42, "n2",
	         "/var/lib/cairn");
	assert_int_equal(cap.count, 1);
	assert_string_equal(after_ts(cap.lines[0]),
	                    "level=info comp=node msg=\"started\" pid=42 "
	                    "node=n2 path=/var/lib/cairn\n");
}

static void test_log_line_starts_with_utc_millisecond_timestamp(void **state)
{
	const char *ts;

	(void)state;
	LOG_INFO("node", "tick", NULL);
	assert_int_equal(cap.count, 1);
	/* ts=2026-11-29T17:20:01.123Z */
	ts = cap.lines[0];
	assert_int_equal(strncmp(ts, "ts=", 3), 0);
	ts += 3;
	for (int i = 0; i < 24; i++) {
		const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";

		if (shape[i] == 'd')
			assert_true(ts[i] >= '0' && ts[i] <= '9');
		else
			assert_int_equal(ts[i], shape[i]);
	}
	assert_int_equal(ts[24], ' ');
}

static void test_log_sink_receives_the_event_level(void **state)
{
	(void)state;
	LOG_DEBUG("a", "d", NULL);
	LOG_INFO("a", "i", NULL);
	LOG_WARN("a", "w", NULL);
	LOG_ERROR("a", "e", NULL);
	assert_int_equal(cap.count, 4);
	assert_int_equal(cap.levels[0], LOG_LEVEL_DEBUG);
	assert_int_equal(cap.levels[1], LOG_LEVEL_INFO);
	assert_int_equal(cap.levels[2], LOG_LEVEL_WARN);
	assert_int_equal(cap.levels[3], LOG_LEVEL_ERROR);
	assert_non_null(strstr(cap.lines[0], " level=debug "));
	assert_non_null(strstr(cap.lines[3], " level=error "));
}

static void test_log_levels_below_threshold_are_dropped(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_WARN);
	LOG_DEBUG("x", "debug", NULL);
	LOG_INFO("x", "info", NULL);
	LOG_WARN("x", "warn", NULL);
	LOG_ERROR("x", "error", NULL);
	assert_int_equal(cap.count, 2);
	assert_non_null(strstr(cap.lines[0], "msg=\"warn\""));
	assert_non_null(strstr(cap.lines[1], "msg=\"error\""));
}

static void test_log_set_level_updates_threshold(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_ERROR);
	assert_int_equal(log_threshold, LOG_LEVEL_ERROR);
	log_set_level(LOG_LEVEL_DEBUG);
	assert_int_equal(log_threshold, LOG_LEVEL_DEBUG);
}

static void
test_log_macro_does_not_evaluate_arguments_when_filtered(void **state)
{
	(void)state;
	evaluations = 0;
	log_set_level(LOG_LEVEL_INFO);
	LOG_DEBUG("x", "filtered", "n=%d", counted(1));
	assert_int_equal(evaluations, 0);
	assert_int_equal(cap.count, 0);
	LOG_INFO("x", "kept", "n=%d", counted(2));
	assert_int_equal(evaluations, 1);
	assert_int_equal(cap.count, 1);
}

static void test_log_msg_quotes_are_escaped(void **state)
{
	(void)state;
	LOG_INFO("api", "say \"hi\"", NULL);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	assert_non_null(strstr(cap.lines[0], " msg=\"say \\\"hi\\\"\"\n"));
}

static void test_log_msg_backslash_is_escaped(void **state)
{
	(void)state;
	/* Without this, a message ending in '\' would escape the closing
	 * quote and merge with the fields. */
	LOG_INFO("api", "C:\\dir\\", "k=1");
	assert_int_equal(cap.count, 1);
	assert_non_null(strstr(cap.lines[0], " msg=\"C:\\\\dir\\\\\" k=1\n"));
}

static void test_log_msg_newline_is_escaped_and_line_stays_single(void **state)
{
	(void)state;
	LOG_WARN("api", "first\nlevel=error comp=forged msg=\"x\"", NULL);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	assert_non_null(strstr(cap.lines[0], "msg=\"first\\nlevel=error"));
}

static void
test_log_msg_carriage_return_and_controls_never_appear_raw(void **state)
{
	(void)state;
	LOG_WARN("api",
	         "a\rb\tc\x01"
	         "d\x1b[2Je",
	         NULL);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	for (size_t i = 0; i + 1 < cap.lens[0]; i++)
		assert_false((unsigned char)cap.lines[0][i] < 0x20 ||
		             cap.lines[0][i] == 0x7f);
}

static void test_log_field_values_with_newlines_stay_on_one_line(void **state)
{
	(void)state;
	LOG_WARN("api", "bad request", "path=%s", "/x\nlevel=error forged=1");
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
	assert_non_null(strstr(cap.lines[0], " msg=\"bad request\" path=/x"));
}

static void test_log_very_long_msg_is_still_one_line(void **state)
{
	static char msg[8192];

	(void)state;
	memset(msg, 'm', sizeof(msg) - 1);
	for (size_t i = 100; i < sizeof(msg) - 1; i += 100)
		msg[i] = '\n';
	msg[sizeof(msg) - 1] = '\0';
	LOG_INFO("x", msg, "tail=1");
	assert_int_equal(cap.count + cap.overflowed, 1);
	assert_int_equal(cap.count, 1);
	assert_one_line(0);
}

static void test_log_level_parse_accepts_the_four_names(void **state)
{
	enum log_level level = LOG_LEVEL_ERROR;

	(void)state;
	assert_int_equal(log_level_parse("debug", &level), 0);
	assert_int_equal(level, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("info", &level), 0);
	assert_int_equal(level, LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("warn", &level), 0);
	assert_int_equal(level, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("error", &level), 0);
	assert_int_equal(level, LOG_LEVEL_ERROR);
}

static void test_log_level_parse_rejects_unknown_names(void **state)
{
	enum log_level level = LOG_LEVEL_INFO;

	(void)state;
	assert_int_equal(log_level_parse("verbose", &level), -EINVAL);
	assert_int_equal(log_level_parse("", &level), -EINVAL);
	assert_int_equal(log_level_parse("warning2", &level), -EINVAL);
	assert_int_equal(log_level_parse("info ", &level), -EINVAL);
	assert_int_equal(log_level_parse("inf", &level), -EINVAL);
	assert_int_equal(level, LOG_LEVEL_INFO);
}

static void test_log_level_name_round_trips_through_parse(void **state)
{
	enum log_level levels[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO,
	                           LOG_LEVEL_WARN, LOG_LEVEL_ERROR};

	(void)state;
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(levels); i++) {
		enum log_level back;

		assert_int_equal(
		        log_level_parse(log_level_name(levels[i]), &back), 0);
		assert_int_equal(back, levels[i]);
	}
	assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
}

static void test_log_set_fd_writes_lines_to_that_fd(void **state)
{
	int fds[2];
	char got[1024];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	log_set_sink(NULL, NULL);
	log_set_fd(fds[1]);
	LOG_INFO("file", "to fd", "n=%d", 7);
	log_set_fd(STDERR_FILENO);
	log_set_sink(capture_sink, &cap);
	n = read(fds[0], got, sizeof(got) - 1);
	close(fds[0]);
	close(fds[1]);
	assert_true(n > 0);
	got[n] = '\0';
	assert_string_equal(after_ts(got),
	                    "level=info comp=file msg=\"to fd\" n=7\n");
	assert_int_equal(cap.count, 0);
}

struct writer {
	int id;
};

#define WRITERS          4
#define LINES_PER_WRITER 200

static void *write_lines(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < LINES_PER_WRITER; i++)
		LOG_INFO("thr", "concurrent line", "writer=%d i=%d", w->id, i);
	return NULL;
}

/* Counts lines and checks each is whole, without storing them. */
struct checker {
	pthread_mutex_t mutex;
	int lines;
	int malformed;
};

static void checking_sink(void *data, enum log_level level, const char *line,
                          size_t len)
{
	struct checker *c = data;
	bool ok = len > 0 && line[len - 1] == '\n' &&
	          count_char(line, len, '\n') == 1 &&
	          strstr(line, " level=info comp=thr msg=\"concurrent line\" "
	                       "writer=") != NULL;

	(void)level;
	pthread_mutex_lock(&c->mutex);
	c->lines++;
	c->malformed += !ok;
	pthread_mutex_unlock(&c->mutex);
}

static void test_log_lines_from_many_threads_arrive_whole(void **state)
{
	pthread_t threads[WRITERS];
	struct writer writers[WRITERS];
	struct checker checker = {.lines = 0};

	(void)state;
	pthread_mutex_init(&checker.mutex, NULL);
	log_set_sink(checking_sink, &checker);
	for (int i = 0; i < WRITERS; i++) {
		writers[i].id = i;
		assert_int_equal(pthread_create(&threads[i], NULL, write_lines,
		                                &writers[i]),
		                 0);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(threads[i], NULL);
	log_set_sink(capture_sink, &cap);
	pthread_mutex_destroy(&checker.mutex);
	assert_int_equal(checker.lines, WRITERS * LINES_PER_WRITER);
	assert_int_equal(checker.malformed, 0);
}

#define T(name) \
	cmocka_unit_test_setup_teardown(name, setup_capture, teardown_capture)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_log_line_has_level_comp_quoted_msg_and_fields),
	        T(test_log_line_without_fields_ends_after_msg),
	        T(test_log_fields_are_appended_as_given),
	        T(test_log_line_starts_with_utc_millisecond_timestamp),
	        T(test_log_sink_receives_the_event_level),
	        T(test_log_levels_below_threshold_are_dropped),
	        T(test_log_set_level_updates_threshold),
	        T(test_log_macro_does_not_evaluate_arguments_when_filtered),
	        T(test_log_msg_quotes_are_escaped),
	        T(test_log_msg_backslash_is_escaped),
	        T(test_log_msg_newline_is_escaped_and_line_stays_single),
	        T(test_log_msg_carriage_return_and_controls_never_appear_raw),
	        T(test_log_field_values_with_newlines_stay_on_one_line),
	        T(test_log_very_long_msg_is_still_one_line),
	        T(test_log_level_parse_accepts_the_four_names),
	        T(test_log_level_parse_rejects_unknown_names),
	        T(test_log_level_name_round_trips_through_parse),
	        T(test_log_set_fd_writes_lines_to_that_fd),
	        T(test_log_lines_from_many_threads_arrive_whole),
	};

	return cmocka_run_group_tests_name("lib/log", tests, NULL, NULL);
}
