# picomail - top-level Makefile (no recursion).
#
#   make              build bin/picomail (and the library) in build/
#   make check        install missing packages, build, run every test, normal
#                     and under AddressSanitizer + UBSan; ends "N passed, N failed"
#   make run          install missing packages, build, start the demo
#   make install      PREFIX=/usr/local DESTDIR=
#
# Out-of-tree builds: BUILD=build/asan SAN=1 builds with the sanitizers.

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
DESTDIR ?=

CSTD    = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wvla -Wformat=2 -Wimplicit-fallthrough
OPT     ?= -O2 -g
ifeq ($(SAN),1)
OPT     = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
          -fno-omit-frame-pointer
endif
PKGS    = jansson libpcre2-8 sqlite3 libcrypto gmime-3.0
CFLAGS_ALL  = $(CSTD) $(WARN) $(OPT) -iquote include \
              -DSYSCONFDIR='"$(SYSCONFDIR)"' \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LDLIBS_ALL  = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lpcre2-8 -lsqlite3 -lcrypto -lgmime-3.0 -lgobject-2.0 -lglib-2.0) -lm -lpthread $(LDLIBS)
LDFLAGS_ALL = $(OPT) $(LDFLAGS)

LIB_SRC  = $(wildcard src/util/*.c) $(wildcard src/krl/*.c) \
           $(wildcard src/store/*.c) $(wildcard src/engine/*.c) \
           $(wildcard src/mail/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      = $(BUILD)/libpicomail.a
CLI_SRC  = $(wildcard src/cli/*.c)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
# picomaild: the daemon (LMTP, socketmap, IMAP fetcher with libetpan,
# outbox sender with libcurl, Sky Event/Cloud listener with libmicrohttpd)
DAEMON_SRC = $(wildcard src/daemon/*.c) $(wildcard src/http/*.c)
DAEMON_OBJ = $(DAEMON_SRC:%.c=$(BUILD)/%.o)
DAEMON_LIBS = -letpan $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) \
              $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# picomail-milter: libmilter has no pkg-config file
MILTER_SRC = $(wildcard src/milter/*.c)
MILTER_OBJ = $(MILTER_SRC:%.c=$(BUILD)/%.o)
MILTER_LIBS = -lmilter
PROGRAMS = $(BUILD)/picomail $(BUILD)/picomaild $(BUILD)/picomail-milter
UNIT_SRC = $(wildcard tests/unit/t_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN = $(patsubst bench/%.c,$(BUILD)/%,$(wildcard bench/*.c))

.PHONY: all deps check unit run install uninstall clean bench
all: $(PROGRAMS) $(UNIT_BIN) $(BENCH_BIN)

$(BUILD)/%.o: %.c $(wildcard include/picomail/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/picomail: $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS_ALL)

$(BUILD)/picomaild: $(DAEMON_OBJ) $(LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(DAEMON_OBJ) $(LIB) $(DAEMON_LIBS) $(LDLIBS_ALL)

$(BUILD)/picomail-milter: $(MILTER_OBJ) $(LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(MILTER_OBJ) $(LIB) $(MILTER_LIBS) $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -iquote tests/unit $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL)

deps:
	@sh contrib/deps.sh

unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

check: deps
	@sh tests/check.sh

run: deps
	@$(MAKE) -s all
	@sh contrib/run-demo.sh $(BUILD)

install: $(PROGRAMS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/picomail \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(PROGRAMS) $(DESTDIR)$(BINDIR)/
	install -m 644 conf/picomail.conf $(DESTDIR)$(SYSCONFDIR)/picomail/picomail.conf
	install -m 644 man/picomail.1 $(DESTDIR)$(MANDIR)/man1/picomail.1
	install -m 644 man/picomaild.8 man/picomail-milter.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/picomail $(DESTDIR)$(BINDIR)/picomaild \
	    $(DESTDIR)$(BINDIR)/picomail-milter \
	    $(DESTDIR)$(SYSCONFDIR)/picomail/picomail.conf \
	    $(DESTDIR)$(MANDIR)/man1/picomail.1 \
	    $(DESTDIR)$(MANDIR)/man8/picomaild.8 $(DESTDIR)$(MANDIR)/man8/picomail-milter.8

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

$(BUILD)/bench_%: bench/bench_%.c $(LIB)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL)

clean:
	rm -rf build
