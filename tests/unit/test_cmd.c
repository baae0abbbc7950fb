/* Command parsing: what an ack over MQTT or the control socket may look like, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cmd.h"

static int
parse(const char *name, const char *payload, struct cmd *c, char *why)
{
	return cmd_parse(name, payload, strlen(payload), c, why, 128);
}

static void
good_ack_with_a_chinese_name(void **state)
{
	struct cmd c;
	char why[128] = "";

	(void)state;
	assert_int_equal(parse("ack", "{\"alarm\":\"c1-probe-temperature-high\",\"by\":\"王师傅\"}",
	    &c, why), 0);
	assert_int_equal(c.kind, CMD_ACK);
	assert_string_equal(c.alarm, "c1-probe-temperature-high");
	assert_string_equal(c.by, "王师傅");
	/* "by" is optional. */
	assert_int_equal(parse("ack", " {\"alarm\":\"x\"} ", &c, why), 0);
	assert_string_equal(c.by, "");
}

static void
refused_commands_say_why(void **state)
{
	static const struct {
		const char *name, *payload, *why;
	} bad[] = {
		{ "reboot", "{}", "unknown command \"reboot\"" },
		{ "ack", "", "not JSON" },
		{ "ack", "{\"alarm\":\"x\"", "not JSON" },
		{ "ack", "{\"alarm\":\"x\"} trailing", "not JSON" },
		{ "ack", "[\"x\"]", "not a JSON object" },
		{ "ack", "\"x\"", "not a JSON object" },
		{ "ack", "{}", "\"alarm\" is missing" },
		{ "ack", "{\"by\":\"li\"}", "\"alarm\" is missing" },
		{ "ack", "{\"alarm\":7}", "\"alarm\" must be a string" },
		{ "ack", "{\"alarm\":\"x\",\"by\":null}", "\"by\" must be a string" },
		{ "ack", "{\"alarm\":\"a/b\"}", "\"alarm\" is not an alarm id" },
		{ "ack", "{\"alarm\":\"+\"}", "\"alarm\" is not an alarm id" },
		{ "ack", "{\"alarm\":\"\"}", "\"alarm\" is not an alarm id" },
		{ "ack", "{\"alarm\":\"x\",\"force\":true}", "unknown field \"force\"" },
		{ "ack", "{\"alarm\":\"x\",\"by\":\"a\\u0007b\"}", "\"by\" is not printable UTF-8" },
		/* Bytes that are not UTF-8 anywhere in it, before any field is looked at. */
		{ "ack", "{\"alarm\":\"x\",\"by\":\"\xff\xfe\"}", "not UTF-8" },
		/* An overlong '/' that json-c lets through: the name check still refuses it. */
		{ "ack", "{\"alarm\":\"x\",\"by\":\"\xc0\xaf\"}", "\"by\" is not printable UTF-8" },
		{ "ack", "{\"alarm\":\"x\",\"by\":\"0123456789012345678901234567890123456789"
		    "012345678901234567890123456789\"}", "\"by\" is longer than 64 bytes" },
		{ "ack", "{\"alarm\":{\"alarm\":{\"alarm\":{\"alarm\":{\"alarm\":{\"alarm\":"
		    "{\"alarm\":{\"alarm\":{\"alarm\":\"x\"}}}}}}}}}", "not JSON" },
	};
	struct cmd c;
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (parse(bad[i].name, bad[i].payload, &c, why) != -EINVAL)
			fail_msg("accepted %s %s", bad[i].name, bad[i].payload);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s: reason \"%s\", want \"%s\"", bad[i].payload, why, bad[i].why);
	}
}

static void
oversized_and_binary_commands_are_refused(void **state)
{
	char big[CMD_MAX_BYTES + 64], why[128];
	struct cmd c;
	size_t n;

	(void)state;
	n = (size_t)snprintf(big, sizeof(big), "{\"alarm\":\"x\",\"by\":\"");
	memset(big + n, 'a', sizeof(big) - n - 3);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	assert_int_equal(cmd_parse("ack", big, strlen(big), &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "at most 1024"));
	assert_int_equal(cmd_parse("ack", "{\"alarm\":\"x\"}\0", 14, &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "NUL"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_ack_with_a_chinese_name),
		cmocka_unit_test(refused_commands_say_why),
		cmocka_unit_test(oversized_and_binary_commands_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
