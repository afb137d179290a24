/* The kernel command line: compartd.<key>= settings, overrides of single config
 * values (compartd.<section>.<key>=), the kernel's ip= syntax, console= and BOOTIF=. */
#pragma once

#include "config.h"

#define KCMD_MAX_IP 4
#define KCMD_MAX_OVR 64

enum kip_mode { KIP_STATIC, KIP_DHCP, KIP_OFF, _KIP_MAX };

/* ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>
 * or ip=dhcp|on|any|off|none|bootp|rarp|both */
struct kip {
	enum kip_mode mode;
	bool has_client, has_gateway, has_netmask;
	struct cfg_prefix client; /* len from netmask, 32/128 when none */
	struct cfg_prefix server, gateway;
	char hostname[64];
	char device[16];
	int n_dns;
	struct cfg_prefix dns[2];
};

struct kcmdline {
	bool has_node;
	char node[CFG_NAME_MAX];
	bool has_config;
	char config[CFG_PATH_MAX];
	bool has_console;
	char console[64];	 /* compartd.console= (device path or name) */
	char kernel_console[64]; /* the last console= (device name without options) */
	bool debug;
	bool has_identity_wait;
	uint64_t identity_wait_us; /* compartd.identity_wait= (0: no bound) */
	bool has_bootif;
	uint8_t bootif[6];
	struct kip ips[KCMD_MAX_IP];
	int n_ips;
	struct cfg_override ovr[KCMD_MAX_OVR];
	size_t n_ovr;
};

/* SPEC §2: the command line may override only timeouts.*, a node's network keys
 * (node.<name>.handshake, external, net, route) and a storage's root key
 * (storage.<name>.root), besides compartd.node/config/console/debug/identity_wait. NULL when
 * section.key may be overridden, else why not. */
const char *kcmdline_override_refused(const char *section, const char *key);

/* Returns 0, or -EINVAL with one line per problem in `errors` (the rest is still parsed);
 * a refused override is left out and named: "kernel command line:
 * compartd.layout.wipe=… refused: <why>". */
int kcmdline_parse(const char *text, struct kcmdline *ret, struct strbuf *errors);
int kcmdline_read(const char *path, struct kcmdline *ret, struct strbuf *errors);
int kip_parse(const char *val, struct kip *ret);
