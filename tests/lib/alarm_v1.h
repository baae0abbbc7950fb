/*
 * The alarm record as schema 2 stores held it: struct alarm_record of that
 * release memcpy'd behind a version word 1, in the layout of the build that
 * wrote it.  Copied here from that release's alarm.h and frozen, so tests
 * can make the stores an upgraded gateway finds on its disk.
 */
#ifndef COLDGATE_TESTS_ALARM_V1_H
#define COLDGATE_TESTS_ALARM_V1_H

#include <stddef.h>
#include <stdint.h>

#include "alarm.h"

struct alarm_record_v1 {
	char		 id[ALARM_ID_MAX + 1];
	enum alarm_kind	 kind;
	enum alarm_severity severity;
	int		 zone, sensor;
	enum alarm_state state;
	double		 value, limit;
	int64_t		 since;
	int64_t		 changed;
	char		 acked_by[ALARM_BY_MAX + 1];
	int64_t		 acked_at;
	int64_t		 pending;
	size_t		 nspans;
	struct alarm_span spans[ALARM_SPANS_MAX];
};

struct alarm_blob_v1 {
	uint32_t		 version;	/* 1 */
	struct alarm_record_v1	 rec;
};

/*
 * Take the store at path (closed) back to schema 2, each alarm record
 * rewritten as the old code wrote it.  0, or -1 (said on stderr).
 */
int	 alarm_v1_downgrade_store(const char *path);

#endif
