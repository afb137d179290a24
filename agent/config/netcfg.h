/* Early network configuration of PID 1 (SPEC §1 step 1): the node's `net =` and `route =`
 * lines and the kernel's ip= become a plan of actions (pure, testable), which the driver
 * applies through rtnetlink: links up, VLAN links, addresses, routes. DHCP is left to the
 * caller (it runs busybox udhcpc). */
#pragma once

#include "cmdline.h"
#include "config.h"

#include <net/if.h>

#define NETCFG_MAX_LINKS 16
#define NETCFG_MAX_ACTIONS 48

/* A local interface as the plan sees it. */
struct netcfg_link {
	char name[IFNAMSIZ];
	uint8_t mac[6];
	int8_t carrier; /* 1 up, 0 down or unknown (the link is not up: sysfs says EINVAL) */
};

enum netcfg_op {
	NETCFG_LINK_UP, /* link */
	NETCFG_VLAN,	/* link = new VLAN link's name, parent, vlan */
	NETCFG_ADDR,	/* link, prefix */
	NETCFG_ROUTE,	/* prefix = destination, via; link may be "" */
	NETCFG_DHCP,	/* link */
	_NETCFG_OP_MAX
};

struct netcfg_action {
	enum netcfg_op op;
	char link[IFNAMSIZ];
	char parent[IFNAMSIZ];
	uint16_t vlan;
	struct cfg_prefix prefix;
	struct cfg_prefix via;
};

struct netcfg_plan {
	struct netcfg_action actions[NETCFG_MAX_ACTIONS];
	size_t n;
};

/* Plans the configuration of `node` (may be NULL: only ip= applies) on the given links.
 * Lines that name no present interface are reported in `warnings` (one line each) and
 * skipped; the rest is planned. Returns 0, or -E2BIG when the plan does not fit. */
int netcfg_plan(const struct cfg_node *node, const struct kcmdline *k,
		const struct netcfg_link *links, size_t n_links, struct netcfg_plan *ret,
		struct strbuf *warnings);

/* One line describing an action, for the log ("addr eth0 10.77.1.11/24"). */
void netcfg_action_format(const struct netcfg_action *a, char *out, size_t n);

/* Reads the local interfaces (not loopback) from `sysfs_net`, sorted by name, with their
 * carrier. */
int netcfg_links_read(const char *sysfs_net, struct netcfg_link *out, size_t max);

/* Applies every action except DHCP through rtnetlink; each failure is logged and the rest
 * still applied. Returns 0 or the first error. */
int netcfg_apply(const struct netcfg_plan *p);

/* A non-blocking rtnetlink socket that becomes readable when a link or an address changes
 * (a NIC appears, its carrier comes up, an address is assigned): the boot's waits retry at
 * once instead of at their next back-off. Returns the fd or -errno. */
int netcfg_monitor_open(void);
/* Reads what is queued (bounded); returns how many notifications (an overrun counts as
 * one), or -errno. */
int netcfg_monitor_drain(int fd);

/* What the node's configured interfaces still lack (SPEC §11): "no interface X" for a
 * `net =` line that names no present interface (its driver probes late, it is not plugged
 * yet), "link down on X" for one without carrier; X as the line names it (a MAC or a
 * name), each once, joined by "; " into why. Returns how many (0: all there and up). */
int netcfg_waiting_for(const struct cfg_node *node, const struct netcfg_link *links, size_t n_links,
		       struct strbuf *why);
