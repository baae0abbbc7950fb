/*
 * coldgate's own store under the same load as sqlite_ceiling, for
 * scripts/bench-pipeline: readings through store_add_reading() (which
 * commits every 1000 by itself) and store_commit(), then messages through
 * store_outbox_push(), which commits each one (SPEC §5: durable before it
 * is handed to the broker), with a delivered mark after each as a PUBACK
 * would give.
 *
 * usage: store_rate DBFILE [ROWS] [MSGS] [BYTES] [full|normal]
 * prints: store_readings rows=N seconds=S rows_per_s=R
 *         store_outbox msgs=N bytes=B seconds=S msgs_per_s=R
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char *argv[])
{
	struct store_opts o = { .sync_full = true, .max_size_mb = 1024, .retain_days = 3650 };
	struct store *s;
	long rows = 200000, msgs = 2000, bytes = 300;
	int keys[8], err;
	char *payload, wal[4200];
	double t0, t1;

	if (argc < 2) {
		fprintf(stderr, "usage: store_rate DBFILE [ROWS] [MSGS] [BYTES] [full|normal]\n");
		return 2;
	}
	o.path = argv[1];
	if (argc > 2)
		rows = atol(argv[2]);
	if (argc > 3)
		msgs = atol(argv[3]);
	if (argc > 4)
		bytes = atol(argv[4]);
	if (argc > 5)
		o.sync_full = strcmp(argv[5], "normal") != 0;
	if (rows < 0 || msgs < 0 || bytes < 16 || (payload = malloc((size_t)bytes)) == NULL)
		return 2;
	memset(payload, 'x', (size_t)bytes);
	log_init(0);
	unlink(o.path);
	snprintf(wal, sizeof(wal), "%s-wal", o.path);
	unlink(wal);
	if ((err = store_open(&s, &o, false)) < 0)
		return 1;
	for (int i = 0; i < 8; i++) {
		char id[16];

		snprintf(id, sizeof(id), "bench-%d", i);
		if ((keys[i] = store_sensor_key(s, id, "bench")) < 0)
			return 1;
	}
	if (store_commit(s) < 0)
		return 1;

	t0 = now_s();
	for (long i = 0; i < rows; i++)
		if (store_add_reading(s, keys[i % 8], (int)(i % 4), 18.0 + (double)(i % 100) / 10,
		    1764400000000LL + i * 100, 0) < 0)
			return 1;
	if (store_commit(s) < 0)
		return 1;
	t1 = now_s();
	printf("store_readings rows=%ld sync=%s seconds=%.3f rows_per_s=%.0f\n", rows,
	    o.sync_full ? "full" : "normal", t1 - t0, rows / (t1 - t0));

	t0 = now_s();
	for (long i = 0; i < msgs; i++) {
		int64_t seq = store_next_seq(s);
		int k = snprintf(payload, (size_t)bytes, "{\"seq\":%lld,", (long long)seq);

		payload[k] = 'x';
		if (store_outbox_push(s, MSG_TELEMETRY, "coldgate/bench/telemetry", payload,
		    (size_t)bytes, 1, false, 1764400000000LL + i) != seq ||
		    store_outbox_delivered(s, seq, 1764400000000LL + i) < 0)
			return 1;
	}
	if (store_commit(s) < 0)
		return 1;
	t1 = now_s();
	if (msgs > 0)
		printf("store_outbox msgs=%ld bytes=%ld sync=%s seconds=%.3f msgs_per_s=%.0f\n",
		    msgs, bytes, o.sync_full ? "full" : "normal", t1 - t0, msgs / (t1 - t0));
	store_close(s);
	free(payload);
	return 0;
}
