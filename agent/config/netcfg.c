#include "netcfg.h"

#include "log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const op_str[_NETCFG_OP_MAX] = {
    [NETCFG_LINK_UP] = "up",  [NETCFG_VLAN] = "vlan", [NETCFG_ADDR] = "addr",
    [NETCFG_ROUTE] = "route", [NETCFG_DHCP] = "dhcp",
};

static const char *netcfg_op_to_str(enum netcfg_op op)
{
	return op < _NETCFG_OP_MAX ? op_str[op] : NULL;
}

/* ---- the plan (pure) ---- */

static const struct netcfg_link *link_by_mac(const struct netcfg_link *links, size_t n,
					     const uint8_t mac[6])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(links[i].mac, mac, 6))
			return &links[i];
	return NULL;
}

static const struct netcfg_link *link_by_name(const struct netcfg_link *links, size_t n,
					      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(links[i].name, name))
			return &links[i];
	return NULL;
}

static struct netcfg_action *plan_add(struct netcfg_plan *p, enum netcfg_op op, const char *link)
{
	if (p->n >= NETCFG_MAX_ACTIONS)
		return NULL;
	/* Bringing a link up, or starting DHCP on it, twice is one action. */
	if (op == NETCFG_LINK_UP || op == NETCFG_DHCP)
		for (size_t i = 0; i < p->n; i++)
			if (p->actions[i].op == op && !strcmp(p->actions[i].link, link))
				return &p->actions[i];
	struct netcfg_action *a = &p->actions[p->n++];
	*a = (struct netcfg_action){.op = op};
	snprintf(a->link, sizeof(a->link), "%s", link);
	return a;
}

static struct cfg_prefix default_dest(int family)
{
	return (struct cfg_prefix){.family = family, .len = 0};
}

/* One `net =` line: [vlan link], link up, then an address or DHCP, then its gateway. */
static int plan_net(struct netcfg_plan *p, const struct cfg_net *net, const char *dev)
{
	char target[IFNAMSIZ];
	snprintf(target, sizeof(target), "%s", dev);
	if (!plan_add(p, NETCFG_LINK_UP, dev))
		return -E2BIG;
	if (net->vlan) {
		/* "eth0.100"; names longer than IFNAMSIZ are shortened to "vl<ifidx-free>.<id>". */
		if ((size_t)snprintf(target, sizeof(target), "%s.%u", dev, net->vlan) >=
		    sizeof(target))
			snprintf(target, sizeof(target), "vlan%u", net->vlan);
		struct netcfg_action *v = plan_add(p, NETCFG_VLAN, target);
		if (!v)
			return -E2BIG;
		snprintf(v->parent, sizeof(v->parent), "%s", dev);
		v->vlan = net->vlan;
		if (!plan_add(p, NETCFG_LINK_UP, target))
			return -E2BIG;
	}
	struct netcfg_action *a = plan_add(p, net->dhcp ? NETCFG_DHCP : NETCFG_ADDR, target);
	if (!a)
		return -E2BIG;
	a->prefix = net->addr;
	if (!net->dhcp && net->has_gateway) {
		struct netcfg_action *r = plan_add(p, NETCFG_ROUTE, target);
		if (!r)
			return -E2BIG;
		r->prefix = default_dest(net->gateway.family);
		r->via = net->gateway;
	}
	return 0;
}

/* The interface an ip= without a device applies to: the PXE boot interface, else the first. */
static const struct netcfg_link *kip_link(const struct kcmdline *k, const struct kip *ip,
					  const struct netcfg_link *links, size_t n)
{
	if (ip->device[0])
		return link_by_name(links, n, ip->device);
	if (k->has_bootif) {
		const struct netcfg_link *l = link_by_mac(links, n, k->bootif);
		if (l)
			return l;
	}
	return n > 0 ? &links[0] : NULL;
}

static int plan_kip(struct netcfg_plan *p, const struct kcmdline *k, const struct kip *ip,
		    const struct netcfg_link *links, size_t n, struct strbuf *warnings)
{
	if (ip->mode == KIP_OFF)
		return 0;
	const struct netcfg_link *l = kip_link(k, ip, links, n);
	if (!l) {
		sb_printf(warnings, "ip=: no interface %s, skipped\n",
			  ip->device[0] ? ip->device : "to configure");
		return 0;
	}
	if (!plan_add(p, NETCFG_LINK_UP, l->name))
		return -E2BIG;
	if (ip->mode == KIP_DHCP)
		return plan_add(p, NETCFG_DHCP, l->name) ? 0 : -E2BIG;
	if (ip->has_client) {
		struct netcfg_action *a = plan_add(p, NETCFG_ADDR, l->name);
		if (!a)
			return -E2BIG;
		a->prefix = ip->client;
	}
	if (ip->has_gateway) {
		struct netcfg_action *r = plan_add(p, NETCFG_ROUTE, l->name);
		if (!r)
			return -E2BIG;
		r->prefix = default_dest(ip->gateway.family);
		r->via = ip->gateway;
	}
	return 0;
}

int netcfg_plan(const struct cfg_node *node, const struct kcmdline *k,
		const struct netcfg_link *links, size_t n_links, struct netcfg_plan *ret,
		struct strbuf *warnings)
{
	struct netcfg_plan p = {.n = 0};
	int r;
	if (!plan_add(&p, NETCFG_LINK_UP, "lo"))
		return -E2BIG;
	for (int i = 0; node && i < node->n_nets; i++) {
		const struct cfg_net *net = &node->nets[i];
		const struct netcfg_link *l = net->by_mac
						  ? link_by_mac(links, n_links, net->mac)
						  : link_by_name(links, n_links, net->match);
		if (!l) {
			sb_printf(warnings, "net = %s: no such interface on this host, skipped\n",
				  net->match);
			continue;
		}
		if ((r = plan_net(&p, net, l->name)) < 0)
			return r;
	}
	for (int i = 0; node && i < node->n_routes; i++) {
		struct netcfg_action *a = plan_add(&p, NETCFG_ROUTE, "");
		if (!a)
			return -E2BIG;
		a->prefix = node->routes[i].dest;
		a->via = node->routes[i].via;
	}
	for (int i = 0; k && i < k->n_ips; i++)
		if ((r = plan_kip(&p, k, &k->ips[i], links, n_links, warnings)) < 0)
			return r;
	*ret = p;
	return 0;
}

void netcfg_action_format(const struct netcfg_action *a, char *out, size_t n)
{
	char pfx[64] = "", via[64] = "";
	switch (a->op) {
	case NETCFG_LINK_UP:
	case NETCFG_DHCP:
		snprintf(out, n, "%s %s", netcfg_op_to_str(a->op), a->link);
		return;
	case NETCFG_VLAN:
		snprintf(out, n, "vlan %s on %s id %u", a->link, a->parent, a->vlan);
		return;
	case NETCFG_ADDR:
		cfg_prefix_format(&a->prefix, true, pfx, sizeof(pfx));
		snprintf(out, n, "addr %s %s", a->link, pfx);
		return;
	case NETCFG_ROUTE:
		if (a->prefix.len == 0)
			snprintf(pfx, sizeof(pfx), "default");
		else
			cfg_prefix_format(&a->prefix, true, pfx, sizeof(pfx));
		cfg_prefix_format(&a->via, false, via, sizeof(via));
		snprintf(out, n, "route %s via %s%s%s", pfx, via, a->link[0] ? " dev " : "",
			 a->link);
		return;
	case _NETCFG_OP_MAX:
		break;
	}
	snprintf(out, n, "?");
}

/* ---- the driver ---- */

static int cmp_link(const void *a, const void *b)
{
	return strcmp(((const struct netcfg_link *)a)->name, ((const struct netcfg_link *)b)->name);
}

int netcfg_links_read(const char *sysfs_net, struct netcfg_link *out, size_t max)
{
	DIR *d = opendir(sysfs_net);
	if (!d)
		return -errno;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "lo") ||
		    strlen(de->d_name) >= IFNAMSIZ)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s/address", sysfs_net, de->d_name);
		_cleanup_free_ char *text = NULL;
		if (read_full_file(path, 64, &text, NULL) < 0 ||
		    parse_mac(strstrip(text), out[n].mac) < 0)
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", de->d_name);
		snprintf(path, sizeof(path), "%s/%s/carrier", sysfs_net, de->d_name);
		_cleanup_free_ char *carrier = NULL;
		out[n].carrier = read_full_file(path, 16, &carrier, NULL) >= 0 &&
				 !strcmp(strstrip(carrier), "1");
		n++;
	}
	closedir(d);
	qsort(out, n, sizeof(*out), cmp_link);
	return (int)n;
}

struct nlmsg {
	struct nlmsghdr h;
	char buf[512];
};

static void *nl_tail(struct nlmsg *m)
{
	return (char *)&m->h + NLMSG_ALIGN(m->h.nlmsg_len);
}

static int nl_attr(struct nlmsg *m, uint16_t type, const void *data, size_t len)
{
	size_t need = NLMSG_ALIGN(m->h.nlmsg_len) + RTA_SPACE(len);
	if (need > sizeof(*m))
		return -E2BIG;
	struct rtattr *rta = nl_tail(m);
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	m->h.nlmsg_len = (uint32_t)need;
	return 0;
}

static struct rtattr *nl_nest(struct nlmsg *m, uint16_t type)
{
	struct rtattr *rta = nl_tail(m);
	return nl_attr(m, type, NULL, 0) < 0 ? NULL : rta;
}

static void nl_nest_end(struct nlmsg *m, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)nl_tail(m) - (char *)nest);
}

/* Sends one request and waits for its acknowledgement; returns 0 or the kernel's -errno. */
static int nl_talk(struct nlmsg *m)
{
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 2};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	m->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	m->h.nlmsg_seq = 1;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, m, m->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	char buf[4096];
	for (int tries = 0; tries < 8; tries++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	return -ETIMEDOUT;
}

static void nl_begin(struct nlmsg *m, uint16_t type, uint16_t flags, size_t hdr_len)
{
	memset(m, 0, sizeof(*m));
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = flags;
	m->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr_len);
}

static int ifindex_of(const char *name)
{
	unsigned idx = if_nametoindex(name);
	return idx ? (int)idx : -ENODEV;
}

static int do_link_up(const struct netcfg_action *a)
{
	int idx = ifindex_of(a->link);
	if (idx < 0)
		return idx;
	struct nlmsg m;
	nl_begin(&m, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = NLMSG_DATA(&m.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = idx;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_talk(&m);
}

static int do_vlan(const struct netcfg_action *a)
{
	int parent = ifindex_of(a->parent);
	if (parent < 0)
		return parent;
	struct nlmsg m;
	nl_begin(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
	((struct ifinfomsg *)NLMSG_DATA(&m.h))->ifi_family = AF_UNSPEC;
	uint32_t link = (uint32_t)parent;
	uint16_t id = a->vlan;
	struct rtattr *info, *data;
	if (nl_attr(&m, IFLA_LINK, &link, sizeof(link)) < 0 ||
	    nl_attr(&m, IFLA_IFNAME, a->link, strlen(a->link) + 1) < 0 ||
	    !(info = nl_nest(&m, IFLA_LINKINFO)) || nl_attr(&m, IFLA_INFO_KIND, "vlan", 5) < 0 ||
	    !(data = nl_nest(&m, IFLA_INFO_DATA)) || nl_attr(&m, IFLA_VLAN_ID, &id, sizeof(id)) < 0)
		return -E2BIG;
	nl_nest_end(&m, data);
	nl_nest_end(&m, info);
	int r = nl_talk(&m);
	return r == -EEXIST ? 0 : r;
}

static size_t prefix_bytes(const struct cfg_prefix *p)
{
	return p->family == AF_INET6 ? 16 : 4;
}

static int do_addr(const struct netcfg_action *a)
{
	int idx = ifindex_of(a->link);
	if (idx < 0)
		return idx;
	struct nlmsg m;
	nl_begin(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(struct ifaddrmsg));
	struct ifaddrmsg *ifa = NLMSG_DATA(&m.h);
	ifa->ifa_family = (uint8_t)a->prefix.family;
	ifa->ifa_prefixlen = a->prefix.len;
	ifa->ifa_index = (uint32_t)idx;
	size_t len = prefix_bytes(&a->prefix);
	if (nl_attr(&m, IFA_LOCAL, a->prefix.addr, len) < 0 ||
	    nl_attr(&m, IFA_ADDRESS, a->prefix.addr, len) < 0)
		return -E2BIG;
	return nl_talk(&m);
}

static int do_route(const struct netcfg_action *a)
{
	struct nlmsg m;
	nl_begin(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof(struct rtmsg));
	struct rtmsg *rt = NLMSG_DATA(&m.h);
	rt->rtm_family = (uint8_t)a->via.family;
	rt->rtm_dst_len = a->prefix.len;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	size_t len = prefix_bytes(&a->via);
	if (a->prefix.len && nl_attr(&m, RTA_DST, a->prefix.addr, len) < 0)
		return -E2BIG;
	if (nl_attr(&m, RTA_GATEWAY, a->via.addr, len) < 0)
		return -E2BIG;
	if (a->link[0]) {
		int idx = ifindex_of(a->link);
		if (idx < 0)
			return idx;
		uint32_t oif = (uint32_t)idx;
		if (nl_attr(&m, RTA_OIF, &oif, sizeof(oif)) < 0)
			return -E2BIG;
	}
	return nl_talk(&m);
}

static int apply_one(const struct netcfg_action *a)
{
	switch (a->op) {
	case NETCFG_LINK_UP:
		return do_link_up(a);
	case NETCFG_VLAN:
		return do_vlan(a);
	case NETCFG_ADDR: {
		int r = do_addr(a);
		return r == -EEXIST ? 0 : r;
	}
	case NETCFG_ROUTE:
		return do_route(a);
	case NETCFG_DHCP:
	case _NETCFG_OP_MAX:
		break;
	}
	return 0;
}

int netcfg_apply(const struct netcfg_plan *p)
{
	int first = 0;
	for (size_t i = 0; i < p->n; i++) {
		char what[160];
		netcfg_action_format(&p->actions[i], what, sizeof(what));
		if (p->actions[i].op == NETCFG_DHCP)
			continue;
		int r = apply_one(&p->actions[i]);
		if (r < 0) {
			log_error_errno(r, "network: %s failed", what);
			if (!first)
				first = r;
		} else {
			log_info("network: %s", what);
		}
	}
	return first;
}

int netcfg_monitor_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups =
				     RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int netcfg_monitor_drain(int fd)
{
	char buf[8192];
	int n = 0;
	for (int i = 0; i < 64; i++) { /* bounded: a flood waits for the next wake-up */
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0)
			return errno == EAGAIN || errno == ENOBUFS ? n + (errno == ENOBUFS)
								   : -errno;
		n++;
	}
	return n;
}

static bool net_named_before(const struct cfg_node *node, int i)
{
	for (int j = 0; j < i; j++)
		if (!strcmp(node->nets[j].match, node->nets[i].match))
			return true;
	return false;
}

int netcfg_waiting_for(const struct cfg_node *node, const struct netcfg_link *links, size_t n_links,
		       struct strbuf *why)
{
	int n = 0;
	for (int i = 0; node && i < node->n_nets; i++) {
		const struct cfg_net *net = &node->nets[i];
		if (net_named_before(node, i))
			continue;
		const struct netcfg_link *l = net->by_mac
						  ? link_by_mac(links, n_links, net->mac)
						  : link_by_name(links, n_links, net->match);
		if (l && l->carrier)
			continue;
		sb_printf(why, "%s%s %s", n ? "; " : "", l ? "link down on" : "no interface",
			  net->match);
		n++;
	}
	return n;
}
