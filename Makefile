# compartd — build, tests, images and the QEMU rig.
#
#   make            build/compartd and build/compartctl
#   make check      install deps, build, unit tests (+ ASan/UBSan), fuzzers, integration tests
#   make demo       install deps, build the image, boot the rig, show the cluster electing
#   make deps       install every Debian package the build, tests and demo need
#   make fuzz       build the libFuzzer harnesses (clang)
#   make image      build/images/{vmlinuz,initramfs.cpio.gz,boot.ipxe}

BUILD ?= build
CC ?= gcc
SAN ?=

PKGS := libiscsi libparted blkid libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# --as-needed: a binary loads only the libraries it uses (libparted pulls libselinux, whose
# constructor trips ASan in every binary that merely links it).
PKG_LIBS := -Wl,--as-needed $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Werror=switch -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu17 $(WARN) $(CFLAGS) -D_GNU_SOURCE -MMD -MP \
	-Iagent -Ipartitions -Iiscsi -Irules $(PKG_CFLAGS)
LDFLAGS ?=
LDFLAGS += -Wl,--as-needed

ifeq ($(SAN),asan)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),fuzz)
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DFUZZING
endif

# Every .c under the module folders is part of the library, except the programs' mains.
MAINS := agent/main.c agent/compartctl.c
LIB_SRCS := $(filter-out $(MAINS),$(sort $(wildcard agent/*.c partitions/*.c iscsi/*.c rules/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libcompart.a

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.SECONDARY:
.PHONY: all deps check demo unit fuzz fuzz-bins integration image clean format bench

all: $(BUILD)/compartd $(BUILD)/compartctl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/compartd: $(BUILD)/obj/agent/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/compartctl: $(BUILD)/obj/agent/compartctl.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -Wl,--as-needed -o $@ $^ $(PKG_LIBS)

unit: $(UNIT_BINS) all

deps:
	@tests/deps.sh

# The whole suite. Each stage prints its own results; tests/summary.sh adds them up.
check: deps
	@rm -f $(BUILD)/results.txt
	@$(MAKE) --no-print-directory -j$$(nproc) all unit
	@RESULTS=$(BUILD)/results.txt tests/run-unit.sh $(BUILD) plain
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=$(BUILD)/asan SAN=asan unit
	@RESULTS=$(BUILD)/results.txt tests/run-unit.sh $(BUILD)/asan asan
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz
	@RESULTS=$(BUILD)/results.txt tests/run-fuzz.sh $(BUILD)/fuzz $(BUILD) $${FUZZ_SECONDS:-20}
	@RESULTS=$(BUILD)/results.txt tests/run-integration.sh $(BUILD)
	@tests/summary.sh $(BUILD)/results.txt

fuzz-bins: $(FUZZ_BINS)

fuzz:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz SAN=fuzz CC=clang fuzz-bins

integration: all
	@tests/run-integration.sh $(BUILD)

image: all
	@initramfs/build.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all image
	@images/rig/demo.sh $(BUILD)

bench: all
	@for b in bench/*.sh; do echo "== $$b"; $$b $(BUILD) || exit 1; done

format:
	clang-format -i $(LIB_SRCS) $(MAINS) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
