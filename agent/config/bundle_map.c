/* Bundles: the remapping of a pair's names, MACs, addresses and IQNs (pure). */
#include "bundle_internal.h"

#include <string.h>

static int add_name(struct bundle_name_map *t, int *n, const char *arg, size_t max,
		    const char *kind, struct strbuf *err)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= max || strlen(eq + 1) >= max) {
		sb_printf(err, "--map-%s %s: want OLD=NEW\n", kind, arg);
		return -EINVAL;
	}
	if (*n >= BUNDLE_MAX_MAPS) {
		sb_printf(err, "--map-%s %s: more than %d mappings\n", kind, arg, BUNDLE_MAX_MAPS);
		return -EINVAL;
	}
	memcpy(t[*n].from, arg, (size_t)(eq - arg));
	t[*n].from[eq - arg] = '\0';
	strcpy(t[*n].to, eq + 1);
	(*n)++;
	return 0;
}

static int add_net(struct bundle_map *m, const char *arg, struct strbuf *err)
{
	char a[64], b[64];
	const char *eq = strchr(arg, '=');
	struct bundle_net_map nm;
	if (!eq || (size_t)(eq - arg) >= sizeof(a) || strlen(eq + 1) >= sizeof(b) ||
	    m->n_nets >= BUNDLE_MAX_MAPS)
		goto bad;
	memcpy(a, arg, (size_t)(eq - arg));
	a[eq - arg] = '\0';
	strcpy(b, eq + 1);
	if (cfg_prefix_parse(a, true, &nm.from) < 0 || cfg_prefix_parse(b, true, &nm.to) < 0 ||
	    nm.from.family != nm.to.family || nm.from.len != nm.to.len)
		goto bad;
	m->nets[m->n_nets++] = nm;
	return 0;
bad:
	sb_printf(err, "--map-net %s: want OLD/LEN=NEW/LEN, same family and length\n", arg);
	return -EINVAL;
}

static int add_mac(struct bundle_map *m, const char *arg, struct strbuf *err)
{
	char a[32];
	const char *eq = strchr(arg, '=');
	struct bundle_mac_map mm;
	if (!eq || (size_t)(eq - arg) >= sizeof(a) ||
	    m->n_macs >= (int)(sizeof(m->macs) / sizeof(m->macs[0])))
		goto bad;
	memcpy(a, arg, (size_t)(eq - arg));
	a[eq - arg] = '\0';
	if (parse_mac(a, mm.from) < 0 || parse_mac(eq + 1, mm.to) < 0)
		goto bad;
	m->macs[m->n_macs++] = mm;
	return 0;
bad:
	sb_printf(err, "--map-mac %s: want OLD=NEW MAC addresses\n", arg);
	return -EINVAL;
}

int bundle_map_add(struct bundle_map *m, const char *kind, const char *arg, struct strbuf *err)
{
	if (!strcmp(kind, "node"))
		return add_name(m->nodes, &m->n_nodes, arg, CFG_NAME_MAX, kind, err);
	if (!strcmp(kind, "compartment"))
		return add_name(m->comps, &m->n_comps, arg, CFG_NAME_MAX, kind, err);
	if (!strcmp(kind, "storage"))
		return add_name(m->storage, &m->n_storage, arg, CFG_NAME_MAX, kind, err);
	if (!strcmp(kind, "iqn"))
		return add_name(m->iqns, &m->n_iqns, arg, CFG_IQN_MAX, kind, err);
	if (!strcmp(kind, "net"))
		return add_net(m, arg, err);
	if (!strcmp(kind, "mac"))
		return add_mac(m, arg, err);
	sb_printf(err, "--map-%s: unknown mapping\n", kind);
	return -EINVAL;
}

/* ---- the remapping of one parsed bundle configuration ---- */

static const char *lookup(const struct bundle_name_map *t, int n, const char *from)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(t[i].from, from))
			return t[i].to;
	return NULL;
}

static void map_name(struct remap *r, const struct bundle_name_map *t, int n, const char *what,
		     char *name)
{
	const char *to = lookup(t, n, name);
	if (!to) {
		remap_err(r, "%s %s: not mapped (give --map-%s %s=NEW)", what, name, what, name);
		return;
	}
	size_t l = strnlen(to, CFG_NAME_MAX - 1); /* bundle_map_add kept it shorter */
	memcpy(name, to, l);
	name[l] = '\0';
}

static bool prefix_covers(const struct cfg_prefix *p, int family, const uint8_t *a)
{
	if (p->family != family)
		return false;
	int full = p->len / 8, rest = p->len % 8;
	if (memcmp(p->addr, a, (size_t)full))
		return false;
	return !rest || ((p->addr[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* Replaces the prefix bits of address a (16 bytes) by the mapping's; false when no
 * --map-net covers it. */
static bool map_bytes(const struct bundle_map *m, int family, uint8_t *a, unsigned min_len)
{
	const struct bundle_net_map *best = NULL;
	for (int i = 0; i < m->n_nets; i++)
		if (prefix_covers(&m->nets[i].from, family, a) && m->nets[i].from.len <= min_len &&
		    (!best || m->nets[i].from.len > best->from.len))
			best = &m->nets[i];
	if (!best)
		return false;
	int full = best->to.len / 8, rest = best->to.len % 8;
	memcpy(a, best->to.addr, (size_t)full);
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		a[full] = (uint8_t)((best->to.addr[full] & mask) | (a[full] & ~mask));
	}
	return true;
}

void remap_prefix(struct remap *r, const char *where, struct cfg_prefix *p)
{
	char s[64];
	if (map_bytes(r->m, p->family, p->addr, p->len))
		return;
	if (p->len == 0)
		return; /* a default route stays one */
	cfg_prefix_format(p, true, s, sizeof(s));
	remap_err(r, "%s %s: in no --map-net", where, s);
}

void remap_addr(struct remap *r, const char *where, struct cfg_addr *a)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
	uint8_t b[16] = {0};
	bool v4 = a->ss.ss_family == AF_INET;
	memcpy(b, v4 ? (void *)&in4->sin_addr : (void *)&in6->sin6_addr, v4 ? 4 : 16);
	if (!map_bytes(r->m, a->ss.ss_family, b, v4 ? 32 : 128)) {
		char s[80];
		cfg_addr_format(a, s, sizeof(s));
		remap_err(r, "%s %s: in no --map-net", where, s);
		return;
	}
	memcpy(v4 ? (void *)&in4->sin_addr : (void *)&in6->sin6_addr, b, v4 ? 4 : 16);
}

void remap_host(struct remap *r, const char *where, char *host, size_t n)
{
	struct cfg_prefix p;
	if (cfg_prefix_parse(host, false, &p) < 0) {
		remap_err(r, "%s %s: not a numeric address", where, host);
		return;
	}
	if (!map_bytes(r->m, p.family, p.addr, p.len)) {
		remap_err(r, "%s %s: in no --map-net", where, host);
		return;
	}
	cfg_prefix_format(&p, false, host, n);
}

static void map_mac(struct remap *r, const char *node, uint8_t mac[6])
{
	for (int i = 0; i < r->m->n_macs; i++)
		if (!memcmp(r->m->macs[i].from, mac, 6)) {
			memcpy(mac, r->m->macs[i].to, 6);
			return;
		}
	char s[18];
	format_mac(mac, s);
	remap_err(r, "node %s: mac %s: not mapped (give --map-mac %s=NEW)", node, s, s);
}

static void remap_node(struct remap *r, struct cfg_node *n)
{
	char old[CFG_NAME_MAX], where[80];
	snprintf(old, sizeof(old), "%s", n->name);
	map_name(r, r->m->nodes, r->m->n_nodes, "node", n->name);
	for (int i = 0; i < n->n_macs; i++)
		map_mac(r, old, n->macs[i]);
	snprintf(where, sizeof(where), "node %s: handshake", old);
	remap_addr(r, where, &n->handshake);
	snprintf(where, sizeof(where), "node %s: external", old);
	if (n->has_external)
		remap_addr(r, where, &n->external);
	snprintf(where, sizeof(where), "node %s: storage", old);
	if (n->has_storage)
		remap_addr(r, where, &n->storage);
	for (int i = 0; i < n->n_nets; i++) {
		struct cfg_net *ne = &n->nets[i];
		snprintf(where, sizeof(where), "node %s: net", old);
		if (ne->by_mac) {
			map_mac(r, old, ne->mac);
			format_mac(ne->mac, ne->match);
		}
		if (!ne->dhcp)
			remap_prefix(r, where, &ne->addr);
		if (ne->has_gateway)
			remap_prefix(r, where, &ne->gateway);
	}
	for (int i = 0; i < n->n_routes; i++) {
		snprintf(where, sizeof(where), "node %s: route", old);
		remap_prefix(r, where, &n->routes[i].dest);
		remap_prefix(r, where, &n->routes[i].via);
	}
}

/* The IQN: --map-iqn, else a name-suffixed IQN follows the storage's new name; the
 * quorum's stays (a cluster has one quorum device). */
static void remap_iqn(struct remap *r, struct cfg_storage *s, const char *old, bool quorum)
{
	const char *iqn = lookup(r->m->iqns, r->m->n_iqns, s->target);
	size_t tl = strlen(s->target), ol = strlen(old);
	if (iqn)
		snprintf(s->target, sizeof(s->target), "%s", iqn);
	else if (quorum)
		return;
	else if (tl > ol + 1 && s->target[tl - ol - 1] == ':' &&
		 !strcmp(s->target + tl - ol, old) && tl - ol + strlen(s->name) < sizeof(s->target))
		strcpy(s->target + tl - ol, s->name); /* iqn…:mirror0 follows the name */
	else
		remap_err(r, "storage %s: target %s: not mapped (give --map-iqn %s=NEW)", old,
			  s->target, s->target);
}

/* A compartment's infrastructural initiators (its guest targets' ACL): --map-iqn, else an
 * IQN that ends in ".<compartment>" or ":<compartment>" follows the compartment's new
 * name; anything else must be mapped, or the new pair's guest storage would admit the
 * old pair's instances. */
static void remap_initiators(struct remap *r, struct cfg_compartment *co, const char *old)
{
	size_t ol = strlen(old);
	for (int i = 0; i < co->n_infra_initiators; i++) {
		char *iqn = co->infra_initiators[i];
		const char *to = lookup(r->m->iqns, r->m->n_iqns, iqn);
		size_t tl = strlen(iqn);
		if (to)
			snprintf(iqn, CFG_IQN_MAX, "%s", to);
		else if (tl > ol + 1 && (iqn[tl - ol - 1] == '.' || iqn[tl - ol - 1] == ':') &&
			 !strcmp(iqn + tl - ol, old) && tl - ol + strlen(co->name) < CFG_IQN_MAX)
			strcpy(iqn + tl - ol, co->name);
		else
			remap_err(r,
				  "compartment %s: infra_initiator %s: not mapped (give "
				  "--map-iqn %s=NEW)",
				  old, iqn, iqn);
	}
}

static void remap_storage(struct remap *r, struct cfg_storage *s, bool quorum)
{
	char old[CFG_NAME_MAX], where[80];
	snprintf(old, sizeof(old), "%s", s->name);
	if (!quorum)
		map_name(r, r->m->storage, r->m->n_storage, "storage", s->name);
	remap_iqn(r, s, old, quorum);
	snprintf(where, sizeof(where), "%s%s: portal", quorum ? "quorum" : "storage ",
		 quorum ? "" : old);
	for (int i = 0; i < s->n_portals; i++)
		remap_host(r, where, s->portals[i].host, sizeof(s->portals[i].host));
	s->designator[0] = '\0'; /* the new LU's designator is not known yet */
}

static bool has_mac(const struct cfg *b, const uint8_t mac[6])
{
	for (int i = 0; i < b->n_nodes; i++)
		for (int k = 0; k < b->nodes[i].n_macs; k++)
			if (!memcmp(b->nodes[i].macs[k], mac, 6))
				return true;
	return false;
}

/* A mapping of something the bundle does not have is a typo: refused. */
static void check_unused(struct remap *r, const struct cfg *b)
{
	const struct bundle_map *m = r->m;
	for (int i = 0; i < m->n_nodes; i++)
		if (cfg_find_node(b, m->nodes[i].from) < 0)
			remap_err(r, "--map-node %s=%s: the bundle has no node %s",
				  m->nodes[i].from, m->nodes[i].to, m->nodes[i].from);
	for (int i = 0; i < m->n_comps; i++)
		if (cfg_find_compartment(b, m->comps[i].from) < 0)
			remap_err(r, "--map-compartment %s=%s: the bundle has no compartment %s",
				  m->comps[i].from, m->comps[i].to, m->comps[i].from);
	for (int i = 0; i < m->n_storage; i++)
		if (cfg_find_storage(b, m->storage[i].from) < 0)
			remap_err(r, "--map-storage %s=%s: the bundle has no storage %s",
				  m->storage[i].from, m->storage[i].to, m->storage[i].from);
	for (int i = 0; i < m->n_macs; i++)
		if (!has_mac(b, m->macs[i].from)) {
			char s[18];
			format_mac(m->macs[i].from, s);
			remap_err(r, "--map-mac %s=…: no node of the bundle has MAC %s", s, s);
		}
}

void bundle_remap(struct remap *r, struct cfg *b, const char *pair)
{
	check_unused(r, b);
	snprintf(b->pairs[0].name, sizeof(b->pairs[0].name), "%s", pair);
	for (int i = 0; i < b->n_compartments; i++) {
		char old[CFG_NAME_MAX];
		snprintf(old, sizeof(old), "%s", b->compartments[i].name);
		map_name(r, r->m->comps, r->m->n_comps, "compartment", b->compartments[i].name);
		remap_initiators(r, &b->compartments[i], old);
	}
	for (int i = 0; i < b->n_nodes; i++)
		remap_node(r, &b->nodes[i]);
	for (int i = 0; i < b->n_storage; i++)
		remap_storage(r, &b->storage[i], false);
	if (b->has_quorum)
		remap_storage(r, &b->quorum, true);
}
