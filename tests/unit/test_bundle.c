/* Bundles (SPEC §2a): golden export of the rig's pair, its import as a second pair
 * (golden normalized form), and each refusal: unmapped names, MACs and addresses,
 * duplicate names, overlapping addresses, cluster-wide differences, every truncation,
 * every changed byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bundle.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

struct fix {
	char *conf, *rules;
	size_t conf_len, rules_len;
	struct cfg *c;
	struct strbuf bundle, err, out;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(
	    read_full_file(SRCDIR "/images/rig/cluster.conf", CFG_MAX_TEXT, &f->conf, &f->conf_len),
	    0);
	assert_int_equal(
	    read_full_file(SRCDIR "/rules/boot.rules", CFG_MAX_TEXT, &f->rules, &f->rules_len), 0);
	assert_int_equal(cfg_parse("cluster.conf", f->conf, f->conf_len, NULL, 0, &f->c, NULL), 0);
	sb_init(&f->bundle), sb_init(&f->err), sb_init(&f->out);
	assert_int_equal(bundle_export(f->c, "p1", f->rules, f->rules_len, &f->bundle, &f->err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	free(f->conf), free(f->rules);
	cfg_free(f->c);
	sb_free(&f->bundle), sb_free(&f->err), sb_free(&f->out);
	free(f);
	return 0;
}

static void add(struct bundle_map *m, const char *kind, const char *arg)
{
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(bundle_map_add(m, kind, arg, &err), 0);
	sb_free(&err);
}

/* Everything the rig's p1 needs to become p2 beside it. */
static void rig_map(struct bundle_map *m)
{
	static const char *const names[][3] = {
	    {"node", "a1", "c1"},
	    {"node", "a2", "c2"},
	    {"node", "b1", "d1"},
	    {"node", "b2", "d2"},
	    {"compartment", "a", "c"},
	    {"compartment", "b", "d"},
	    {"storage", "mirror0", "mirror1"},
	    {"net", "10.77.1.0/24", "10.88.1.0/24"},
	    {"net", "10.77.2.0/24", "10.88.2.0/24"},
	    {"net", "10.77.9.0/24", "10.88.9.0/24"},
	};
	char arg[80];
	*m = (struct bundle_map){0};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(arg, sizeof(arg), "%s=%s", names[i][1], names[i][2]);
		add(m, names[i][0], arg);
	}
	static const char *const nics[] = {"0a", "1a", "0b", "1b"};
	for (int n = 0; n < 4; n++)
		for (int i = 1; i <= 2; i++) {
			snprintf(arg, sizeof(arg), "52:54:00:77:%s:%02d=52:54:00:88:%s:%02d",
				 nics[n], i, nics[n], i);
			add(m, "mac", arg);
		}
}

/* Imports the fixture's bundle into the rig file with map m; returns bundle_import's. */
static int import(struct fix *f, const struct bundle_map *m, const char *pair)
{
	struct bundle b;
	sb_reset(&f->err), sb_reset(&f->out);
	assert_int_equal(bundle_parse(f->bundle.buf, f->bundle.len, &b, &f->err), 0);
	int r = bundle_import(&b, pair, m, "cluster.conf", f->conf, f->conf_len, f->rules,
			      f->rules_len, &f->out, &f->err);
	bundle_clear(&b);
	return r;
}

static void golden_export(void **state)
{
	struct fix *f = *state;
	char *golden = NULL;
	assert_int_equal(read_full_file(SRCDIR "/tests/golden/bundle/rig-p1.bundle", CFG_MAX_TEXT,
					&golden, NULL),
			 0);
	assert_string_equal(f->bundle.buf, golden);
	free(golden);
	sb_reset(&f->err);
	assert_int_equal(bundle_export(f->c, "p9", "", 0, &f->out, &f->err), -ENOENT);
	assert_non_null(strstr(f->err.buf, "no pair 'p9'"));
}

static void golden_import(void **state)
{
	struct fix *f = *state;
	struct bundle_map m;
	rig_map(&m);
	assert_int_equal(import(f, &m, "p2"), 0);
	struct cfg *c = NULL;
	assert_int_equal(cfg_parse("imported", f->out.buf, f->out.len, NULL, 0, &c, NULL), 0);
	struct strbuf norm;
	sb_init(&norm);
	cfg_print(c, &norm);
	char *golden = NULL;
	assert_int_equal(read_full_file(SRCDIR "/tests/golden/bundle/rig-p1-as-p2.conf.normalized",
					CFG_MAX_TEXT, &golden, NULL),
			 0);
	assert_string_equal(norm.buf, golden);
	assert_int_equal(c->version, f->c->version + 1);
	assert_int_equal(c->n_nodes, 8);
	assert_int_equal(c->quorum.n_portals, 4);
	/* The target's own text, comments included, is kept. */
	assert_non_null(strstr(f->out.buf, "# The QEMU rig's cluster"));
	free(golden);
	cfg_free(c);
	sb_free(&norm);
}

/* Imports with one change to the full map; wants a refusal naming `want`. */
static void refused(struct fix *f, const struct bundle_map *m, const char *pair, const char *want)
{
	assert_int_equal(import(f, m, pair), -EINVAL);
	if (!strstr(f->err.buf, want))
		fail_msg("want '%s' in:\n%s", want, f->err.buf);
}

static void unmapped(void **state)
{
	struct fix *f = *state;
	struct bundle_map m;
	rig_map(&m);
	m.n_nodes = 3; /* b2 left out */
	refused(f, &m, "p2", "node b2: not mapped (give --map-node b2=NEW)");
	rig_map(&m);
	m.n_comps = 1;
	refused(f, &m, "p2", "compartment b: not mapped");
	rig_map(&m);
	m.n_storage = 0;
	refused(f, &m, "p2", "storage mirror0: not mapped");
	rig_map(&m);
	m.n_macs = 7;
	refused(f, &m, "p2", "node b2: mac 52:54:00:77:1b:02: not mapped");
	rig_map(&m);
	m.n_nets = 2; /* the external network */
	refused(f, &m, "p2", "node a1: external 10.77.9.11:7460: in no --map-net");
	rig_map(&m);
	m.n_nets = 1;
	refused(f, &m, "p2", "quorum: portal 10.77.2.100: in no --map-net");
	rig_map(&m);
	add(&m, "node", "x9=y9"); /* a typo: mapped, but not in the bundle */
	refused(f, &m, "p2", "--map-node x9=y9: the bundle has no node x9");
	rig_map(&m);
	add(&m, "mac", "52:54:00:77:0a:09=52:54:00:88:0a:09");
	refused(f, &m, "p2", "--map-mac 52:54:00:77:0a:09=…: no node of the bundle has MAC");
}

/* The guest targets' ACL of the new pair never admits the old pair's instances: an
 * initiator follows its compartment's new name, or --map-iqn, or the import is refused. */
static void initiators(void **state)
{
	struct fix *f = *state;
	struct bundle_map m;
	rig_map(&m);
	add(&m, "iqn", "iqn.2026-12.compartd.rig:infra.a=iqn.2026-12.compartd.rig:infra.z");
	assert_int_equal(import(f, &m, "p2"), 0);
	assert_non_null(strstr(f->out.buf, "infra_initiator = iqn.2026-12.compartd.rig:infra.z"));
	assert_non_null(strstr(f->out.buf, "infra_initiator = iqn.2026-12.compartd.rig:infra.d"));
	/* An initiator that does not name its compartment must be mapped. */
	char *conf = strdup(f->conf);
	char *at = strstr(conf, "iqn.2026-12.compartd.rig:infra.b");
	assert_non_null(at);
	memcpy(at + strlen("iqn.2026-12.compartd.rig:infra"), "-b", 2);
	struct cfg *c = NULL;
	assert_int_equal(cfg_parse("cluster.conf", conf, strlen(conf), NULL, 0, &c, NULL), 0);
	sb_reset(&f->bundle);
	assert_int_equal(bundle_export(c, "p1", f->rules, f->rules_len, &f->bundle, &f->err), 0);
	rig_map(&m);
	refused(f, &m, "p2",
		"compartment b: infra_initiator iqn.2026-12.compartd.rig:infra-b: not mapped "
		"(give --map-iqn iqn.2026-12.compartd.rig:infra-b=NEW)");
	cfg_free(c);
	free(conf);
}

static void duplicates_and_overlaps(void **state)
{
	struct fix *f = *state;
	struct bundle_map m;
	rig_map(&m);
	refused(f, &m, "p1", "pair p1: duplicate name, cluster.conf has one");
	snprintf(m.nodes[0].to, sizeof(m.nodes[0].to), "b2");
	refused(f, &m, "p2", "node b2: duplicate name");
	rig_map(&m);
	snprintf(m.comps[0].to, sizeof(m.comps[0].to), "a");
	refused(f, &m, "p2", "compartment a: duplicate name");
	rig_map(&m);
	add(&m, "net", "10.77.9.0/25=10.77.9.0/25"); /* longest prefix: a's externals stay */
	refused(f, &m, "p2", "node c1: overlapping address with node a1");
	rig_map(&m);
	m.macs[0].to[5] = 0x01, m.macs[0].to[4] = 0x0a, m.macs[0].to[3] = 0x77;
	refused(f, &m, "p2", "node c1: a MAC address of node a1");
}

static void cluster_wide(void **state)
{
	struct fix *f = *state;
	struct bundle_map m;
	rig_map(&m);
	struct cfg *c2 = malloc(sizeof(*c2));
	*c2 = *f->c;
	c2->layout.min_guest *= 2;
	c2->n_pairs = 1;
	sb_reset(&f->bundle);
	assert_int_equal(bundle_export(c2, "p1", f->rules, f->rules_len, &f->bundle, &f->err), 0);
	refused(f, &m, "p2", "[layout]: differs from cluster.conf's");
	*c2 = *f->c;
	snprintf(c2->quorum.target, sizeof(c2->quorum.target), "iqn.x:other");
	sb_reset(&f->bundle);
	assert_int_equal(bundle_export(c2, "p1", f->rules, f->rules_len, &f->bundle, &f->err), 0);
	refused(f, &m, "p2", "quorum: target iqn.x:other lun 1 differs");
	sb_reset(&f->bundle);
	assert_int_equal(bundle_export(f->c, "p1", "other", 5, &f->bundle, &f->err), 0);
	refused(f, &m, "p2", "rules: the bundle's rules differ");
	free(c2);
}

static void truncated_and_forged(void **state)
{
	struct fix *f = *state;
	struct bundle b;
	for (size_t n = 0; n < f->bundle.len; n++) {
		sb_reset(&f->err);
		assert_int_equal(bundle_parse(f->bundle.buf, n, &b, &f->err), -EBADMSG);
		assert_non_null(strstr(f->err.buf, "bundle: byte "));
	}
	char *copy = malloc(f->bundle.len);
	for (size_t i = 0; i < f->bundle.len; i += 7) {
		memcpy(copy, f->bundle.buf, f->bundle.len);
		copy[i] ^= 0x04;
		sb_reset(&f->err);
		assert_int_equal(bundle_parse(copy, f->bundle.len, &b, &f->err), -EBADMSG);
	}
	memcpy(copy, f->bundle.buf, f->bundle.len);
	copy[200] ^= 0x01;
	sb_reset(&f->err);
	assert_int_equal(bundle_parse(copy, f->bundle.len, &b, &f->err), -EBADMSG);
	assert_non_null(strstr(f->err.buf, "hash does not match"));
	free(copy);
	sb_reset(&f->err);
	assert_int_equal(bundle_parse(f->bundle.buf, f->bundle.len, &b, &f->err), 0);
	assert_string_equal(b.pair, "p1");
	assert_int_equal(b.rules_len, f->rules_len);
	bundle_clear(&b);
}

static void bad_map_args(void **state)
{
	static const char *const bad[][2] = {
	    {"node", "a1"},
	    {"node", "=c1"},
	    {"node", "a1="},
	    {"net", "10.0.0.0/24=10.1.0.0/16"},
	    {"net", "10.0.0.0/24=fd00::/24"},
	    {"mac", "52:54:00:77:0a=1"},
	    {"colour", "a=b"},
	};
	struct bundle_map m = {0};
	struct strbuf err;
	sb_init(&err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bundle_map_add(&m, bad[i][0], bad[i][1], &err), -EINVAL);
	assert_non_null(strstr(err.buf, "--map-net 10.0.0.0/24=10.1.0.0/16: want"));
	sb_free(&err);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(golden_export, setup, teardown),
	    cmocka_unit_test_setup_teardown(golden_import, setup, teardown),
	    cmocka_unit_test_setup_teardown(initiators, setup, teardown),
	    cmocka_unit_test_setup_teardown(unmapped, setup, teardown),
	    cmocka_unit_test_setup_teardown(duplicates_and_overlaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(cluster_wide, setup, teardown),
	    cmocka_unit_test_setup_teardown(truncated_and_forged, setup, teardown),
	    cmocka_unit_test(bad_map_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
