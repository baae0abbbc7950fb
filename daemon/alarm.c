/*
 * The alarm engine.  Every rule kind comes down to one of four shapes:
 *
 *  - a level with a delay (HIGH, LOW, RATE, STORE_FULL, DOOR_OPEN,
 *    UPLINK_DOWN): an input is beyond the limit, inside it (by more than
 *    the hysteresis), or in between.  Beyond starts a delay timer that an
 *    input not beyond resets; the alarm fires when the timer reaches the
 *    delay while still beyond, and clears only on an input inside.  So a
 *    short excursion never fires, and noise around the limit cannot flap a
 *    raised alarm.  The last input holds until the next one: alarm_tick()
 *    fires a timer that runs out between readings;
 *  - an excursion budget (EXCURSION): intervals beyond the limit, sample
 *    and hold, summed over the rolling window;
 *  - silence (STALE): time since the last good read;
 *  - a count (FAULT): failed reads in a row.
 *
 * Instances live in a table of rule x sensor slots sized at alarm_new(),
 * so an input finds its instances without searching and memory is bounded
 * by the configuration; a slot gets its instance on first use.
 */
#include "alarm.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Rate history per instance.  A sample is kept at most every span/14, so
 * 16 of them always reach back past the span and the reference point is
 * between span and span + span/14 + one reading interval old.
 */
#define RATE_SAMPLES	16

struct rate_sample {
	int64_t		 t;
	double		 v;
};

struct inst {
	char		 id[ALARM_ID_MAX + 1];
	size_t		 rule;		/* index into engine->rules */
	int		 sensor, zone;	/* -1 for the gateway */
	enum alarm_state state;
	int64_t		 since;		/* the condition that raised it began */
	int64_t		 changed;	/* last transition */
	double		 tvalue;	/* value of the last transition */
	bool		 acked;
	char		 acked_by[ALARM_BY_MAX + 1];
	int64_t		 acked_at;

	/* Level kinds. */
	double		 value;		/* last input (RATE: last rate) */
	bool		 beyond;	/* the last input was beyond the limit */
	bool		 pending;	/* delay timer running since cond */
	int64_t		 cond;

	int64_t		 last_ok;	/* STALE: last good read */
	int		 failures;	/* FAULT: in a row, the first at first_fail */
	int64_t		 first_fail;

	bool		 open;		/* EXCURSION: the last span runs on */
	size_t		 nspans;
	struct alarm_span *spans;	/* EXCURSION: ALARM_SPANS_MAX, oldest first */

	size_t		 nsamples, head;
	struct rate_sample *samples;	/* RATE: a ring, head is the next to write */
};

struct alarm_engine {
	struct alarm_rule *rules;
	size_t		 nrules;
	char		**sensor_ids;
	int		*sensor_zone;
	size_t		 nsensors;
	size_t		 stride;	/* slots per rule: nsensors, at least 1 */
	unsigned char	*applies;	/* [rule * stride + sensor]: the rule covers it */
	struct inst	**slot;		/* [rule * stride + sensor], NULL until used */
	struct inst	**list;		/* made instances, in creation order */
	size_t		 ninst;
	int64_t		 start;
	void		(*cb)(const struct alarm_transition *, void *);
	void		*arg;
};

static const char *const kind_names[ALARM_KIND_COUNT] = {
	[ALARM_HIGH] = "high", [ALARM_LOW] = "low", [ALARM_EXCURSION] = "excursion",
	[ALARM_RATE] = "rate", [ALARM_STALE] = "stale", [ALARM_FAULT] = "fault",
	[ALARM_DOOR_OPEN] = "door_open", [ALARM_STORE_FULL] = "store_full",
	[ALARM_UPLINK_DOWN] = "uplink_down", [ALARM_STORE_ERROR] = "store_error",
};

static const char *const state_names[] = {
	[ALARM_CLEARED] = "cleared", [ALARM_ACTIVE] = "active", [ALARM_ACKED] = "acked",
};

const char *
alarm_kind_name(enum alarm_kind k)
{
	return (unsigned)k < ALARM_KIND_COUNT ? kind_names[k] : "?";
}

const char *
alarm_state_name(enum alarm_state s)
{
	return (unsigned)s <= ALARM_ACKED ? state_names[s] : "?";
}

const char *
alarm_severity_name(enum alarm_severity s)
{
	return s == ALARM_CRITICAL ? "critical" : "warning";
}

static bool
gateway_kind(enum alarm_kind k)
{
	return k == ALARM_STORE_FULL || k == ALARM_UPLINK_DOWN || k == ALARM_STORE_ERROR;
}

static bool
quantity_kind(enum alarm_kind k)
{
	return k == ALARM_HIGH || k == ALARM_LOW || k == ALARM_EXCURSION || k == ALARM_RATE;
}

static bool
level_kind(enum alarm_kind k)
{
	return k == ALARM_HIGH || k == ALARM_LOW || k == ALARM_RATE || k == ALARM_STORE_FULL ||
	    k == ALARM_DOOR_OPEN || k == ALARM_UPLINK_DOWN || k == ALARM_STORE_ERROR;
}

/* The quantity whose readings feed the rule, or Q_COUNT. */
static enum quantity
rule_quantity(const struct alarm_rule *r)
{
	if (quantity_kind(r->kind))
		return r->quantity;
	return r->kind == ALARM_DOOR_OPEN ? Q_DOOR : Q_COUNT;
}

static int64_t
rule_delay_ms(const struct alarm_rule *r)
{
	switch (r->kind) {
	case ALARM_DOOR_OPEN:
		return (int64_t)r->door_open_max * 1000;
	case ALARM_UPLINK_DOWN:
		return (int64_t)r->uplink_down_max * 1000;
	default:
		return (int64_t)r->delay * 1000;
	}
}

static double
rule_limit(const struct alarm_rule *r)
{
	switch (r->kind) {
	case ALARM_HIGH:
		return r->high;
	case ALARM_LOW:
		return r->low;
	case ALARM_EXCURSION:
		return r->budget;
	case ALARM_RATE:
		return r->rate;
	case ALARM_STALE:
		return r->stale_after;
	case ALARM_FAULT:
		return r->fault_count;
	case ALARM_DOOR_OPEN:
		return r->door_open_max;
	case ALARM_STORE_FULL:
		return r->store_fraction;
	case ALARM_UPLINK_DOWN:
		return r->uplink_down_max;
	default:
		return 0;
	}
}

static bool
id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-';
}

/*
 * The id of rule r on a sensor (NULL for the gateway).  A sensor id that
 * is too long or not a clean topic level keeps its first characters and
 * gains a hash of the whole of it, so the id stays unique, readable and
 * the same on every start.
 */
static void
make_id(char id[ALARM_ID_MAX + 1], const struct alarm_rule *r, const char *sensor)
{
	char suffix[48], hash[10];
	size_t n, ns, keep, i;
	uint32_t h = 2166136261u;
	bool clean = true;

	switch (r->kind) {
	case ALARM_STORE_FULL:
		snprintf(id, ALARM_ID_MAX + 1, "gateway-store-full");
		return;
	case ALARM_UPLINK_DOWN:
		snprintf(id, ALARM_ID_MAX + 1, "gateway-uplink-down");
		return;
	case ALARM_STORE_ERROR:
		snprintf(id, ALARM_ID_MAX + 1, "gateway-store-error");
		return;
	case ALARM_HIGH:
	case ALARM_LOW:
	case ALARM_EXCURSION:
	case ALARM_RATE:
		snprintf(suffix, sizeof(suffix), "-%s-%s%s%s", quantity_name(r->quantity),
		    kind_names[r->kind], r->tag[0] ? "-" : "", r->tag);
		break;
	case ALARM_DOOR_OPEN:
		snprintf(suffix, sizeof(suffix), "-door-open");
		break;
	default:
		snprintf(suffix, sizeof(suffix), "-%s", kind_names[r->kind]);
		break;
	}
	n = strlen(sensor);
	ns = strlen(suffix);
	for (i = 0; i < n; i++) {
		if (!id_char(sensor[i]))
			clean = false;
		h = (h ^ (unsigned char)sensor[i]) * 16777619u;
	}
	if (clean && n > 0 && n + ns <= ALARM_ID_MAX) {
		memcpy(id, sensor, n);
		memcpy(id + n, suffix, ns + 1);
		return;
	}
	keep = ALARM_ID_MAX - ns - 9;	/* "_" and 8 hex digits */
	if (keep > n)
		keep = n;
	for (i = 0; i < keep; i++)
		id[i] = id_char(sensor[i]) ? sensor[i] : '_';
	snprintf(hash, sizeof(hash), "_%08" PRIx32, h);
	memcpy(id + keep, hash, 9);
	memcpy(id + keep + 9, suffix, ns + 1);
}

static int
rule_check(const struct alarm_rule *r, size_t nsensors)
{
	if (memchr(r->tag, '\0', sizeof(r->tag)) == NULL)
		return -EINVAL;
	for (const char *c = r->tag; *c; c++)
		if (*c < 'a' || *c > 'z')
			return -EINVAL;
	if ((unsigned)r->kind >= ALARM_KIND_COUNT ||
	    (r->severity != ALARM_WARNING && r->severity != ALARM_CRITICAL))
		return -EINVAL;
	if (!gateway_kind(r->kind) &&
	    (r->sensor >= 0 ? (size_t)r->sensor >= nsensors : r->zone < 0))
		return -EINVAL;
	if (quantity_kind(r->kind) && (unsigned)r->quantity >= Q_COUNT)
		return -EINVAL;
	if (!isfinite(r->hysteresis) || r->hysteresis < 0 || r->delay < 0)
		return -EINVAL;
	switch (r->kind) {
	case ALARM_HIGH:
		return r->has_high && isfinite(r->high) ? 0 : -EINVAL;
	case ALARM_LOW:
		return r->has_low && isfinite(r->low) ? 0 : -EINVAL;
	case ALARM_EXCURSION:
		if (!r->has_high && !r->has_low)
			return -EINVAL;
		if ((r->has_high && !isfinite(r->high)) || (r->has_low && !isfinite(r->low)))
			return -EINVAL;
		return r->window > 0 && r->budget > 0 && r->budget <= r->window ? 0 : -EINVAL;
	case ALARM_RATE:
		return isfinite(r->rate) && r->rate > 0 && r->span > 0 ? 0 : -EINVAL;
	case ALARM_STALE:
		return r->stale_after > 0 ? 0 : -EINVAL;
	case ALARM_FAULT:
		return r->fault_count >= 0 ? 0 : -EINVAL;
	case ALARM_DOOR_OPEN:
		return r->door_open_max >= 0 ? 0 : -EINVAL;
	case ALARM_STORE_FULL:
		return r->store_fraction >= 0 && r->store_fraction <= 1 ? 0 : -EINVAL;
	case ALARM_UPLINK_DOWN:
		return r->uplink_down_max >= 0 ? 0 : -EINVAL;
	case ALARM_STORE_ERROR:
		return 0;
	default:
		return -EINVAL;
	}
}

/* Two rules that would give a sensor the same id. */
static bool
same_id(const struct alarm_rule *a, const struct alarm_rule *b)
{
	return a->kind == b->kind && (!quantity_kind(a->kind) ||
	    (a->quantity == b->quantity && strcmp(a->tag, b->tag) == 0));
}

static void
inst_free(struct inst *in)
{
	if (in == NULL)
		return;
	free(in->spans);
	free(in->samples);
	free(in);
}

/* The instance of rule r on sensor s (0 for the gateway), made on first use. */
static struct inst *
inst_get(struct alarm_engine *e, size_t r, size_t s)
{
	const struct alarm_rule *rule = &e->rules[r];
	size_t k = r * e->stride + s;
	struct inst *in;

	if (e->slot[k] != NULL)
		return e->slot[k];
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return NULL;
	if (rule->kind == ALARM_EXCURSION &&
	    (in->spans = calloc(ALARM_SPANS_MAX, sizeof(*in->spans))) == NULL)
		goto err_free;
	if (rule->kind == ALARM_RATE &&
	    (in->samples = calloc(RATE_SAMPLES, sizeof(*in->samples))) == NULL)
		goto err_free;
	in->rule = r;
	if (gateway_kind(rule->kind)) {
		in->sensor = in->zone = -1;
		make_id(in->id, rule, NULL);
	} else {
		in->sensor = (int)s;
		in->zone = e->sensor_zone[s];
		make_id(in->id, rule, e->sensor_ids[s]);
	}
	in->state = ALARM_CLEARED;
	in->last_ok = e->start;
	/* The list holds one entry per slot that applies, so it has room. */
	e->slot[k] = in;
	e->list[e->ninst++] = in;
	return in;

err_free:
	inst_free(in);
	return NULL;
}

void
alarm_free(struct alarm_engine *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->ninst; i++)
		inst_free(e->list[i]);
	if (e->sensor_ids != NULL)
		for (size_t i = 0; i < e->nsensors; i++)
			free(e->sensor_ids[i]);
	free(e->sensor_ids);
	free(e->sensor_zone);
	free(e->rules);
	free(e->applies);
	free(e->slot);
	free(e->list);
	free(e);
}

/*
 * Which slots each rule covers.  A sensor rule shadows a zone rule with the
 * same id for its sensor: that is how one sensor gets its own limits.
 */
static int
cover(struct alarm_engine *e, size_t *count)
{
	const struct alarm_rule *a, *b;
	size_t r, q, s;

	for (r = 0; r < e->nrules; r++) {
		a = &e->rules[r];
		if (gateway_kind(a->kind))
			e->applies[r * e->stride] = 1;
		else if (a->sensor >= 0)
			e->applies[r * e->stride + (size_t)a->sensor] = 1;
		else
			for (s = 0; s < e->nsensors; s++)
				if (e->sensor_zone[s] == a->zone)
					e->applies[r * e->stride + s] = 1;
	}
	for (r = 0; r < e->nrules; r++)
		for (q = r + 1; q < e->nrules; q++) {
			a = &e->rules[r];
			b = &e->rules[q];
			if (!same_id(a, b))
				continue;
			if (gateway_kind(a->kind) || (a->sensor >= 0 && a->sensor == b->sensor) ||
			    (a->sensor < 0 && b->sensor < 0 && a->zone == b->zone))
				return -EEXIST;
			if (a->sensor >= 0 && b->sensor < 0 &&
			    e->sensor_zone[a->sensor] == b->zone)
				e->applies[q * e->stride + (size_t)a->sensor] = 0;
			else if (b->sensor >= 0 && a->sensor < 0 &&
			    e->sensor_zone[b->sensor] == a->zone)
				e->applies[r * e->stride + (size_t)b->sensor] = 0;
		}
	*count = 0;
	for (r = 0; r < e->nrules * e->stride; r++)
		*count += e->applies[r];
	return 0;
}

int
alarm_new(struct alarm_engine **out, const struct alarm_rule *rules, size_t nrules,
    const struct alarm_sensor *sensors, size_t nsensors, int64_t now_ms,
    void (*cb)(const struct alarm_transition *, void *arg), void *arg)
{
	struct alarm_engine *e;
	const char *id;
	size_t i, r, s, nslots, count;
	int rc;

	*out = NULL;
	for (i = 0; i < nrules; i++)
		if ((rc = rule_check(&rules[i], nsensors)) < 0)
			return rc;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -ENOMEM;
	e->cb = cb;
	e->arg = arg;
	e->start = now_ms;
	e->nrules = nrules;
	e->nsensors = nsensors;
	e->stride = nsensors > 0 ? nsensors : 1;
	nslots = nrules * e->stride;
	/* calloc(0) may give NULL: ask for at least one of everything. */
	if ((e->rules = calloc(nrules + 1, sizeof(*e->rules))) == NULL ||
	    (e->sensor_ids = calloc(nsensors + 1, sizeof(*e->sensor_ids))) == NULL ||
	    (e->sensor_zone = calloc(nsensors + 1, sizeof(*e->sensor_zone))) == NULL ||
	    (e->applies = calloc(nslots + 1, 1)) == NULL ||
	    (e->slot = calloc(nslots + 1, sizeof(*e->slot))) == NULL)
		goto err_free;
	for (s = 0; s < nsensors; s++) {
		id = sensors[s].id ? sensors[s].id : "";
		if ((e->sensor_ids[s] = calloc(strlen(id) + 1, 1)) == NULL)
			goto err_free;
		memcpy(e->sensor_ids[s], id, strlen(id));
		e->sensor_zone[s] = sensors[s].zone;
	}
	for (r = 0; r < nrules; r++) {
		e->rules[r] = rules[r];
		if (e->rules[r].kind == ALARM_DOOR_OPEN)
			e->rules[r].quantity = Q_DOOR;
		if (e->rules[r].fault_count == 0)
			e->rules[r].fault_count = ALARM_FAULT_COUNT;
		if (e->rules[r].store_fraction == 0)
			e->rules[r].store_fraction = ALARM_STORE_FRACTION;
	}
	if ((rc = cover(e, &count)) < 0) {
		alarm_free(e);
		return rc;
	}
	if ((e->list = calloc(count + 1, sizeof(*e->list))) == NULL)
		goto err_free;
	/*
	 * The gateway's alarms and stale sensors exist from the start: a sensor
	 * that never answers must still go stale.
	 */
	for (r = 0; r < nrules; r++)
		for (s = 0; s < e->stride; s++)
			if (e->applies[r * e->stride + s] && (gateway_kind(e->rules[r].kind) ||
			    e->rules[r].kind == ALARM_STALE) && inst_get(e, r, s) == NULL)
				goto err_free;
	*out = e;
	return 0;

err_free:
	alarm_free(e);
	return -ENOMEM;
}

static double
exc_total_ms(const struct inst *in, int64_t t, int64_t window)
{
	int64_t from = t - window, sum = 0, a, b;

	for (size_t i = 0; i < in->nspans; i++) {
		a = in->spans[i].from > from ? in->spans[i].from : from;
		b = in->open && i == in->nspans - 1 ? t : in->spans[i].to;
		if (b > t)
			b = t;
		if (b > a)
			sum += b - a;
	}
	return (double)sum;
}

/* The value a transition reports; see struct alarm_transition. */
static double
inst_value(const struct alarm_engine *e, const struct inst *in, int64_t t)
{
	const struct alarm_rule *r = &e->rules[in->rule];

	switch (r->kind) {
	case ALARM_EXCURSION:
		return exc_total_ms(in, t, (int64_t)r->window * 1000) / 1000.0;
	case ALARM_STALE:
	case ALARM_DOOR_OPEN:
	case ALARM_UPLINK_DOWN:
		return (double)(t - in->since) / 1000.0;
	case ALARM_FAULT:
		return in->failures;
	default:
		return in->value;
	}
}

static void
change(struct alarm_engine *e, struct inst *in, enum alarm_state to, int64_t t)
{
	const struct alarm_rule *r = &e->rules[in->rule];
	struct alarm_transition tr;

	tr.old = in->state;
	if (to == ALARM_ACTIVE) {
		/* A new episode: the last one's acknowledgement does not carry over. */
		in->acked = false;
		in->acked_by[0] = '\0';
		in->acked_at = 0;
	}
	in->state = to;
	in->changed = t;
	in->tvalue = inst_value(e, in, t);
	if (e->cb == NULL)
		return;
	tr.id = in->id;
	tr.kind = r->kind;
	tr.severity = r->severity;
	tr.zone = in->zone;
	tr.sensor = in->sensor;
	tr.quantity = rule_quantity(r);
	tr.state = to;
	tr.value = in->tvalue;
	tr.limit = rule_limit(r);
	tr.since = in->since;
	tr.t = t;
	tr.acked_by = in->acked ? in->acked_by : NULL;
	tr.acked_at = in->acked ? in->acked_at : 0;
	e->cb(&tr, e->arg);
}

/* A delay timer that has run out while the condition holds fires. */
static void
fire_due(struct alarm_engine *e, struct inst *in, int64_t t)
{
	if (in->state != ALARM_CLEARED || !in->pending || !in->beyond ||
	    t - in->cond < rule_delay_ms(&e->rules[in->rule]))
		return;
	in->pending = false;
	in->since = in->cond;
	change(e, in, ALARM_ACTIVE, t);
}

/* An input to a level kind: beyond the limit, inside it, or in between. */
static void
level(struct alarm_engine *e, struct inst *in, bool beyond, bool inside, int64_t t)
{
	in->beyond = beyond;
	if (in->state != ALARM_CLEARED) {
		if (inside)
			change(e, in, ALARM_CLEARED, t);
		return;
	}
	if (!beyond) {
		in->pending = false;
		return;
	}
	/* A timer restored by alarm_import() carries on. */
	if (!in->pending) {
		in->pending = true;
		in->cond = t;
	}
	fire_due(e, in, t);
}

/* Drop the spans that ended before the window; the open one never has. */
static void
exc_prune(struct inst *in, int64_t from)
{
	size_t i = 0;

	while (i < in->nspans && in->spans[i].to <= from && !(in->open && i == in->nspans - 1))
		i++;
	if (i == 0)
		return;
	memmove(in->spans, in->spans + i, (in->nspans - i) * sizeof(*in->spans));
	in->nspans -= i;
}

/*
 * Full: join the two spans with the shortest gap between them.  The gap
 * then counts as time beyond the limit, so the total can only err towards
 * raising the alarm, and by the least the bound allows.
 */
static void
exc_merge_closest(struct inst *in)
{
	size_t i, best = 0;

	for (i = 1; i + 1 < in->nspans; i++)
		if (in->spans[i + 1].from - in->spans[i].to <
		    in->spans[best + 1].from - in->spans[best].to)
			best = i;
	in->spans[best].to = in->spans[best + 1].to;
	memmove(in->spans + best + 1, in->spans + best + 2,
	    (in->nspans - best - 2) * sizeof(*in->spans));
	in->nspans--;
}

static void
exc_eval(struct alarm_engine *e, struct inst *in, int64_t t)
{
	const struct alarm_rule *r = &e->rules[in->rule];
	int64_t window = (int64_t)r->window * 1000;
	double total;

	exc_prune(in, t - window);
	total = exc_total_ms(in, t, window);
	if (in->state == ALARM_CLEARED) {
		if (total >= (double)r->budget * 1000) {
			in->since = t;
			change(e, in, ALARM_ACTIVE, t);
		}
	} else if (total < (double)r->budget * 1000)
		change(e, in, ALARM_CLEARED, t);
}

/* A reading holds until the next one: the span so far runs up to t. */
static void
exc_input(struct alarm_engine *e, struct inst *in, double v, int64_t t)
{
	const struct alarm_rule *r = &e->rules[in->rule];
	bool beyond = (r->has_high && v > r->high) || (r->has_low && v < r->low);
	struct alarm_span *last = in->nspans > 0 ? &in->spans[in->nspans - 1] : NULL;

	in->value = v;
	if (in->open) {
		if (t > last->to)
			last->to = t;
		in->open = beyond;
	} else if (beyond) {
		exc_prune(in, t - (int64_t)r->window * 1000);
		last = in->nspans > 0 ? &in->spans[in->nspans - 1] : NULL;
		if (last == NULL || last->to < t) {
			if (in->nspans == ALARM_SPANS_MAX)
				exc_merge_closest(in);
			in->spans[in->nspans].from = in->spans[in->nspans].to = t;
			in->nspans++;
		}
		in->open = true;
	}
	exc_eval(e, in, t);
}

/*
 * The change per minute between v and the newest sample at least a span
 * old; false until the history reaches that far back.
 */
static bool
rate_input(struct inst *in, const struct alarm_rule *r, double v, int64_t t, double *rate)
{
	int64_t span = (int64_t)r->span * 1000, step = span / (RATE_SAMPLES - 2);
	const struct rate_sample *p, *ref = NULL;
	size_t i;

	for (i = 0; i < in->nsamples; i++) {
		p = &in->samples[(in->head + RATE_SAMPLES - 1 - i) % RATE_SAMPLES];
		if (t - p->t >= span) {
			ref = p;
			break;
		}
	}
	if (ref != NULL)
		*rate = (v - ref->v) / ((double)(t - ref->t) / 60000.0);
	p = in->nsamples > 0 ? &in->samples[(in->head + RATE_SAMPLES - 1) % RATE_SAMPLES] : NULL;
	if (p == NULL || t - p->t >= step) {
		in->samples[in->head].t = t;
		in->samples[in->head].v = v;
		in->head = (in->head + 1) % RATE_SAMPLES;
		if (in->nsamples < RATE_SAMPLES)
			in->nsamples++;
	}
	return ref != NULL;
}

/* A good read of sensor s: stale and fault alarms clear, timers restart. */
static void
good_read(struct alarm_engine *e, size_t s, int64_t t, int *rc)
{
	struct inst *in;

	for (size_t r = 0; r < e->nrules; r++) {
		if (!e->applies[r * e->stride + s])
			continue;
		if (e->rules[r].kind == ALARM_STALE) {
			if ((in = inst_get(e, r, s)) == NULL) {
				*rc = -ENOMEM;
				continue;
			}
			if (in->state != ALARM_CLEARED)
				change(e, in, ALARM_CLEARED, t);
			in->last_ok = t;
		} else if (e->rules[r].kind == ALARM_FAULT &&
		    (in = e->slot[r * e->stride + s]) != NULL) {
			if (in->state != ALARM_CLEARED)
				change(e, in, ALARM_CLEARED, t);
			in->failures = 0;
		}
	}
}

int
alarm_reading(struct alarm_engine *e, size_t s, enum quantity q, double v, int64_t t)
{
	const struct alarm_rule *r;
	struct inst *in;
	double rate = 0;
	bool known;
	int rc = 0;

	if (s >= e->nsensors || (unsigned)q >= Q_COUNT || !isfinite(v))
		return -EINVAL;
	good_read(e, s, t, &rc);
	for (size_t i = 0; i < e->nrules; i++) {
		r = &e->rules[i];
		if (!e->applies[i * e->stride + s] || rule_quantity(r) != q)
			continue;
		if ((in = inst_get(e, i, s)) == NULL) {
			rc = -ENOMEM;
			continue;
		}
		switch (r->kind) {
		case ALARM_HIGH:
			in->value = v;
			level(e, in, v > r->high, v < r->high - r->hysteresis, t);
			break;
		case ALARM_LOW:
			in->value = v;
			level(e, in, v < r->low, v > r->low + r->hysteresis, t);
			break;
		case ALARM_DOOR_OPEN:
			in->value = v;
			level(e, in, v >= 0.5, v < 0.5, t);
			break;
		case ALARM_RATE:
			known = rate_input(in, r, v, t, &rate);
			if (known)
				in->value = rate;
			level(e, in, known && fabs(rate) >= r->rate, known && fabs(rate) < r->rate, t);
			break;
		case ALARM_EXCURSION:
			exc_input(e, in, v, t);
			break;
		default:
			break;
		}
	}
	return rc;
}

int
alarm_fault(struct alarm_engine *e, size_t s, int err, int64_t t)
{
	const struct alarm_rule *r;
	struct inst *in;
	int rc = 0;

	if (s >= e->nsensors || err > 0)
		return -EINVAL;
	if (err == 0) {
		good_read(e, s, t, &rc);
		return rc;
	}
	for (size_t i = 0; i < e->nrules; i++) {
		r = &e->rules[i];
		if (!e->applies[i * e->stride + s] || r->kind != ALARM_FAULT)
			continue;
		if ((in = inst_get(e, i, s)) == NULL) {
			rc = -ENOMEM;
			continue;
		}
		if (in->failures++ == 0)
			in->first_fail = t;
		if (in->state == ALARM_CLEARED && in->failures >= r->fault_count) {
			in->since = in->first_fail;
			change(e, in, ALARM_ACTIVE, t);
		}
	}
	return rc;
}

/* The gateway rules of kind k: their single instance each. */
static void
gateway_level(struct alarm_engine *e, enum alarm_kind k, double v, bool up, int64_t t)
{
	const struct alarm_rule *r;
	struct inst *in;

	for (size_t i = 0; i < e->nrules; i++) {
		r = &e->rules[i];
		if (r->kind != k || (in = e->slot[i * e->stride]) == NULL)
			continue;
		if (k == ALARM_STORE_FULL) {
			in->value = v;
			level(e, in, v > r->store_fraction, v < r->store_fraction - r->hysteresis, t);
		} else {
			if (k == ALARM_STORE_ERROR && !up)
				in->value = v;
			level(e, in, !up, up, t);
		}
	}
}

void
alarm_store_usage(struct alarm_engine *e, double fraction, int64_t t)
{
	if (isfinite(fraction))
		gateway_level(e, ALARM_STORE_FULL, fraction, false, t);
}

void
alarm_uplink(struct alarm_engine *e, bool up, int64_t t)
{
	gateway_level(e, ALARM_UPLINK_DOWN, 0, up, t);
}

void
alarm_store_error(struct alarm_engine *e, bool failing, double queued, int64_t t)
{
	gateway_level(e, ALARM_STORE_ERROR, queued, !failing, t);
}

void
alarm_tick(struct alarm_engine *e, int64_t t)
{
	const struct alarm_rule *r;
	struct inst *in;

	for (size_t i = 0; i < e->ninst; i++) {
		in = e->list[i];
		r = &e->rules[in->rule];
		if (level_kind(r->kind))
			fire_due(e, in, t);
		else if (r->kind == ALARM_EXCURSION)
			exc_eval(e, in, t);
		else if (r->kind == ALARM_STALE && in->state == ALARM_CLEARED &&
		    t - in->last_ok >= (int64_t)r->stale_after * 1000) {
			in->since = in->last_ok;
			change(e, in, ALARM_ACTIVE, t);
		}
	}
}

/* Times that are 0 mean "never" and stay so. */
static void
shift(int64_t *t, int64_t step)
{
	if (*t != 0)
		*t += step;
}

void
alarm_clock_step(struct alarm_engine *e, int64_t step)
{
	struct inst *in;
	size_t k;

	e->start += step;
	for (size_t i = 0; i < e->ninst; i++) {
		in = e->list[i];
		shift(&in->since, step);
		shift(&in->changed, step);
		shift(&in->acked_at, step);
		in->cond += step;
		in->last_ok += step;
		in->first_fail += step;
		for (k = 0; k < in->nspans; k++) {
			in->spans[k].from += step;
			in->spans[k].to += step;
		}
		for (k = 0; k < in->nsamples; k++)
			in->samples[k].t += step;
	}
}

static struct inst *
find(const struct alarm_engine *e, const char *id)
{
	for (size_t i = 0; i < e->ninst; i++)
		if (strcmp(e->list[i]->id, id) == 0)
			return e->list[i];
	return NULL;
}

int
alarm_ack(struct alarm_engine *e, const char *id, const char *by, int64_t t)
{
	struct inst *in;
	size_t n;

	if ((in = find(e, id)) == NULL)
		return -ENOENT;
	if (in->state == ALARM_ACKED)
		return -EALREADY;
	if (in->state != ALARM_ACTIVE)
		return -ESRCH;
	if (by == NULL)
		by = "";
	/* Cut a long name before a UTF-8 lead byte, never inside a character. */
	if ((n = strlen(by)) > ALARM_BY_MAX) {
		n = ALARM_BY_MAX;
		while (n > 0 && ((unsigned char)by[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(in->acked_by, by, n);
	in->acked_by[n] = '\0';
	in->acked = true;
	in->acked_at = t;
	change(e, in, ALARM_ACKED, t);
	return 0;
}

static bool
zone_match(const struct inst *in, int zone)
{
	return zone == ALARM_ANY_ZONE || in->zone == zone;
}

bool
alarm_zone_unacked(const struct alarm_engine *e, int zone, enum alarm_severity min)
{
	for (size_t i = 0; i < e->ninst; i++)
		if (e->list[i]->state == ALARM_ACTIVE && zone_match(e->list[i], zone) &&
		    e->rules[e->list[i]->rule].severity >= min)
			return true;
	return false;
}

bool
alarm_zone_raised(const struct alarm_engine *e, int zone, enum alarm_severity min)
{
	for (size_t i = 0; i < e->ninst; i++)
		if (e->list[i]->state != ALARM_CLEARED && zone_match(e->list[i], zone) &&
		    e->rules[e->list[i]->rule].severity >= min)
			return true;
	return false;
}

static void
fill_record(const struct alarm_engine *e, const struct inst *in, int64_t now,
    struct alarm_record *out)
{
	const struct alarm_rule *r = &e->rules[in->rule];

	memset(out, 0, sizeof(*out));
	memcpy(out->id, in->id, sizeof(out->id));
	out->kind = r->kind;
	out->severity = r->severity;
	out->zone = in->zone;
	out->sensor = in->sensor;
	out->state = in->state;
	out->value = in->tvalue;
	out->limit = rule_limit(r);
	out->since = in->since;
	out->changed = in->changed;
	if (in->acked) {
		memcpy(out->acked_by, in->acked_by, sizeof(out->acked_by));
		out->acked_at = in->acked_at;
	}
	out->pending = in->state == ALARM_CLEARED && in->pending ? in->cond : -1;
	out->nspans = in->nspans;
	if (in->nspans > 0) {
		memcpy(out->spans, in->spans, in->nspans * sizeof(*in->spans));
		if (in->open && now > out->spans[in->nspans - 1].to)
			out->spans[in->nspans - 1].to = now;
	}
}

int
alarm_export(const struct alarm_engine *e, size_t i, int64_t now, struct alarm_record *out)
{
	if (i >= e->ninst)
		return -ENOENT;
	fill_record(e, e->list[i], now, out);
	return 0;
}

int
alarm_get(const struct alarm_engine *e, const char *id, int64_t now, struct alarm_record *out)
{
	const struct inst *in;

	if ((in = find(e, id)) == NULL)
		return -ENOENT;
	fill_record(e, in, now, out);
	return 0;
}

/* The slot whose instance would have that id, made now; NULL if none. */
static struct inst *
find_or_make(struct alarm_engine *e, const char *id, int *rc)
{
	char cand[ALARM_ID_MAX + 1];
	struct inst *in;
	size_t r, s, k;

	*rc = 0;
	if ((in = find(e, id)) != NULL)
		return in;
	for (r = 0; r < e->nrules; r++)
		for (s = 0; s < e->stride; s++) {
			k = r * e->stride + s;
			if (!e->applies[k] || e->slot[k] != NULL)
				continue;
			make_id(cand, &e->rules[r],
			    gateway_kind(e->rules[r].kind) ? NULL : e->sensor_ids[s]);
			if (strcmp(cand, id) != 0)
				continue;
			if ((in = inst_get(e, r, s)) == NULL)
				*rc = -ENOMEM;
			return in;
		}
	*rc = -ENOENT;
	return NULL;
}

int
alarm_import(struct alarm_engine *e, const struct alarm_record *rec)
{
	const struct alarm_rule *r;
	struct inst *in;
	size_t i;
	int rc;

	if ((unsigned)rec->state > ALARM_ACKED || rec->nspans > ALARM_SPANS_MAX ||
	    memchr(rec->id, '\0', sizeof(rec->id)) == NULL ||
	    memchr(rec->acked_by, '\0', sizeof(rec->acked_by)) == NULL)
		return -EINVAL;
	for (i = 0; i < rec->nspans; i++)
		if (rec->spans[i].to < rec->spans[i].from ||
		    (i > 0 && rec->spans[i].from < rec->spans[i - 1].to))
			return -EINVAL;
	if ((in = find_or_make(e, rec->id, &rc)) == NULL)
		return rc;
	r = &e->rules[in->rule];
	in->state = rec->state;
	in->since = rec->since;
	in->changed = rec->changed;
	in->tvalue = rec->value;
	in->acked = rec->state == ALARM_ACKED || rec->acked_at != 0 || rec->acked_by[0] != '\0';
	memcpy(in->acked_by, rec->acked_by, sizeof(in->acked_by));
	in->acked_at = in->acked ? rec->acked_at : 0;
	/*
	 * A delay timer resumes, but only an input that shows the condition
	 * again lets it fire: until then the last value is unknown.
	 */
	in->beyond = false;
	in->pending = level_kind(r->kind) && rec->state == ALARM_CLEARED && rec->pending >= 0;
	in->cond = in->pending ? rec->pending : 0;
	if (r->kind == ALARM_EXCURSION) {
		memcpy(in->spans, rec->spans, rec->nspans * sizeof(*rec->spans));
		in->nspans = rec->nspans;
		in->open = false;
	}
	return 0;
}
