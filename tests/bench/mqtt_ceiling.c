/*
 * The MQTT ceiling for scripts/bench-pipeline: a plain libmosquitto QoS 1
 * publisher keeping a window of W messages in flight, driven by its own
 * mosquitto_loop() (no thread), publishing N payloads of about S bytes.
 * The clock runs from the first publish to the last PUBACK.  This is the
 * most the daemon's outbox could hand the broker over the same socket.
 *
 * usage: mqtt_ceiling PORT [N] [WINDOW] [BYTES]
 * prints: mqtt_ceiling msgs=N window=W bytes=S seconds=T msgs_per_s=R
 */
#include <mosquitto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
	long	 n, window, sent, acked, inflight;
	bool	 connected, failed;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_connect(struct mosquitto *m, void *arg, int rc)
{
	struct bench *b = arg;

	(void)m;
	if (rc != 0) {
		fprintf(stderr, "mqtt_ceiling: connect refused: %s\n", mosquitto_connack_string(rc));
		b->failed = true;
	} else
		b->connected = true;
}

static void
on_disconnect(struct mosquitto *m, void *arg, int rc)
{
	struct bench *b = arg;

	(void)m;
	if (b->acked < b->n) {
		fprintf(stderr, "mqtt_ceiling: disconnected (%d) after %ld PUBACKs\n", rc, b->acked);
		b->failed = true;
	}
}

static void
on_publish(struct mosquitto *m, void *arg, int mid)
{
	struct bench *b = arg;

	(void)m, (void)mid;
	b->acked++;
	b->inflight--;
}

int
main(int argc, char *argv[])
{
	struct bench b = { .n = 100000, .window = 20 };
	struct mosquitto *m;
	long bytes = 300;
	int port, rc;
	char *payload;
	double t0, t1;

	if (argc < 2) {
		fprintf(stderr, "usage: mqtt_ceiling PORT [N] [WINDOW] [BYTES]\n");
		return 2;
	}
	port = atoi(argv[1]);
	if (argc > 2)
		b.n = atol(argv[2]);
	if (argc > 3)
		b.window = atol(argv[3]);
	if (argc > 4)
		bytes = atol(argv[4]);
	if (b.n <= 0 || b.window <= 0 || bytes < 16) {
		fprintf(stderr, "mqtt_ceiling: N and WINDOW must be positive, BYTES >= 16\n");
		return 2;
	}
	if ((payload = malloc((size_t)bytes)) == NULL)
		return 1;
	memset(payload, 'x', (size_t)bytes);

	mosquitto_lib_init();
	if ((m = mosquitto_new("coldgate-bench-ceiling", true, &b)) == NULL) {
		fprintf(stderr, "mqtt_ceiling: mosquitto_new failed\n");
		return 1;
	}
	/* Our own window decides; the library must not queue on top of it. */
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, (int)b.window);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_disconnect_callback_set(m, on_disconnect);
	mosquitto_publish_callback_set(m, on_publish);
	if ((rc = mosquitto_connect(m, "127.0.0.1", port, 60)) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "mqtt_ceiling: connect to port %d: %s\n", port, mosquitto_strerror(rc));
		return 1;
	}
	while (!b.connected && !b.failed)
		if ((rc = mosquitto_loop(m, 1000, 1)) != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "mqtt_ceiling: %s\n", mosquitto_strerror(rc));
			return 1;
		}

	t0 = now_s();
	while (b.acked < b.n && !b.failed) {
		while (b.inflight < b.window && b.sent < b.n) {
			/* A seq at the front, as in the daemon's payloads. */
			int k = snprintf(payload, (size_t)bytes, "{\"seq\":%ld,", b.sent + 1);

			payload[k] = 'x';
			rc = mosquitto_publish(m, NULL, "coldgate/bench/telemetry", (int)bytes, payload,
			    1, false);
			if (rc != MOSQ_ERR_SUCCESS) {
				fprintf(stderr, "mqtt_ceiling: publish: %s\n", mosquitto_strerror(rc));
				return 1;
			}
			b.sent++;
			b.inflight++;
		}
		if ((rc = mosquitto_loop(m, 100, 1)) != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "mqtt_ceiling: loop: %s\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	t1 = now_s();
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	free(payload);
	if (b.failed)
		return 1;
	printf("mqtt_ceiling msgs=%ld window=%ld bytes=%ld seconds=%.3f msgs_per_s=%.0f\n",
	    b.n, b.window, bytes, t1 - t0, b.n / (t1 - t0));
	return 0;
}
