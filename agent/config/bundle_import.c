/* Bundles: import, i.e. the remapped pair merged into a cluster file as text (the
 * target's comments and order are kept; the new sections are appended). */
#include "bundle_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void remap_err(struct remap *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(r->err, fmt, ap);
	va_end(ap);
	sb_putc(r->err, '\n');
	r->n_errors++;
}

/* ---- sections of a normalized text ---- */

struct section {
	char head[2 * CFG_NAME_MAX + 4]; /* "[node a1]" */
	const char *text;		 /* from the header line to the next section */
	size_t len;
};

/* An upper bound of the sections split_sections finds: lines starting with '['. */
static int count_sections(const char *t)
{
	int n = 1;
	for (const char *p = t; p && (p = strstr(p, "\n[")); p++)
		n++;
	return n;
}

/* s: room for count_sections(t). */
static int split_sections(const char *t, struct section *s)
{
	int n = 0;
	for (const char *p = t; p && *p;) {
		const char *h = p[0] == '[' ? p : strstr(p, "\n[");
		if (!h)
			break;
		if (*h == '\n')
			h++;
		const char *eol = strchr(h, '\n');
		size_t hl = eol ? (size_t)(eol - h) : strlen(h);
		snprintf(s[n].head, sizeof(s[n].head), "%.*s", (int)hl, h);
		const char *next = strstr(h, "\n[");
		s[n].text = h;
		s[n].len = next ? (size_t)(next - h + 1) : strlen(h);
		n++;
		p = next ? next + 1 : NULL;
	}
	return n;
}

static const struct section *find_section(const struct section *s, int n, const char *head)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s[i].head, head))
			return &s[i];
	return NULL;
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* ---- checks against the target cluster ---- */

static void check_names(struct remap *r, const struct cfg *t, const struct cfg *b, const char *path)
{
	if (cfg_find_pair(t, b->pairs[0].name) >= 0)
		remap_err(r, "pair %s: duplicate name, %s has one", b->pairs[0].name, path);
	for (int i = 0; i < b->n_compartments; i++)
		if (cfg_find_compartment(t, b->compartments[i].name) >= 0)
			remap_err(r, "compartment %s: duplicate name, %s has one",
				  b->compartments[i].name, path);
	for (int i = 0; i < b->n_nodes; i++)
		if (cfg_find_node(t, b->nodes[i].name) >= 0)
			remap_err(r, "node %s: duplicate name, %s has one", b->nodes[i].name, path);
	for (int i = 0; i < b->n_storage; i++)
		if (cfg_find_storage(t, b->storage[i].name) >= 0)
			remap_err(r, "storage %s: duplicate name, %s has one", b->storage[i].name,
				  path);
}

static bool same_ip(const struct cfg_addr *a, const struct cfg_addr *b)
{
	struct cfg_addr x = *a, y = *b;
	((struct sockaddr_in *)&x.ss)->sin_port = 0; /* same offset for in6 */
	((struct sockaddr_in *)&y.ss)->sin_port = 0;
	return cfg_addr_equal(&x, &y);
}

static bool same_net_addr(const struct cfg_node *a, const struct cfg_node *b)
{
	for (int i = 0; i < a->n_nets; i++)
		for (int j = 0; j < b->n_nets; j++)
			if (!a->nets[i].dhcp && !b->nets[j].dhcp &&
			    a->nets[i].addr.family == b->nets[j].addr.family &&
			    !memcmp(a->nets[i].addr.addr, b->nets[j].addr.addr, 16))
				return true;
	return false;
}

static bool same_mac(const struct cfg_node *a, const struct cfg_node *b)
{
	for (int i = 0; i < a->n_macs; i++)
		for (int j = 0; j < b->n_macs; j++)
			if (!memcmp(a->macs[i], b->macs[j], 6))
				return true;
	return false;
}

static void check_overlaps(struct remap *r, const struct cfg *t, const struct cfg *b)
{
	for (int i = 0; i < b->n_nodes; i++)
		for (int j = 0; j < t->n_nodes; j++) {
			const struct cfg_node *x = &b->nodes[i], *y = &t->nodes[j];
			if (same_ip(&x->handshake, &y->handshake) ||
			    (x->has_external && y->has_external &&
			     same_ip(&x->external, &y->external)) ||
			    (x->has_storage && y->has_storage &&
			     same_ip(&x->storage, &y->storage)) ||
			    same_net_addr(x, y))
				remap_err(r, "node %s: overlapping address with node %s", x->name,
					  y->name);
			if (same_mac(x, y))
				remap_err(r, "node %s: a MAC address of node %s", x->name, y->name);
		}
}

/* Cluster-wide sections a pair shares: equal, or absent from the target (appended). */
static void check_shared(struct remap *r, const struct section *bs, int nb,
			 const struct section *ts, int nt, const char *path, struct strbuf *add)
{
	for (int i = 0; i < nb; i++) {
		const char *h = bs[i].head;
		if (!starts(h, "[layout]") && !starts(h, "[timeouts]") && !starts(h, "[profile ") &&
		    !starts(h, "[role "))
			continue;
		const struct section *t = find_section(ts, nt, h);
		if (!t)
			sb_put(add, bs[i].text, bs[i].len);
		else if (t->len != bs[i].len || memcmp(t->text, bs[i].text, t->len))
			remap_err(r, "%s: differs from %s's (the pairs of a cluster share it)", h,
				  path);
	}
}

/* The bundle's quorum portals, to be added to the target's [quorum]. */
static void quorum_portals(struct remap *r, const struct cfg *t, const struct cfg *b,
			   const char *path, struct strbuf *lines)
{
	if (!b->has_quorum)
		return;
	if (!t->has_quorum) {
		remap_err(r, "quorum: %s has no quorum device and the bundle's pair uses one",
			  path);
		return;
	}
	if (strcmp(t->quorum.target, b->quorum.target) || t->quorum.lun != b->quorum.lun) {
		remap_err(
		    r, "quorum: target %s lun %ld differs from %s's %s lun %ld (one per cluster)",
		    b->quorum.target, b->quorum.lun, path, t->quorum.target, t->quorum.lun);
		return;
	}
	if (t->quorum.n_portals + b->quorum.n_portals > CFG_MAX_PORTALS)
		remap_err(r, "quorum: more than %d portals with the new pair's", CFG_MAX_PORTALS);
	for (int i = 0; i < b->quorum.n_portals; i++) {
		const struct cfg_portal *po = &b->quorum.portals[i];
		bool v6 = strchr(po->host, ':') != NULL;
		sb_printf(lines, "portal = %s %s%s%s:%u\n", b->compartments[po->compartment].name,
			  v6 ? "[" : "", po->host, v6 ? "]" : "", po->port);
	}
}

/* ---- the target's text, rewritten ---- */

static bool is_key(const char *line, const char *key)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(key);
	if (strncmp(line, key, n))
		return false;
	line += n;
	while (*line == ' ' || *line == '\t')
		line++;
	return *line == '=';
}

static bool is_head(const char *line, size_t n, const char *head)
{
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
		n--;
	return n == strlen(head) && !memcmp(line, head, n);
}

/* Copies the target, with `version = N+1` in [cluster] and the quorum lines after the
 * [quorum] header. */
static void rewrite_target(const char *t, size_t len, uint64_t version, const char *qlines,
			   struct strbuf *out)
{
	bool in_cluster = false, versioned = false;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(t + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (t + pos)) : len - pos;
		const char *line = t + pos;
		bool head = l && memchr(line, '[', l) && (line[0] == '[' || line[0] == ' ');
		if (head && in_cluster && !versioned) {
			sb_printf(out, "version = %" PRIu64 "\n", version);
			versioned = true;
		}
		if (head)
			in_cluster = is_head(line, l, "[cluster]");
		if (in_cluster && is_key(line, "version") && !versioned) {
			sb_printf(out, "version = %" PRIu64 "\n", version);
			versioned = true;
		} else {
			sb_put(out, line, l);
			sb_putc(out, '\n');
		}
		if (head && is_head(line, l, "[quorum]"))
			sb_puts(out, qlines);
		pos += l + (nl ? 1 : 0);
	}
	if (in_cluster && !versioned)
		sb_printf(out, "version = %" PRIu64 "\n", version);
}

/* The new pair's own sections, in the normalized order. */
static void pair_sections(const struct section *bs, int nb, struct strbuf *out)
{
	for (int i = 0; i < nb; i++)
		if (starts(bs[i].head, "[pair ") || starts(bs[i].head, "[compartment ") ||
		    starts(bs[i].head, "[node ") || starts(bs[i].head, "[storage "))
			sb_put(out, bs[i].text, bs[i].len);
}

struct merge {
	struct remap *r;
	const struct cfg *t, *b;
	const char *path;
};

static void merge(struct merge *g, const char *target, size_t target_len, struct strbuf *out)
{
	struct strbuf bt, tt, add, q;
	sb_init(&bt), sb_init(&tt), sb_init(&add), sb_init(&q);
	cfg_print(g->b, &bt);
	cfg_print(g->t, &tt);
	int cb = count_sections(bt.buf);
	_cleanup_free_ struct section *bs =
	    calloc((size_t)cb + (size_t)count_sections(tt.buf), sizeof(*bs));
	if (!bs) {
		remap_err(g->r, "out of memory");
		sb_free(&bt), sb_free(&tt);
		return;
	}
	int nb = split_sections(bt.buf, bs), nt = split_sections(tt.buf, bs + cb);
	check_names(g->r, g->t, g->b, g->path);
	check_overlaps(g->r, g->t, g->b);
	check_shared(g->r, bs, nb, bs + cb, nt, g->path, &add);
	quorum_portals(g->r, g->t, g->b, g->path, &q);
	sb_puts(&q, "");
	rewrite_target(target, target_len, g->t->version + 1, q.buf, out);
	sb_printf(out, "\n# pair %s: imported from a compartd bundle\n", g->b->pairs[0].name);
	pair_sections(bs, nb, out);
	if (add.len)
		sb_put(out, add.buf, add.len);
	sb_free(&bt), sb_free(&tt), sb_free(&add), sb_free(&q);
}

static int parse_bundle_config(const struct bundle *b, struct cfg **ret, struct strbuf *err)
{
	struct strbuf e;
	sb_init(&e);
	int r = cfg_parse("bundle:config", b->config, b->config_len, NULL, 0, ret, &e);
	if (r < 0)
		sb_printf(err, "%sbundle: its configuration is refused\n", e.buf ? e.buf : "");
	sb_free(&e);
	return r;
}

static int check_result(const char *path, struct strbuf *out, struct strbuf *err)
{
	struct strbuf e;
	sb_init(&e);
	struct cfg *c = NULL;
	int r = cfg_parse(path, out->buf ? out->buf : "", out->len, NULL, 0, &c, &e);
	if (r < 0)
		sb_printf(err, "%s%s: the imported configuration is refused; nothing written\n",
			  e.buf ? e.buf : "", path);
	cfg_free(c);
	sb_free(&e);
	return r < 0 ? -EINVAL : 0;
}

static int load_target(const char *path, const char *text, size_t len, struct cfg **ret,
		       struct strbuf *err)
{
	struct strbuf e;
	sb_init(&e);
	int r = cfg_parse(path, text, len, NULL, 0, ret, &e);
	if (r < 0)
		sb_printf(err, "%s%s: the target configuration is refused\n", e.buf ? e.buf : "",
			  path);
	sb_free(&e);
	return r;
}

int bundle_import(const struct bundle *b, const char *pair, const struct bundle_map *m,
		  const char *target_path, const char *target, size_t target_len,
		  const char *target_rules, size_t target_rules_len, struct strbuf *out,
		  struct strbuf *err)
{
	struct remap r = {.m = m, .err = err};
	struct cfg *bc = NULL, *tc = NULL;
	int e = parse_bundle_config(b, &bc, err);
	if (e >= 0 && target)
		e = load_target(target_path, target, target_len, &tc, err);
	if (e < 0)
		goto out;
	bundle_remap(&r, bc, pair);
	if (target_rules &&
	    (target_rules_len != b->rules_len || memcmp(target_rules, b->rules, b->rules_len)))
		remap_err(&r, "rules: the bundle's rules differ from %s's rules file", target_path);
	if (tc) {
		struct merge g = {.r = &r, .t = tc, .b = bc, .path = target_path};
		merge(&g, target, target_len, out);
	} else {
		cfg_print(bc, out);
	}
	e = r.n_errors ? -EINVAL : check_result(target_path, out, err);
out:
	cfg_free(bc);
	cfg_free(tc);
	return e < 0 ? -EINVAL : 0;
}
