/*
 * Fill a coldgate store's outbox with a backlog, as a long broker outage
 * would leave it, for scripts/bench-pipeline's drain figure.  Goes through
 * store_outbox_push() like the daemon; sync=normal only to make the fill
 * quick, the drain that is measured afterwards runs in coldgated.
 *
 * usage: outbox_fill DBFILE TOPIC MSGS BYTES
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

int
main(int argc, char *argv[])
{
	struct store_opts o = { .sync_full = false, .max_size_mb = 4096, .retain_days = 3650 };
	struct store *s;
	long msgs, bytes;
	char *payload;

	if (argc != 5) {
		fprintf(stderr, "usage: outbox_fill DBFILE TOPIC MSGS BYTES\n");
		return 2;
	}
	o.path = argv[1];
	msgs = atol(argv[3]);
	bytes = atol(argv[4]);
	if (msgs < 1 || bytes < 32 || (payload = malloc((size_t)bytes)) == NULL)
		return 2;
	log_init(0);
	if (store_open(&s, &o, false) < 0)
		return 1;
	for (long i = 0; i < msgs; i++) {
		int64_t seq = store_next_seq(s);
		int k = snprintf(payload, (size_t)bytes, "{\"seq\":%lld,\"pad\":\"", (long long)seq);

		memset(payload + k, 'x', (size_t)bytes - (size_t)k - 2);
		memcpy(payload + bytes - 2, "\"}", 2);
		if (store_outbox_push(s, MSG_TELEMETRY, argv[2], payload, (size_t)bytes, 1, false,
		    1764400000000LL + i) != seq)
			return 1;
	}
	store_close(s);
	free(payload);
	return 0;
}
