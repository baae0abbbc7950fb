/* SHA-256 as the audit trail uses it: the FIPS 180-2 "abc" vector, and the row encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"

static void
file_hash_matches_the_fips_vector(void **state)
{
	char path[] = "/tmp/coldgate-audit-XXXXXX", hex[2 * AUDIT_HASH_LEN + 1];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(audit_file_sha256(path, hex), 0);
	/* FIPS 180-2, appendix B.1. */
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	unlink(path);
	assert_true(audit_file_sha256(path, hex) < 0);
}

static void
row_hash_covers_every_field(void **state)
{
	static const uint8_t zero[AUDIT_HASH_LEN];
	uint8_t a[AUDIT_HASH_LEN], b[AUDIT_HASH_LEN];

	(void)state;
	assert_int_equal(audit_hash(zero, 1, 1000, "start", "{}", a), 0);
	assert_int_equal(audit_hash(zero, 1, 1000, "start", "{}", b), 0);
	assert_memory_equal(a, b, AUDIT_HASH_LEN);
	assert_int_equal(audit_hash(zero, 2, 1000, "start", "{}", b), 0);
	assert_memory_not_equal(a, b, AUDIT_HASH_LEN);
	assert_int_equal(audit_hash(zero, 1, 1001, "start", "{}", b), 0);
	assert_memory_not_equal(a, b, AUDIT_HASH_LEN);
	assert_int_equal(audit_hash(a, 1, 1000, "start", "{}", b), 0);
	assert_memory_not_equal(a, b, AUDIT_HASH_LEN);
	/* Lengths are encoded: moving a byte from kind to detail changes the hash. */
	assert_int_equal(audit_hash(zero, 1, 1000, "ab", "c", a), 0);
	assert_int_equal(audit_hash(zero, 1, 1000, "a", "bc", b), 0);
	assert_memory_not_equal(a, b, AUDIT_HASH_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(file_hash_matches_the_fips_vector),
		cmocka_unit_test(row_hash_covers_every_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
