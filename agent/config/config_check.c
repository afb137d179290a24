/* The checks across sections (references, duplicates, required keys, timing sanity),
 * and the entry points that run the parser then them. */
#include "config_internal.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

/* ---- cross-section checks ---- */

static void perr_at(struct parse_ctx *p, int line, const char *key, const char *fmt, ...)
    _printf_(4, 5);
static void perr_at(struct parse_ctx *p, int line, const char *key, const char *fmt, ...)
{
	p->n_errors++;
	if (!p->errors)
		return;
	if (line > 0)
		sb_printf(p->errors, "%s:%d: ", p->path, line);
	else
		sb_printf(p->errors, "%s: ", p->path);
	if (key)
		sb_printf(p->errors, "%s: ", key);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(p->errors, fmt, ap);
	va_end(ap);
	sb_putc(p->errors, '\n');
}

static void set_port_default(struct cfg_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET && ((struct sockaddr_in *)&a->ss)->sin_port == 0)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&a->ss)->sin6_port == 0)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static void check_storage(struct parse_ctx *p, struct cfg_storage *s, int si, int line,
			  const char *what)
{
	if (!s->target[0])
		perr_at(p, line, "target", "missing in [%s]", what);
	if (s->n_portals == 0)
		perr_at(p, line, "portal", "[%s] needs at least one portal", what);
	for (int i = 0; i < s->n_portals; i++) {
		int ci = cfg_parse_find(p, SEC_COMPARTMENT, p->portal_comp_name[si][i]);
		if (ci < 0)
			perr_at(p, p->portal_line[si][i], "portal", "no compartment '%s'",
				p->portal_comp_name[si][i]);
		s->portals[i].compartment = ci;
		for (int j = 0; j < i; j++)
			if (s->portals[j].port == s->portals[i].port &&
			    strcmp(s->portals[j].host, s->portals[i].host) == 0)
				perr_at(p, p->portal_line[si][i], "portal", "%s:%u is listed twice",
					s->portals[i].host, s->portals[i].port);
	}
	if (s->chap_user[0] && !s->chap_secret_file[0])
		perr_at(p, line, "chap_secret_file", "[%s] has chap_user but no chap_secret_file",
			what);
	if (!s->chap_user[0] && s->chap_secret_file[0])
		perr_at(p, line, "chap_user", "[%s] has chap_secret_file but no chap_user", what);
}

/* CHAP credentials come in pairs (user and secret file), mutual only beside one-way. */
static void check_guest_chap(struct parse_ctx *p, const struct cfg_compartment *co, int line)
{
	if (!co->guest_chap_user[0] != !co->guest_chap_secret_file[0])
		perr_at(p, line, "guest_chap_user",
			"[compartment %s]: guest_chap_user and guest_chap_secret_file go together",
			co->name);
	if (!co->guest_chap_mutual_user[0] != !co->guest_chap_mutual_secret_file[0])
		perr_at(
		    p, line, "guest_chap_mutual_user",
		    "[compartment %s]: guest_chap_mutual_user and guest_chap_mutual_secret_file "
		    "go together",
		    co->name);
	if (co->guest_chap_mutual_user[0] && !co->guest_chap_user[0])
		perr_at(p, line, "guest_chap_mutual_user",
			"[compartment %s]: mutual CHAP needs guest_chap_user too", co->name);
}

/* The guest target's portal: the handshake address on port 3260 unless given. */
static void default_storage(struct cfg_node *n)
{
	if (n->has_storage || n->handshake.len == 0)
		return;
	n->storage = n->handshake;
	if (n->storage.ss.ss_family == AF_INET)
		((struct sockaddr_in *)&n->storage.ss)->sin_port = htons(CFG_GUEST_PORT);
	else
		((struct sockaddr_in6 *)&n->storage.ss)->sin6_port = htons(CFG_GUEST_PORT);
}

/* A node's handshake address or one of its MACs, for the search of duplicates. */
struct dup_key {
	int kind; /* 0: handshake address, 1: MAC */
	const void *key;
	size_t len;
	int node;
};

static int cmp_dup(const void *a, const void *b)
{
	const struct dup_key *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	int r = memcmp(x->key, y->key, x->len);
	return r ? r : (x->node > y->node) - (x->node < y->node);
}

/* dup[i]: node i has the handshake address or a MAC of an earlier node. Sorted, so
 * O(N log N) at 1 024 nodes; check_nodes names the earlier nodes for those alone. The
 * handshake ports must be defaulted first (the comparison includes them). */
static int mark_dups(const struct cfg *c, bool *dup)
{
	size_t n = 0, k = 0;
	for (int i = 0; i < c->n_nodes; i++)
		n += 1 + (size_t)c->nodes[i].n_macs;
	_cleanup_free_ struct dup_key *keys = calloc(n + 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (int i = 0; i < c->n_nodes; i++) {
		const struct cfg_node *nd = &c->nodes[i];
		if (nd->handshake.len)
			keys[k++] = (struct dup_key){0, &nd->handshake.ss, nd->handshake.len, i};
		for (int a = 0; a < nd->n_macs; a++)
			keys[k++] = (struct dup_key){1, nd->macs[a], 6, i};
	}
	qsort(keys, k, sizeof(*keys), cmp_dup);
	for (size_t j = 1; j < k; j++) {
		const struct dup_key *x = &keys[j - 1], *y = &keys[j];
		if (x->kind == y->kind && x->len == y->len && !memcmp(x->key, y->key, x->len) &&
		    x->node != y->node)
			dup[y->node] = true;
	}
	return 0;
}

static void check_nodes(struct parse_ctx *p)
{
	struct cfg *c = p->cfg;
	_cleanup_free_ bool *dup = calloc((size_t)c->n_nodes + 1, sizeof(bool));
	for (int i = 0; i < c->n_nodes; i++)
		set_port_default(&c->nodes[i].handshake, c->port);
	if (!dup || mark_dups(c, dup) < 0) {
		p->oom = true;
		perr_at(p, 0, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < c->n_nodes; i++) {
		struct cfg_node *n = &c->nodes[i];
		int line = p->node_meta[i].line;
		if (!p->node_meta[i].comp_name[0]) {
			perr_at(p, line, "compartment", "missing in [node %s]", n->name);
		} else {
			n->compartment =
			    cfg_parse_find(p, SEC_COMPARTMENT, p->node_meta[i].comp_name);
			if (n->compartment < 0)
				perr_at(p, line, "compartment", "[node %s]: no compartment '%s'",
					n->name, p->node_meta[i].comp_name);
		}
		if (n->handshake.len == 0)
			perr_at(p, line, "handshake", "missing in [node %s]", n->name);
		set_port_default(&n->handshake, c->port);
		if (n->has_external)
			set_port_default(&n->external, c->port);
		default_storage(n);
		if (!n->disks_auto && n->n_disks == 0)
			n->disks_auto = true;
		for (int j = 0; dup[i] && j < i; j++) {
			const struct cfg_node *o = &c->nodes[j];
			if (n->handshake.len && cfg_addr_equal(&n->handshake, &o->handshake))
				perr_at(p, line, "handshake",
					"[node %s] has the address of node %s", n->name, o->name);
			for (int a = 0; a < n->n_macs; a++)
				for (int b = 0; b < o->n_macs; b++)
					if (memcmp(n->macs[a], o->macs[b], 6) == 0) {
						char m[18];
						format_mac(n->macs[a], m);
						perr_at(p, line, "mac",
							"[node %s]: %s belongs to node %s too",
							n->name, m, o->name);
					}
		}
	}
}

/* Every pair has two compartments, and at most CFG_MAX_PAIR_NODES nodes of one kind
 * (the election's slots; every node takes part in the infra election, so that kind is
 * the largest). */
static void check_pairs(struct parse_ctx *p)
{
	struct cfg *c = p->cfg;
	_cleanup_free_ int *comps = calloc((size_t)c->n_pairs + 1, sizeof(int));
	_cleanup_free_ int *nodes = calloc((size_t)c->n_pairs + 1, sizeof(int));
	if (!comps || !nodes) {
		p->oom = true;
		perr_at(p, 0, NULL, "out of memory");
		return;
	}
	for (int j = 0; j < c->n_compartments; j++)
		if (c->compartments[j].pair >= 0)
			comps[c->compartments[j].pair]++;
	for (int i = 0; i < c->n_pairs; i++)
		if (comps[i] != 2)
			perr_at(p, 0, NULL, "[pair %s] has %d compartments; a pair has exactly 2",
				c->pairs[i].name, comps[i]);
	for (int i = 0; i < c->n_nodes; i++) {
		const char *cn = p->node_meta[i].comp_name;
		int co = cn[0] ? cfg_parse_find(p, SEC_COMPARTMENT, cn) : -1;
		int pr = co >= 0 ? c->compartments[co].pair : -1;
		if (pr < 0)
			continue;
		if (++nodes[pr] == CFG_MAX_PAIR_NODES + 1)
			perr_at(p, p->node_meta[i].line, NULL,
				"[node %s]: [pair %s] has more than %d nodes (the election's "
				"quorum slots per pair)",
				c->nodes[i].name, c->pairs[pr].name, CFG_MAX_PAIR_NODES);
	}
}

static void check_cfg(struct parse_ctx *p)
{
	struct cfg *c = p->cfg;
	if (!c->name[0])
		perr_at(p, p->cluster_line, "name", "missing in [cluster]");
	if (!c->key_file[0])
		perr_at(p, p->cluster_line, "key_file", "missing in [cluster]");
	if (c->n_pairs == 0)
		perr_at(p, 0, NULL, "no [pair NAME] section");
	for (int i = 0; i < c->n_compartments; i++) {
		struct cfg_compartment *co = &c->compartments[i];
		const struct comp_meta *m = &p->comp_meta[i];
		check_guest_chap(p, co, m->line);
		if (!m->has_zone)
			perr_at(p, m->line, "zone", "missing in [compartment %s]", co->name);
		if (!m->pair_name[0]) {
			perr_at(p, m->line, "pair", "missing in [compartment %s]", co->name);
			co->pair = -1;
			continue;
		}
		co->pair = cfg_parse_find(p, SEC_PAIR, m->pair_name);
		if (co->pair < 0)
			perr_at(p, m->line, "pair", "[compartment %s]: no pair '%s'", co->name,
				m->pair_name);
	}
	check_pairs(p);
	if (c->n_nodes == 0)
		perr_at(p, 0, NULL, "no [node NAME] section");
	check_nodes(p);
	for (int i = 0; i < c->n_storage; i++) {
		char what[64];
		snprintf(what, sizeof(what), "storage %s", c->storage[i].name);
		check_storage(p, &c->storage[i], i, p->storage_line[i], what);
	}
	if (p->quorum_none) {
		c->has_quorum = false;
	} else if (c->has_quorum) {
		snprintf(c->quorum.name, sizeof(c->quorum.name), "quorum");
		check_storage(p, &c->quorum, CFG_MAX_STORAGE, 0, "quorum");
	}
	struct cfg_timeouts *t = &c->timeouts;
	if (!p->lease_set)
		t->lease = 2 * t->disk_heartbeat_interval;
	if (t->lease <= t->disk_heartbeat_interval)
		perr_at(p, 0, "lease", "must be longer than disk_heartbeat_interval");
	if (t->handshake_timeout > t->handshake_window)
		perr_at(p, 0, "handshake_timeout", "is longer than handshake_window");
}

int cfg_parse(const char *path, const char *text, size_t len, const struct cfg_override *ovr,
	      size_t n_ovr, struct cfg **ret, struct strbuf *errors)
{
	if (len > CFG_MAX_TEXT) {
		if (errors)
			sb_printf(errors, "%s: larger than %u bytes\n", path, CFG_MAX_TEXT);
		return -EINVAL;
	}
	struct cfg *c = calloc(1, sizeof(*c));
	struct parse_ctx *p = calloc(1, sizeof(*p));
	if (!c || !p) {
		free(c);
		free(p);
		return -ENOMEM;
	}
	cfg_set_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", path);
	crypto_generichash(c->hash, sizeof(c->hash), (const unsigned char *)text, len, NULL, 0);
	p->cfg = c;
	p->path = path;
	p->errors = errors;
	cfg_parse_text(p, text, len);
	for (size_t i = 0; i < n_ovr; i++)
		cfg_apply_override(p, &ovr[i]);
	check_cfg(p);
	int nerr = p->n_errors;
	bool oom = p->oom;
	free(p->node_meta);
	free(p->comp_meta);
	cfg_parse_names_free(p);
	free(p);
	if (nerr) {
		cfg_free(c);
		return oom ? -ENOMEM : -EINVAL;
	}
	*ret = c;
	return 0;
}

int cfg_load(const char *path, const struct cfg_override *ovr, size_t n_ovr, struct cfg **ret,
	     struct strbuf *errors)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_full_file(path, CFG_MAX_TEXT, &text, &len);
	if (r < 0) {
		if (errors)
			sb_printf(errors, "%s: cannot read: %s\n", path, strerror(-r));
		return r;
	}
	return cfg_parse(path, text, len, ovr, n_ovr, ret, errors);
}

struct cfg *cfg_free(struct cfg *c)
{
	if (!c)
		return NULL;
	free(c->pairs);
	free(c->compartments);
	free(c->nodes);
	free(c);
	return NULL;
}

void cfg_replace(struct cfg *into, struct cfg *from)
{
	struct cfg_pair *pairs = into->pairs;
	struct cfg_compartment *comps = into->compartments;
	struct cfg_node *nodes = into->nodes;
	memcpy(pairs, from->pairs, (size_t)from->n_pairs * sizeof(*pairs));
	memcpy(comps, from->compartments, (size_t)from->n_compartments * sizeof(*comps));
	memcpy(nodes, from->nodes, (size_t)from->n_nodes * sizeof(*nodes));
	free(from->pairs);
	free(from->compartments);
	free(from->nodes);
	*into = *from;
	into->pairs = pairs;
	into->compartments = comps;
	into->nodes = nodes;
	free(from);
}

static void *dup_table(const void *a, int n, size_t size)
{
	void *d = calloc((size_t)n + 1, size);
	if (d && n > 0)
		memcpy(d, a, (size_t)n * size);
	return d;
}

int cfg_dup(const struct cfg *c, struct cfg **ret)
{
	struct cfg *d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = *c;
	d->pairs = dup_table(c->pairs, c->n_pairs, sizeof(*c->pairs));
	d->compartments = dup_table(c->compartments, c->n_compartments, sizeof(*c->compartments));
	d->nodes = dup_table(c->nodes, c->n_nodes, sizeof(*c->nodes));
	if (!d->pairs || !d->compartments || !d->nodes) {
		cfg_free(d);
		return -ENOMEM;
	}
	*ret = d;
	return 0;
}

void cfg_hash_hex(const struct cfg *c, char out[65])
{
	sodium_bin2hex(out, 65, c->hash, sizeof(c->hash));
}

const char *cfg_topology_change(const struct cfg *a, const struct cfg *b)
{
	if (a->n_pairs != b->n_pairs || a->n_compartments != b->n_compartments)
		return "the pairs or compartments changed";
	for (int i = 0; i < a->n_pairs; i++)
		if (strcmp(a->pairs[i].name, b->pairs[i].name))
			return "the pairs changed";
	for (int i = 0; i < a->n_compartments; i++)
		if (strcmp(a->compartments[i].name, b->compartments[i].name) ||
		    a->compartments[i].pair != b->compartments[i].pair)
			return "the compartments changed";
	if (a->n_nodes != b->n_nodes)
		return "the set of nodes changed";
	for (int i = 0; i < a->n_nodes; i++)
		if (strcmp(a->nodes[i].name, b->nodes[i].name) ||
		    a->nodes[i].compartment != b->nodes[i].compartment)
			return "the set of nodes changed";
		else if (!cfg_addr_equal(&a->nodes[i].handshake, &b->nodes[i].handshake))
			return "a handshake address changed";
	if (a->n_storage != b->n_storage || a->has_quorum != b->has_quorum)
		return "the storage or quorum device changed";
	for (int i = 0; i < a->n_storage; i++)
		if (strcmp(a->storage[i].name, b->storage[i].name))
			return "the storage changed";
	return NULL;
}
