/*
 * sim — a simulated sensor, for the demo, the tests and the benchmark.
 *
 * It is a real driver (open/read/close through the same table as the
 * hardware ones) that synthesises plausible values instead of talking to a
 * bus.  Three ways to configure it:
 *
 *   profile = "mushroom-house"  temperature ~16 C, humidity ~88 %RH and
 *                               CO2 600..1100 ppm following a ventilation
 *                               cycle of about an hour;
 *   profile = "cold-room"       temperature ~2 C swinging with a 30-minute
 *                               compressor cycle, humidity ~90 %RH;
 *   quantity + script           one quantity, piecewise linear between the
 *                               (seconds since start, value) points of the
 *                               script, holding the last value after it;
 *                               deterministic, for tests.
 *
 * fail = ( (from, to), ... ) makes every read in [from, to) seconds since
 * start fail with -ETIMEDOUT, as a sensor that stops answering would.
 * read_delay = S makes each read take S seconds, as a slow bus does: such
 * a sensor is read on a worker thread like the real blocking drivers.
 * Noise comes from a generator seeded by the sensor id, so two runs of the
 * same configuration give the same values at the same elapsed times.
 *
 * Configuration keys (sim_keys, at the bottom): profile, or quantity with
 * script; fail; read_delay 0..10 s (0).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "sensor.h"

enum sim_kind { SIM_MUSHROOM, SIM_COLD, SIM_SCRIPT };

struct sim {
	const struct sim_cfg	*cfg;		/* borrowed from the config */
	enum sim_kind		 kind;
	enum quantity		 q;		/* SIM_SCRIPT */
	uint64_t		 rng;
	double			 phase;		/* spreads sensors over their cycles */
};

static uint64_t
sim_rand(struct sim *s)
{
	/* xorshift64*: plenty for plausible noise. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

/* Roughly normal noise with the given standard deviation. */
static double
sim_noise(struct sim *s, double sd)
{
	double u = 0;

	for (int i = 0; i < 3; i++)
		u += (double)(sim_rand(s) >> 11) / 9007199254740992.0;
	return (u - 1.5) * 2.0 * sd;
}

static double
sim_script(const struct sim *s, double t)
{
	const struct script_point *p = s->cfg->script;

	if (t <= p[0].t)
		return p[0].v;
	for (size_t i = 1; i < s->cfg->nscript; i++)
		if (t < p[i].t)
			return p[i - 1].v + (p[i].v - p[i - 1].v) *
			    (t - p[i - 1].t) / (p[i].t - p[i - 1].t);
	return p[s->cfg->nscript - 1].v;
}

static double
clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int
sim_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	struct sim *s;
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a of the id */

	(void)conf;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	for (const char *c = sc->id; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	s->rng = h ? h : 1;
	s->phase = (double)(h % 3600);
	s->cfg = &sc->sim;
	if (sc->sim.nscript > 0) {
		s->kind = SIM_SCRIPT;
		s->q = sc->sim.quantity;
	} else if (sc->sim.profile != NULL && strcmp(sc->sim.profile, "cold-room") == 0) {
		s->kind = SIM_COLD;
	} else if (sc->sim.profile != NULL && strcmp(sc->sim.profile, "mushroom-house") == 0) {
		s->kind = SIM_MUSHROOM;
	} else {
		free(s);
		return -EINVAL;
	}
	*state = s;
	return 0;
}

static int
sim_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct sim *s = state;
	const struct sim_cfg *c = s->cfg;
	double t = clk->elapsed, cyc;
	size_t n = 0;

	if (c->read_delay > 0) {
		struct timespec ts = { (time_t)c->read_delay,
		    (long)((c->read_delay - (double)(time_t)c->read_delay) * 1e9) };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; i < c->nfail; i++)
		if (t >= c->fail[i].from && t < c->fail[i].to)
			return -ETIMEDOUT;
	if (max < 3)
		return -ENOBUFS;

	switch (s->kind) {
	case SIM_SCRIPT:
		out[n++] = (struct reading){ s->q, sim_script(s, t) };
		break;
	case SIM_MUSHROOM:
		cyc = sin(2 * M_PI * (t + s->phase) / 3600.0);
		out[n++] = (struct reading){ Q_TEMPERATURE, 16.0 + 0.8 * cyc + sim_noise(s, 0.1) };
		out[n++] = (struct reading){ Q_HUMIDITY,
		    clamp(88.0 - 3.0 * cyc + sim_noise(s, 0.5), 0, 100) };
		out[n++] = (struct reading){ Q_CO2, clamp(850.0 + 250.0 * cyc + sim_noise(s, 15), 400, 40000) };
		break;
	case SIM_COLD:
		cyc = sin(2 * M_PI * (t + s->phase) / 1800.0);
		out[n++] = (struct reading){ Q_TEMPERATURE, 2.0 + 0.6 * cyc + sim_noise(s, 0.05) };
		out[n++] = (struct reading){ Q_HUMIDITY,
		    clamp(90.0 - 2.0 * cyc + sim_noise(s, 0.4), 0, 100) };
		break;
	}
	return (int)n;
}

static void
sim_close(void *state)
{
	free(state);
}

static bool
sim_blocks(const struct sensor_cfg *sc)
{
	return sc->sim.read_delay > 0;
}

/*
 * Configuration.  "profile", "quantity" and "read_delay" are plain keys;
 * sim_configure parses "script" and "fail" and checks that a sensor has a
 * profile, or a quantity with a script.
 */
#define SIM_KEY(member) CFG_FIELD(struct sensor_cfg, sim.member)
static const struct cfg_key sim_keys[] = {
	{ "profile", CFG_STRING, SIM_KEY(profile) },
	{ "quantity", CFG_QUANTITY, SIM_KEY(quantity), .def = Q_TEMPERATURE },
	{ .name = "script", .type = CFG_HOOK },
	{ .name = "fail", .type = CFG_HOOK },
	{ "read_delay", CFG_DOUBLE, SIM_KEY(read_delay), .min = 0, .max = 10 },
	{ .name = NULL },
};
#undef SIM_KEY

static const char *const sim_profiles[] = { "mushroom-house", "cold-room", NULL };

/* "script": (t, v) points at increasing t >= 0. */
static int
sim_configure_script(struct config_ctx *x, struct sim_cfg *sc)
{
	double *v;
	size_t i, n;
	int r, bad = 0;

	if ((r = config_pairs(x, "script", "(t, v)", &v, &n)) != CONFIG_PRESENT)
		return r;
	if (n == 0) {
		config_error(x, "script", "needs at least one (t, v) point");
		return CONFIG_BAD;
	}
	for (i = 0; i < n; i++) {
		if (v[2 * i] < 0) {
			config_error_at(x, "script", i, "t %g is out of range (must be >= 0)",
			    v[2 * i]);
			bad = 1;
		} else if (i > 0 && v[2 * i] <= v[2 * (i - 1)]) {
			config_error_at(x, "script", i, "t %g is not after the previous point's t %g",
			    v[2 * i], v[2 * (i - 1)]);
			bad = 1;
		}
	}
	if (bad || (sc->script = config_calloc(x, n, sizeof(*sc->script))) == NULL) {
		free(v);
		return CONFIG_BAD;
	}
	for (i = 0; i < n; i++) {
		sc->script[i].t = v[2 * i];
		sc->script[i].v = v[2 * i + 1];
	}
	sc->nscript = n;
	free(v);
	return CONFIG_PRESENT;
}

/* "fail": [from, to) windows, from >= 0. */
static void
sim_configure_fail(struct config_ctx *x, struct sim_cfg *sc)
{
	double *v;
	size_t i, n;
	int bad = 0;

	if (config_pairs(x, "fail", "(from, to)", &v, &n) != CONFIG_PRESENT)
		return;
	for (i = 0; i < n; i++) {
		if (v[2 * i] < 0) {
			config_error_at(x, "fail", i, "from %g is out of range (must be >= 0)",
			    v[2 * i]);
			bad = 1;
		} else if (v[2 * i] >= v[2 * i + 1]) {
			config_error_at(x, "fail", i, "from %g is not before to %g", v[2 * i],
			    v[2 * i + 1]);
			bad = 1;
		}
	}
	if (bad || (n > 0 && (sc->fail = config_calloc(x, n, sizeof(*sc->fail))) == NULL)) {
		free(v);
		return;
	}
	for (i = 0; i < n; i++) {
		sc->fail[i].from = v[2 * i];
		sc->fail[i].to = v[2 * i + 1];
	}
	sc->nfail = n;
	free(v);
}

/* A profile, or a quantity with a script. */
static void
sim_configure(struct config_ctx *x, struct sensor_cfg *sensor)
{
	struct sim_cfg *sc = &sensor->sim;
	char q[CONFIG_QUOTE_MAX];
	size_t k;
	int script;

	script = sim_configure_script(x, sc);
	sim_configure_fail(x, sc);
	if (sc->profile != NULL) {
		for (k = 0; sim_profiles[k] != NULL && strcmp(sim_profiles[k], sc->profile) != 0;
		    k++)
			;
		if (sim_profiles[k] == NULL)
			config_error(x, "profile",
			    "unknown profile %s (want mushroom-house or cold-room)",
			    config_quote(q, sc->profile));
		if (config_has(x, "quantity"))
			config_error(x, "quantity", "not allowed with a profile");
		if (script != CONFIG_ABSENT)
			config_error(x, "script", "not allowed with a profile");
		return;
	}
	if (config_has(x, "profile"))
		return;		/* there but bad: reported already */
	if (!config_has(x, "quantity") && script == CONFIG_ABSENT)
		config_error(x, "profile", "missing (the sim driver needs a profile, or a "
		    "quantity and a script)");
	else if (!config_has(x, "quantity"))
		config_error(x, "quantity", "missing (needed with a script)");
	else if (script == CONFIG_ABSENT)
		config_error(x, "script", "missing (needed with a quantity)");
}

static void
sim_unconfigure(struct sensor_cfg *sc)
{
	free(sc->sim.script);
	free(sc->sim.fail);
	sc->sim.script = NULL;
	sc->sim.fail = NULL;
}

const struct sensor_driver sim_driver = {
	.name = "sim",
	.open = sim_open,
	.read = sim_read,
	.close = sim_close,
	.blocks = sim_blocks,
	.kind = SENSOR_SIM,
	.keys = sim_keys,
	.configure = sim_configure,
	.unconfigure = sim_unconfigure,
};
