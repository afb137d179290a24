/* cluster.conf: golden normalized output, round trip, every class of error with its
 * file:line: key: message, and command-line overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"

#include <sodium.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

static const char *base =
    "[cluster]\nname = t\nkey_file = /k\n"
    "[pair p]\n"
    "[compartment a]\nzone = mz\npair = p\n"
    "[compartment b]\nzone = dmz\npair = p\n"
    "[node n1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 02:00:00:00:00:01\n"
    "[node n2]\ncompartment = b\nhandshake = 127.0.0.2:9000\n";

static int parse(const char *text, struct cfg **c, struct strbuf *err)
{
	return cfg_parse("t.conf", text, strlen(text), NULL, 0, c, err);
}

static void golden_rig_config(void **state)
{
	struct strbuf err, out, out2;
	sb_init(&err);
	sb_init(&out);
	sb_init(&out2);
	struct cfg *c = NULL;
	assert_int_equal(cfg_load(SRCDIR "/images/rig/cluster.conf", NULL, 0, &c, &err), 0);
	cfg_print(c, &out);
	char *golden = NULL;
	assert_int_equal(read_full_file(SRCDIR "/tests/golden/rig-cluster.conf.normalized", 1 << 20,
					&golden, NULL),
			 0);
	assert_string_equal(out.buf, golden);
	/* The normalized form parses to the same configuration. */
	struct cfg *c2 = NULL;
	assert_int_equal(cfg_parse("normalized", out.buf, out.len, NULL, 0, &c2, &err), 0);
	cfg_print(c2, &out2);
	assert_string_equal(out.buf, out2.buf);
	assert_int_equal(c->n_nodes, 4);
	assert_int_equal(cfg_node_pair(c, cfg_find_node(c, "b2")), 0);
	assert_int_equal(c->timeouts.lease, 2 * c->timeouts.disk_heartbeat_interval);
	free(golden);
	cfg_free(c);
	cfg_free(c2);
	sb_free(&err);
	sb_free(&out);
	sb_free(&out2);
}

static void defaults_and_ports(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	assert_int_equal(parse(base, &c, &err), 0);
	char a[80];
	cfg_addr_format(&c->nodes[0].handshake, a, sizeof(a));
	assert_string_equal(a, "127.0.0.1:7460");
	cfg_addr_format(&c->nodes[1].handshake, a, sizeof(a));
	assert_string_equal(a, "127.0.0.2:9000");
	assert_true(c->nodes[0].disks_auto);
	assert_false(c->has_quorum);
	assert_int_equal(c->timeouts.heartbeat_interval, 200000);
	assert_int_equal(c->timeouts.path_timeout, 2000000);
	assert_int_equal(c->layout.boot.bytes, 512ULL << 20);
	cfg_free(c);
	sb_free(&err);
}

/* A second pair whose compartment c takes the guest keys under test (line 25 on). */
#define QC "[pair q]\n[compartment d]\nzone = dmz\npair = q\n[compartment c]\nzone = mz\npair = q\n"

/* The guest storage network keys (SPEC §3a): defaults, explicit values, round trip. */
static void guest_keys(void **state)
{
	struct strbuf text, err, out;
	sb_init(&text);
	sb_init(&err);
	sb_init(&out);
	sb_puts(&text, base);
	sb_puts(
	    &text,
	    "storage = [fd00::2]\n" QC
	    "infra_initiator = iqn.2026-12.x:infra.c\ninfra_initiator = iqn.2026-12.x:infra.c2\n"
	    "guest_chap_user = cu\nguest_chap_secret_file = /etc/c.secret\n"
	    "guest_chap_mutual_user = mu\nguest_chap_mutual_secret_file = /etc/m.secret\n");
	struct cfg *c = NULL;
	assert_int_equal(parse(text.buf, &c, &err), 0);
	char a[80];
	cfg_addr_format(&c->nodes[0].storage, a, sizeof(a));
	assert_string_equal(a, "127.0.0.1:3260"); /* the handshake address, port 3260 */
	cfg_addr_format(&c->nodes[1].storage, a, sizeof(a));
	assert_string_equal(a, "[fd00::2]:3260");
	int ci = cfg_find_compartment(c, "c");
	assert_int_equal(c->compartments[ci].n_infra_initiators, 2);
	assert_int_equal(c->compartments[0].n_infra_initiators, 0);
	cfg_print(c, &out);
	assert_non_null(strstr(out.buf,
			       "[compartment c]\nzone = mz\npair = q\n"
			       "infra_initiator = iqn.2026-12.x:infra.c\n"
			       "infra_initiator = iqn.2026-12.x:infra.c2\n"
			       "guest_chap_user = cu\nguest_chap_secret_file = /etc/c.secret\n"
			       "guest_chap_mutual_user = mu\n"
			       "guest_chap_mutual_secret_file = /etc/m.secret\n"));
	assert_non_null(strstr(out.buf, "storage = 127.0.0.1:3260\n"));
	struct cfg *c2 = NULL;
	assert_int_equal(parse(out.buf, &c2, &err), 0); /* the normalized form parses again */
	struct strbuf out2;
	sb_init(&out2);
	cfg_print(c2, &out2);
	assert_string_equal(out.buf, out2.buf);
	sb_free(&out2);
	cfg_free(c2);
	cfg_free(c);
	sb_free(&text);
	sb_free(&err);
	sb_free(&out);
}

struct bad_case {
	const char *append; /* appended to `base` */
	const char *error;  /* expected substring of the error output */
};

static const struct bad_case bad_cases[] = {
    {"[bogus]\n", "t.conf:18: unknown section [bogus]"},
    {"[node n1]\ncompartment = a\nhandshake = 127.0.0.9\n",
     "t.conf:18: [node n1] is defined twice"},
    {"[node n3]\ncompartment = a\n", "t.conf:18: handshake: missing in [node n3]"},
    {"[node n3]\ncompartment = zz\nhandshake = 127.0.0.3\n",
     "t.conf:18: compartment: [node n3]: no compartment 'zz'"},
    {"[node n3]\ncompartment = a\nhandshake = 300.1.1.1\n",
     "t.conf:20: handshake: '300.1.1.1' is not an IP address"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.1\n", "has the address of node n1"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\nmac = 02:00:00:00:00:01\n",
     "02:00:00:00:00:01 belongs to node n1 too"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\nmac = 02:00:00:00:0g:01\n",
     "t.conf:21: mac: '02:00:00:00:0g:01' is not a MAC address"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\npriority = -1\n",
     "t.conf:21: priority: '-1' is not a priority"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\ncolour = blue\n",
     "t.conf:21: colour: unknown key in [node n3]"},
    {"[node n3]\ncompartment = a\ncompartment = b\nhandshake = 127.0.0.3\n",
     "t.conf:20: compartment: given twice in [node n3]"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\nnet = eth0 10.0.0.1\n",
     "t.conf:21: net: '10.0.0.1' is not an address with prefix length"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\ndisks = sda\n",
     "'sda' is not an absolute device path"},
    {"[timeouts]\nheartbeat_interval = fast\n",
     "t.conf:19: heartbeat_interval: 'fast' is not a duration"},
    {"[timeouts]\nheartbeat_interval = 0\n", "is not a duration"},
    {"[timeouts]\nlease = 100ms\n", "lease: must be longer than disk_heartbeat_interval"},
    {"[layout]\nboot = 12KiB\n", "t.conf:19: boot: '12KiB' is not a size"},
    {"[layout]\nboot = 101%\n", "'101%' is not a size"},
    {"[compartment c]\nzone = zz\npair = p\n", "t.conf:19: zone: 'zz' is not a zone"},
    {"[compartment c]\nzone = mz\npair = q\n", "pair: [compartment c]: no pair 'q'"},
    {"[compartment c]\nzone = mz\npair = p\n", "[pair p] has 3 compartments"},
    {"[storage s]\nlun = 1\nportal = a 127.0.0.1\n", "t.conf:18: target: missing in [storage s]"},
    {"[storage s]\ntarget = iqn.x:y\nportal = c 127.0.0.1\n",
     "t.conf:20: portal: no compartment 'c'"},
    {"[storage s]\ntarget = foo\nportal = a 127.0.0.1\n", "'foo' is not an iSCSI name"},
    {"[storage s]\ntarget = iqn.x:y\nportal = a 127.0.0.1\nchap_user = u\n",
     "has chap_user but no chap_secret_file"},
    {"[quorum]\nmode = device\n", "target: missing in [quorum]"},
    {"[quorum]\nmode = maybe\n", "'maybe' is not a quorum mode"},
    {"[profile best]\nrun = /bin/true\n", "[profile best]: unknown profile"},
    {"[profile infra-only]\nrun = true\n", "'true': a hook command starts with an absolute path"},
    {"[role other]\n", "[role other]: unknown instance kind"},
    {"[cluster]\nname = again\n", "t.conf:18: [cluster] appears twice"},
    {"[node]\n", "[node] needs a name"},
    {"[node bad name!]\n", "is not a valid name"},
    {"[pair p2]\n", "[pair p2] has 0 compartments"},
    {"just words\n", "expected 'key = value'"},
    {"[node n3]\ncompartment = a\nhandshake = 127.0.0.3\nstorage = 10.0.0.300\n",
     "t.conf:21: storage: '10.0.0.300' is not an IP address"},
    {QC "infra_initiator = foo\n", "t.conf:25: infra_initiator: 'foo' is not an iSCSI name"},
    {QC "infra_initiator = iqn.x:a b\n", "an iSCSI name has no spaces"},
    {QC "infra_initiator = iqn.x:y\ninfra_initiator = IQN.X:Y\n",
     "t.conf:26: infra_initiator: 'IQN.X:Y' is listed twice"},
    {QC "guest_chap_user = u\n", "guest_chap_user and guest_chap_secret_file go together"},
    {QC "guest_chap_secret_file = s\n", "'s' is not an absolute path"},
    {QC "guest_chap_mutual_user = m\nguest_chap_mutual_secret_file = /m\n",
     "mutual CHAP needs guest_chap_user too"},
};

static void every_error_names_file_line_key(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct strbuf text, err;
		sb_init(&text);
		sb_init(&err);
		sb_puts(&text, base);
		sb_puts(&text, bc->append);
		struct cfg *c = NULL;
		int r = parse(text.buf, &c, &err);
		if (r != -EINVAL || !err.buf || !strstr(err.buf, bc->error))
			fail_msg("case %zu (%s): r=%d, errors:\n%s\nexpected: %s", i, bc->append, r,
				 err.buf ? err.buf : "(none)", bc->error);
		assert_null(c);
		sb_free(&text);
		sb_free(&err);
	}
}

static void key_before_section(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	assert_int_equal(parse("name = x\n[cluster]\nname = t\n", &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "t.conf:1: 'key = value' before any [section]"));
	sb_free(&err);
}

static void missing_everything(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	assert_int_equal(parse("# empty\n", &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "name: missing in [cluster]"));
	assert_non_null(strstr(err.buf, "key_file: missing in [cluster]"));
	assert_non_null(strstr(err.buf, "no [pair NAME] section"));
	assert_non_null(strstr(err.buf, "no [node NAME] section"));
	sb_free(&err);
}

static void nul_and_long_lines(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	char text[64] = "[cluster]\nna\0me = x\n";
	assert_int_equal(cfg_parse("t.conf", text, 20, NULL, 0, &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "t.conf:2: NUL byte in line"));
	struct strbuf big;
	sb_init(&big);
	sb_puts(&big, "[cluster]\nname = ");
	for (int i = 0; i < 2000; i++)
		sb_putc(&big, 'x');
	sb_reset(&err);
	assert_int_equal(parse(big.buf, &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "t.conf:2: line longer than"));
	sb_free(&big);
	sb_free(&err);
}

/* Found by the fuzzer: more sections than the table holds must be an error, not an overflow.
 * Nodes, compartments and pairs are tables grown from the file: only storage is fixed. */
static void too_many_sections(void **state)
{
	struct strbuf text, err;
	sb_init(&text);
	sb_init(&err);
	sb_puts(&text, base);
	for (int i = 0; i < CFG_MAX_STORAGE + 1; i++)
		sb_printf(&text, "[storage s%d]\n", i);
	struct cfg *c = NULL;
	assert_int_equal(parse(text.buf, &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "more than 4 storage sections"));
	sb_free(&text);
	sb_free(&err);
}

/* n_pairs pairs of two compartments with per_comp nodes each; nodes on 127.x.y.z. */
static void big_text(struct strbuf *t, int n_pairs, int per_comp)
{
	sb_puts(t, "[cluster]\nname = big\nkey_file = /k\n");
	for (int p = 0; p < n_pairs; p++) {
		sb_printf(t, "[pair p%d]\n", p);
		for (int s = 0; s < 2; s++)
			sb_printf(t, "[compartment c%d-%d]\nzone = %s\npair = p%d\n", p, s,
				  s ? "dmz" : "mz", p);
	}
	int n = 0;
	for (int p = 0; p < n_pairs; p++)
		for (int s = 0; s < 2; s++)
			for (int k = 0; k < per_comp; k++, n++)
				sb_printf(t,
					  "[node n%d]\ncompartment = c%d-%d\npriority = %d\n"
					  "handshake = 127.%d.%d.%d\n",
					  n, p, s, k, 1 + n / 65536, n / 256 % 256, n % 256);
}

/* Issue 20: a cluster of 1 024 nodes in 256 pairs parses whole, every node kept, and a
 * reload with the same topology keeps the tables where they are. */
static void cluster_of_1024_nodes(void **state)
{
	struct strbuf text, err, out;
	sb_init(&text);
	sb_init(&err);
	sb_init(&out);
	big_text(&text, 256, 2);
	struct cfg *c = NULL, *c2 = NULL;
	assert_int_equal(parse(text.buf, &c, &err), 0);
	assert_int_equal(c->n_pairs, 256);
	assert_int_equal(c->n_compartments, 512);
	assert_int_equal(c->n_nodes, 1024);
	int last = cfg_find_node(c, "n1023");
	assert_int_equal(last, 1023);
	assert_int_equal(cfg_node_pair(c, last), 255);
	assert_string_equal(c->compartments[c->nodes[last].compartment].name, "c255-1");
	char a[80];
	cfg_addr_format(&c->nodes[last].handshake, a, sizeof(a));
	assert_string_equal(a, "127.1.3.255:7460");
	/* the normalized form keeps every node */
	cfg_print(c, &out);
	assert_int_equal(parse(out.buf, &c2, &err), 0);
	assert_int_equal(c2->n_nodes, 1024);
	assert_null(cfg_topology_change(c, c2));
	const struct cfg_node *keep = &c->nodes[last];
	c2->nodes[last].priority = 77;
	cfg_replace(c, c2);
	assert_ptr_equal(&c->nodes[last], keep);
	assert_int_equal(keep->priority, 77);
	cfg_free(c);
	sb_free(&text);
	sb_free(&err);
	sb_free(&out);
}

/* More than CFG_LIMIT_NODES nodes: refused, naming the line of the first one too many. */
static void node_limit_names_the_line(void **state)
{
	struct strbuf text, err;
	sb_init(&text);
	sb_init(&err);
	big_text(&text, CFG_LIMIT_NODES / 8, 4);
	int line = 1;
	for (const char *p = text.buf; *p; p++)
		line += *p == '\n';
	sb_puts(&text, "[node extra]\ncompartment = c0-0\nhandshake = 127.200.0.1\n");
	struct cfg *c = NULL;
	assert_int_equal(parse(text.buf, &c, &err), -EINVAL);
	char want[96];
	snprintf(want, sizeof(want), "t.conf:%d: [node extra]: more than %d node sections", line,
		 CFG_LIMIT_NODES);
	if (!strstr(err.buf, want))
		fail_msg("expected '%s' in:\n%s", want, err.buf);
	assert_null(strchr(strchr(err.buf, '\n') + 1, '\n')); /* that one error only */
	sb_free(&text);
	sb_free(&err);
}

/* A pair with more nodes than the election has quorum slots for: refused, not cut. */
static void pair_node_limit(void **state)
{
	struct strbuf text, err;
	sb_init(&text);
	sb_init(&err);
	big_text(&text, 1, CFG_MAX_PAIR_NODES / 2);
	sb_puts(&text, "[node extra]\ncompartment = c0-1\nhandshake = 127.200.0.1\n");
	struct cfg *c = NULL;
	assert_int_equal(parse(text.buf, &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "[node extra]: [pair p0] has more than 8 nodes"));
	sb_free(&text);
	sb_free(&err);
}

static void overrides(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	struct cfg_override o[] = {
	    {"timeouts", "path_timeout", "3s"},
	    {"node.n1", "handshake", "127.0.1.11"},
	    {"node.n2", "priority", "77"},
	};
	assert_int_equal(cfg_parse("t.conf", base, strlen(base), o, 3, &c, &err), 0);
	assert_int_equal(c->timeouts.path_timeout, 3 * USEC_PER_SEC);
	assert_int_equal(c->nodes[1].priority, 77);
	char a[80];
	cfg_addr_format(&c->nodes[0].handshake, a, sizeof(a));
	assert_string_equal(a, "127.0.1.11:7460");
	cfg_free(c);
	struct cfg_override bad[] = {{"node.zz", "priority", "1"}, {"timeouts", "lease", "x"}};
	assert_int_equal(cfg_parse("t.conf", base, strlen(base), bad, 2, &c, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "override node.zz.priority: no node 'zz'"));
	assert_non_null(strstr(err.buf, "override timeouts.lease: 'x' is not a duration"));
	sb_free(&err);
}

static void hash_tracks_bytes(void **state)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *a = NULL, *b = NULL;
	assert_int_equal(parse(base, &a, &err), 0);
	struct strbuf t;
	sb_init(&t);
	sb_puts(&t, base);
	sb_puts(&t, "# a comment changes the bytes\n");
	assert_int_equal(parse(t.buf, &b, &err), 0);
	assert_memory_not_equal(a->hash, b->hash, sizeof(a->hash));
	cfg_free(a);
	cfg_free(b);
	sb_free(&t);
	sb_free(&err);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(golden_rig_config),
	    cmocka_unit_test(defaults_and_ports),
	    cmocka_unit_test(guest_keys),
	    cmocka_unit_test(every_error_names_file_line_key),
	    cmocka_unit_test(key_before_section),
	    cmocka_unit_test(missing_everything),
	    cmocka_unit_test(nul_and_long_lines),
	    cmocka_unit_test(too_many_sections),
	    cmocka_unit_test(cluster_of_1024_nodes),
	    cmocka_unit_test(node_limit_names_the_line),
	    cmocka_unit_test(pair_node_limit),
	    cmocka_unit_test(overrides),
	    cmocka_unit_test(hash_tracks_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
