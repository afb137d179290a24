/* Bundles: export (a pair's subset of a cluster, normalized) and the parser. */
#include "bundle.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- export ---- */

static void keep_portals(struct cfg_storage *s, const int *cmap)
{
	int n = 0;
	for (int i = 0; i < s->n_portals; i++) {
		if (cmap[s->portals[i].compartment] < 0)
			continue;
		s->portals[n] = s->portals[i];
		s->portals[n].compartment = cmap[s->portals[i].compartment];
		n++;
	}
	s->n_portals = n;
}

static void subset_storage(const struct cfg *c, const int *cmap, struct cfg *s)
{
	s->n_storage = 0;
	for (int i = 0; i < c->n_storage; i++) {
		struct cfg_storage st = c->storage[i];
		keep_portals(&st, cmap);
		if (st.n_portals > 0)
			s->storage[s->n_storage++] = st;
	}
	if (s->has_quorum) {
		keep_portals(&s->quorum, cmap);
		s->has_quorum = s->quorum.n_portals > 0;
	}
}

/* s (a cfg_dup of c): only pair p's compartments, nodes, storage and portals kept. */
static int cfg_subset(const struct cfg *c, int p, struct cfg *s)
{
	_cleanup_free_ int *cmap = calloc((size_t)c->n_compartments + 1, sizeof(int));
	if (!cmap)
		return -ENOMEM;
	s->pairs[0] = c->pairs[p];
	s->n_pairs = 1;
	s->n_compartments = 0;
	for (int i = 0; i < c->n_compartments; i++) {
		cmap[i] = c->compartments[i].pair == p ? s->n_compartments : -1;
		if (cmap[i] >= 0) {
			s->compartments[s->n_compartments] = c->compartments[i];
			s->compartments[s->n_compartments++].pair = 0;
		}
	}
	s->n_nodes = 0;
	for (int i = 0; i < c->n_nodes; i++) {
		if (cmap[c->nodes[i].compartment] < 0)
			continue;
		s->nodes[s->n_nodes] = c->nodes[i];
		s->nodes[s->n_nodes++].compartment = cmap[c->nodes[i].compartment];
	}
	subset_storage(c, cmap, s);
	return 0;
}

static void put_hash(struct strbuf *out)
{
	uint8_t h[32];
	char hex[65];
	crypto_generichash(h, sizeof(h), (const uint8_t *)out->buf, out->len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	sb_printf(out, "blake2b %s\n", hex);
}

int bundle_export(const struct cfg *c, const char *pair, const char *rules, size_t rules_len,
		  struct strbuf *out, struct strbuf *err)
{
	int p = cfg_find_pair(c, pair);
	if (p < 0) {
		sb_printf(err, "%s: no pair '%s'\n", c->path, pair);
		return -ENOENT;
	}
	struct cfg *s = NULL;
	int r = cfg_dup(c, &s);
	if (r < 0 || (r = cfg_subset(c, p, s)) < 0) {
		cfg_free(s);
		return r;
	}
	struct strbuf conf;
	sb_init(&conf);
	cfg_print(s, &conf);
	sb_printf(out, "%s\npair %s\nconfig %zu\n", BUNDLE_MAGIC, pair, conf.len);
	sb_put(out, conf.buf, conf.len);
	sb_printf(out, "\nrules %zu\n", rules_len);
	sb_put(out, rules, rules_len);
	sb_putc(out, '\n');
	put_hash(out);
	sb_free(&conf);
	cfg_free(s);
	return 0;
}

/* ---- parser ---- */

struct rd {
	const char *text;
	size_t len, pos;
	struct strbuf *err;
};

static int bad(struct rd *r, const char *what)
{
	sb_printf(r->err, "bundle: byte %zu: %s\n", r->pos, what);
	return -EBADMSG;
}

/* The next line without its '\n' into buf; truncated when there is none. */
static int next_line(struct rd *r, char *buf, size_t n, const char *what)
{
	const char *nl = memchr(r->text + r->pos, '\n', r->len - r->pos);
	if (!nl)
		return bad(r, what);
	size_t l = (size_t)(nl - (r->text + r->pos));
	if (l >= n || memchr(r->text + r->pos, '\0', l))
		return bad(r, "line too long or not text");
	memcpy(buf, r->text + r->pos, l);
	buf[l] = '\0';
	r->pos += l + 1;
	return 0;
}

/* `key <length>\n<bytes>\n` into a fresh NUL-terminated copy. */
static int read_part(struct rd *r, const char *key, char **ret, size_t *ret_len)
{
	char line[64], want[32];
	snprintf(want, sizeof(want), "truncated bundle (no %s part)", key);
	int e = next_line(r, line, sizeof(line), want);
	if (e < 0)
		return e;
	size_t kl = strlen(key);
	uint64_t n;
	if (strncmp(line, key, kl) || line[kl] != ' ' || parse_u64(line + kl + 1, &n) < 0 ||
	    n > CFG_MAX_TEXT)
		return bad(r, key);
	if (n + 1 > r->len - r->pos)
		return bad(r, "truncated bundle (a part is shorter than its length)");
	if (r->text[r->pos + n] != '\n' || memchr(r->text + r->pos, '\0', n))
		return bad(r, "a part's length does not match its text");
	*ret = strndup(r->text + r->pos, n);
	if (!*ret)
		return -ENOMEM;
	*ret_len = n;
	r->pos += n + 1;
	return 0;
}

static int check_hash(struct rd *r)
{
	size_t covered = r->pos;
	char line[128];
	int e = next_line(r, line, sizeof(line), "truncated bundle (no blake2b line)");
	if (e < 0)
		return e;
	uint8_t want[32], got[32];
	size_t n = 0;
	if (strncmp(line, "blake2b ", 8) ||
	    sodium_hex2bin(want, sizeof(want), line + 8, strlen(line + 8), NULL, &n, NULL) < 0 ||
	    n != sizeof(want) || strlen(line + 8) != 64)
		return bad(r, "malformed blake2b line");
	if (r->pos != r->len)
		return bad(r, "bytes after the blake2b line");
	crypto_generichash(got, sizeof(got), (const uint8_t *)r->text, covered, NULL, 0);
	if (sodium_memcmp(want, got, sizeof(got)) != 0)
		return bad(r, "hash does not match (the bundle was changed or damaged)");
	return 0;
}

static int parse_head(struct rd *r, struct bundle *b)
{
	char line[128];
	int e = next_line(r, line, sizeof(line), "truncated bundle (no header)");
	if (e < 0)
		return e;
	if (strcmp(line, BUNDLE_MAGIC))
		return bad(r, "not a compartd bundle (want '" BUNDLE_MAGIC "')");
	e = next_line(r, line, sizeof(line), "truncated bundle (no pair line)");
	if (e < 0)
		return e;
	if (strncmp(line, "pair ", 5) || !line[5] || strlen(line + 5) >= sizeof(b->pair))
		return bad(r, "malformed pair line");
	strcpy(b->pair, line + 5);
	return 0;
}

int bundle_parse(const char *text, size_t len, struct bundle *ret, struct strbuf *err)
{
	struct rd r = {.text = text, .len = len, .err = err};
	struct bundle b = {0};
	int e = parse_head(&r, &b);
	if (e >= 0)
		e = read_part(&r, "config", &b.config, &b.config_len);
	if (e >= 0)
		e = read_part(&r, "rules", &b.rules, &b.rules_len);
	if (e >= 0)
		e = check_hash(&r);
	if (e < 0) {
		bundle_clear(&b);
		return e;
	}
	*ret = b;
	return 0;
}

void bundle_clear(struct bundle *b)
{
	free(b->config);
	free(b->rules);
	*b = (struct bundle){0};
}
