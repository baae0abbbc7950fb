# coldgate — build, test and install.
#   make            build/coldgated and build/coldgatectl
#   make check      unit + integration tests (SAN=1: under ASan+UBSan)
#   make demo       local broker + daemon on simulated sensors
#   make install    DESTDIR=... PREFIX=/usr
#   make powercut   power cuts of coldgated in a qemu VM (CYCLES=20 SYNC=full; slow, not in check)

CC       ?= gcc
PKGS      = libmosquitto sqlite3 libconfig json-c libcrypto libmodbus libgpiod
PREFIX   ?= /usr
SYSCONFDIR ?= /etc
UNITDIR  ?= /lib/systemd/system
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wpointer-arith -Wvla -Wcast-qual
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Idaemon -Isensors \
           -DCOLDGATE_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -pthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
B        = build/san
else
B        = build
endif

# The daemon's modules, shared by the daemon, the tests and coldgatectl.
CORE_SRC = $(filter-out daemon/main.c daemon/coldgatectl.c,$(wildcard daemon/*.c)) $(wildcard sensors/*.c)
CORE_OBJ = $(CORE_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
INTEG_SRC = $(wildcard tests/integration/test_*.c)
INTEG_BIN = $(INTEG_SRC:tests/integration/%.c=$(B)/tests/%)
TEST_LIBS = $(shell pkg-config --libs cmocka json-c)
TEST_CFLAGS = $(shell pkg-config --cflags cmocka json-c) -Itests

.PHONY: all check unit integration valgrind demo install clean bench powercut
all: $(B)/coldgated $(B)/coldgatectl

$(B)/obj/%.o: %.c $(wildcard daemon/*.h sensors/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libcore.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/coldgated: $(B)/obj/daemon/main.o $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/coldgatectl: $(B)/obj/daemon/coldgatectl.o $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Each test may ask for linker wraps with a line "// WRAP: sym1 sym2".
$(B)/tests/%: tests/unit/%.c $(B)/libcore.a $(wildcard tests/lib/*.[ch])
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(wildcard tests/lib/*.c) \
	  $(patsubst %,-Wl$(,)--wrap=%,$(shell sed -n 's|^// WRAP: ||p' $<)) \
	  $(B)/libcore.a $(LDLIBS) $(TEST_LIBS)

$(B)/tests/%: tests/integration/%.c $(B)/libcore.a $(wildcard tests/lib/*.[ch])
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(wildcard tests/lib/*.c) \
	  $(B)/libcore.a $(LDLIBS) $(TEST_LIBS)

# The real daemon with the kernel's I2C and GPIO faked at the syscall and
# libgpiod edge (tests/fakehw/): the integration tests run the drivers' own
# code against it.  Wraps come from "// WRAP: sym" lines in those files.
FAKEHW_SRC = $(wildcard tests/fakehw/*.c)
$(B)/tests/coldgated-fakehw: $(B)/obj/daemon/main.o $(FAKEHW_SRC) $(wildcard tests/fakehw/*.h) $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $(B)/obj/daemon/main.o $(FAKEHW_SRC) \
	  $(patsubst %,-Wl$(,)--wrap=%,$(sort $(shell cat /dev/null $(FAKEHW_SRC) | sed -n 's|^// WRAP: ||p'))) \
	  $(B)/libcore.a $(LDLIBS)

, := ,

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; COLDGATE_TOP=$(CURDIR) $$t; done

FAKEHW_BIN = $(if $(FAKEHW_SRC),$(B)/tests/coldgated-fakehw)
integration: all $(INTEG_BIN) $(FAKEHW_BIN)
	@set -e; for t in $(INTEG_BIN); do echo "== $$t"; \
	  COLDGATE_TOP=$(CURDIR) COLDGATED=$(CURDIR)/$(B)/coldgated COLDGATECTL=$(CURDIR)/$(B)/coldgatectl \
	  COLDGATED_FAKEHW=$(CURDIR)/$(FAKEHW_BIN) $$t; done

check: all unit integration

# The daemon's main paths under valgrind (slow: not part of check).
VALGRIND_TESTS = test_telemetry test_outage test_crash test_reload test_overflow test_alarms test_sysfs \
	test_quality test_hardware test_diskfull test_statedir
valgrind: all $(INTEG_BIN) $(FAKEHW_BIN)
	@set -e; for t in $(VALGRIND_TESTS); do echo "== $$t under valgrind"; \
	  COLDGATE_TOP=$(CURDIR) COLDGATED=$(CURDIR)/scripts/valgrind-coldgated \
	  COLDGATED_FAKEHW=$(CURDIR)/scripts/valgrind-coldgated-fakehw \
	  COLDGATECTL=$(CURDIR)/$(B)/coldgatectl $(B)/tests/$$t; done

demo: all
	scripts/run-demo $(B)/coldgated

bench: all
	scripts/bench-pipeline

# Power cuts in a qemu VM (scripts/powercut): about 20 s a cycle, so not
# part of check.  nbdmem is the NBD server that loses unflushed writes.
CYCLES ?= 20
SYNC   ?= full
$(B)/nbdmem: tests/powercut/nbdmem.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

powercut: all $(B)/nbdmem
	scripts/powercut --cycles $(CYCLES) --sync $(SYNC) --build $(B)

install: all
	install -D -m 0755 $(B)/coldgated $(DESTDIR)$(PREFIX)/sbin/coldgated
	install -D -m 0755 $(B)/coldgatectl $(DESTDIR)$(PREFIX)/bin/coldgatectl
	install -D -m 0644 systemd/coldgate.service $(DESTDIR)$(UNITDIR)/coldgate.service
	install -D -m 0644 config/coldgate.cfg $(DESTDIR)$(SYSCONFDIR)/coldgate/coldgate.cfg.example
	install -d $(DESTDIR)$(SYSCONFDIR)/coldgate/profiles
	install -m 0644 config/profiles/*.cfg config/profiles/README.md $(DESTDIR)$(SYSCONFDIR)/coldgate/profiles/
	install -d $(DESTDIR)$(SYSCONFDIR)/coldgate/examples
	install -m 0644 config/examples/*.cfg $(DESTDIR)$(SYSCONFDIR)/coldgate/examples/
	install -d -m 0750 $(DESTDIR)/var/lib/coldgate

clean:
	rm -rf build
