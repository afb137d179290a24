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

WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Werror=switch -Werror=implicit-function-declaration \
	-Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu17 $(WARN) $(CFLAGS) -D_GNU_SOURCE -MMD -MP $(PKG_CFLAGS)

# Layers, lowest first (docs/architecture.md). A folder sees its own headers and those of
# the layers below it, never a sibling's or a layer above: an include that climbs does not
# compile. Tests and fuzzers sit above everything.
LAYER_BASE     := agent/base
LAYER_CONFIG   := agent/config
LAYER_ENGINES  := agent/console agent/health
LAYER_SERVICES := partitions iscsi agent/handshake
LAYER_DECIDE   := rules agent/election
LAYER_WIRING   := agent
BELOW_CONFIG   := $(LAYER_BASE)
BELOW_ENGINES  := $(BELOW_CONFIG) $(LAYER_CONFIG)
BELOW_SERVICES := $(BELOW_ENGINES) $(LAYER_ENGINES)
BELOW_DECIDE   := $(BELOW_SERVICES) $(LAYER_SERVICES)
BELOW_WIRING   := $(BELOW_DECIDE) $(LAYER_DECIDE)
ALL_DIRS       := $(BELOW_WIRING) $(LAYER_WIRING)
# $(call sees,DIR): the include path of a source folder.
sees = $(addprefix -I,$(1) $(strip \
	$(if $(filter $(1),$(LAYER_BASE)),, \
	$(if $(filter $(1),$(LAYER_CONFIG)),$(BELOW_CONFIG), \
	$(if $(filter $(1),$(LAYER_ENGINES)),$(BELOW_ENGINES), \
	$(if $(filter $(1),$(LAYER_SERVICES)),$(BELOW_SERVICES), \
	$(if $(filter $(1),$(LAYER_DECIDE)),$(BELOW_DECIDE), \
	$(if $(filter $(1),$(LAYER_WIRING)),$(BELOW_WIRING), \
	$(ALL_DIRS)))))))))
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
LIB_SRCS := $(filter-out $(MAINS),$(sort $(foreach d,$(ALL_DIRS),$(wildcard $(d)/*.c))))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libcompart.a

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.SECONDARY:
.PHONY: all rig-key-mode deps check demo unit fuzz fuzz-bins integration image clean \
	format bench print-layers layers

all: $(BUILD)/compartd $(BUILD)/compartctl rig-key-mode

# The agent refuses a cluster key file that group or others may read (SPEC §5); git
# checks the rig's test key out 0644.
rig-key-mode:
	@chmod 600 images/rig/cluster.key

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(call sees,$(patsubst %/,%,$(dir $<))) -c -o $@ $<

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

# bench/periodic_bench.c includes agent/handshake/hs.c to call its timers directly.
$(BUILD)/bench/periodic_bench: bench/periodic_bench.c agent/handshake/hs.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(call sees,agent/handshake) -Iagent/health -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -Wl,--as-needed -o $@ $^ $(PKG_LIBS)

unit: $(UNIT_BINS) all

deps:
	@tests/deps.sh

# The whole suite. Each stage prints its own results; tests/summary.sh adds them up.
check: deps
	@rm -f $(BUILD)/results.txt
	@RESULTS=$(BUILD)/results.txt tests/run-static.sh $(BUILD)
	@$(MAKE) --no-print-directory -j$$(nproc) all unit
	@RESULTS=$(BUILD)/results.txt tests/run-unit.sh $(BUILD) plain
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=$(BUILD)/asan SAN=asan unit
	@RESULTS=$(BUILD)/results.txt tests/run-unit.sh $(BUILD)/asan asan
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz
	@RESULTS=$(BUILD)/results.txt tests/run-fuzz.sh $(BUILD)/fuzz $(BUILD) $${FUZZ_SECONDS:-12}
	@RESULTS=$(BUILD)/results.txt tests/run-integration.sh $(BUILD)
	@tests/summary.sh $(BUILD)/results.txt

fuzz-bins: $(FUZZ_BINS)

fuzz:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz SAN=fuzz CC=clang fuzz-bins

integration: all
	@tests/run-integration.sh $(BUILD)

# RIG_KEY=1 embeds images/rig/cluster.key (the rig's test key, refused by any other
# cluster); without it the image has no key and each node asks for it on its serial console.
image: all
	@RIG_KEY=$(RIG_KEY) initramfs/build.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all image RIG_KEY=1
	@images/rig/demo.sh $(BUILD)

bench: all
	@for b in bench/*.sh; do echo "== $$b"; $$b $(BUILD) || exit 1; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The layers, one line each, lowest first: what tests/layers.sh checks the tree against.
print-layers:
	@echo "$(LAYER_BASE)"; echo "$(LAYER_CONFIG)"; echo "$(LAYER_ENGINES)"
	@echo "$(LAYER_SERVICES)"; echo "$(LAYER_DECIDE)"; echo "$(LAYER_WIRING)"

layers:
	@tests/layers.sh
