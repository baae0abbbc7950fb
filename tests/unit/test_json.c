/* The JSON writer: escaping, UTF-8 pass-through, compact numbers, and that json-c parses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "json.h"

static void
builds_nested_objects_with_commas(void **state)
{
	struct jbuf b = { 0 };

	(void)state;
	jb_begin(&b, '{');
	jb_str(&b, "gw", "xc-01");
	jb_int(&b, "seq", 42);
	jb_key(&b, "readings");
	jb_begin(&b, '[');
	jb_begin(&b, '{');
	jb_num(&b, "mean", 21.3);
	jb_end(&b, '}');
	jb_begin(&b, '{');
	jb_num(&b, "mean", -0.25);
	jb_num(&b, "t", 15.23078367);
	jb_num(&b, "z", -0.0001);
	jb_num(&b, "c", 850);
	jb_key(&b, "ok");
	jb_vbool(&b, false);
	jb_end(&b, '}');
	jb_end(&b, ']');
	jb_end(&b, '}');
	assert_string_equal(jb_text(&b),
	    "{\"gw\":\"xc-01\",\"seq\":42,\"readings\":[{\"mean\":21.3},{\"mean\":-0.25,\"t\":15.231,\"z\":0,\"c\":850,\"ok\":false}]}");
	jb_reset(&b);
	jb_begin(&b, '[');
	jb_end(&b, ']');
	assert_string_equal(jb_text(&b), "[]");
	jb_free(&b);
}

static void
escapes_quotes_and_controls_but_keeps_utf8(void **state)
{
	struct jbuf b = { 0 };
	json_object *o;

	(void)state;
	jb_begin(&b, '{');
	jb_str(&b, "name", "香菇出菇房 1 \"east\"\\\n\t\x01");
	jb_end(&b, '}');
	assert_string_equal(jb_text(&b),
	    "{\"name\":\"香菇出菇房 1 \\\"east\\\"\\\\\\u000a\\u0009\\u0001\"}");
	o = json_tokener_parse(jb_text(&b));
	assert_non_null(o);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "name")),
	    "香菇出菇房 1 \"east\"\\\n\t\x01");
	json_object_put(o);
	jb_free(&b);
}

static void
long_payloads_grow_the_buffer(void **state)
{
	struct jbuf b = { 0 };
	json_object *o;

	(void)state;
	jb_begin(&b, '[');
	for (int i = 0; i < 5000; i++)
		jb_vint(&b, i);
	jb_end(&b, ']');
	o = json_tokener_parse(jb_text(&b));
	assert_non_null(o);
	assert_int_equal(json_object_array_length(o), 5000);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(o, 4999)), 4999);
	json_object_put(o);
	jb_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builds_nested_objects_with_commas),
		cmocka_unit_test(escapes_quotes_and_controls_but_keeps_utf8),
		cmocka_unit_test(long_payloads_grow_the_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
