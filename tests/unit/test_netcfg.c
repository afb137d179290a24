/* netcfg_plan: node net/route lines and the kernel's ip= into rtnetlink actions. */
#include "cmdline.h"
#include "config.h"
#include "netcfg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

static const char *conf_text =
    "[cluster]\nname = t\nkey_file = /dev/null\n[pair p]\n"
    "[compartment a]\nzone = mz\npair = p\n[compartment b]\nzone = dmz\npair = p\n"
    "[node n1]\ncompartment = a\nmac = 52:54:00:00:00:01\nhandshake = 10.0.0.1\n"
    "net = 52:54:00:00:00:01 10.0.0.1/24\n"
    "net = 52:54:00:00:00:02 10.9.0.1/24 vlan=42 gateway=10.9.0.254\n"
    "net = eth7 dhcp\n"
    "route = 10.2.0.0/16 via 10.0.0.254\n"
    "[node n2]\ncompartment = b\nmac = 52:54:00:00:00:09\nhandshake = 10.0.0.2\n";

static const struct netcfg_link links[] = {
    {"eth0", {0x52, 0x54, 0, 0, 0, 0x01}, 1},
    {"eth1", {0x52, 0x54, 0, 0, 0, 0x02}, 1},
    {"eth2", {0x52, 0x54, 0, 0, 0, 0x03}, 1},
};

static struct cfg *load(void)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *c = NULL;
	int r = cfg_parse("test.conf", conf_text, strlen(conf_text), NULL, 0, &c, &err);
	if (r < 0)
		fprintf(stderr, "%s", err.buf);
	assert_int_equal(r, 0);
	sb_free(&err);
	return c;
}

/* The plan as text, one action per line. */
static char *plan_text(const struct netcfg_plan *p)
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < p->n; i++) {
		char line[160];
		netcfg_action_format(&p->actions[i], line, sizeof(line));
		sb_printf(&sb, "%s\n", line);
	}
	return sb_steal(&sb);
}

static void test_node_lines(void **state)
{
	struct cfg *c = load();
	struct netcfg_plan p;
	struct strbuf warn;
	sb_init(&warn);
	assert_int_equal(netcfg_plan(&c->nodes[0], NULL, links, 3, &p, &warn), 0);
	char *t = plan_text(&p);
	assert_string_equal(t, "up lo\n"
			       "up eth0\n"
			       "addr eth0 10.0.0.1/24\n"
			       "up eth1\n"
			       "vlan eth1.42 on eth1 id 42\n"
			       "up eth1.42\n"
			       "addr eth1.42 10.9.0.1/24\n"
			       "route default via 10.9.0.254 dev eth1.42\n"
			       "route 10.2.0.0/16 via 10.0.0.254\n");
	/* eth7 does not exist: reported, skipped */
	assert_non_null(strstr(warn.buf, "eth7"));
	free(t);
	sb_free(&warn);
	cfg_free(c);
}

struct kip_case {
	const char *cmdline;
	const char *want;
};

static const struct kip_case kip_cases[] = {
    {"ip=dhcp", "up lo\nup eth0\ndhcp eth0\n"},
    {"ip=dhcp BOOTIF=01-52-54-00-00-00-03", "up lo\nup eth2\ndhcp eth2\n"},
    {"ip=10.1.1.5::10.1.1.1:255.255.255.0::eth1:off",
     "up lo\nup eth1\naddr eth1 10.1.1.5/24\nroute default via 10.1.1.1 dev eth1\n"},
    {"ip=off", "up lo\n"},
    {"ip=10.1.1.5:::255.255.0.0::eth9:none", "up lo\n"},
};

static void test_kernel_ip(void **state)
{
	for (size_t i = 0; i < sizeof(kip_cases) / sizeof(kip_cases[0]); i++) {
		struct kcmdline k;
		struct strbuf err, warn;
		sb_init(&err);
		sb_init(&warn);
		assert_int_equal(kcmdline_parse(kip_cases[i].cmdline, &k, &err), 0);
		struct netcfg_plan p;
		assert_int_equal(netcfg_plan(NULL, &k, links, 3, &p, &warn), 0);
		char *t = plan_text(&p);
		if (strcmp(t, kip_cases[i].want))
			fprintf(stderr, "case %zu (%s):\n%s", i, kip_cases[i].cmdline, t);
		assert_string_equal(t, kip_cases[i].want);
		free(t);
		sb_free(&err);
		sb_free(&warn);
	}
}

static void test_dedup(void **state)
{
	struct kcmdline k;
	struct strbuf err, warn;
	sb_init(&err);
	sb_init(&warn);
	assert_int_equal(kcmdline_parse("ip=dhcp ip=dhcp ip=dhcp ip=dhcp", &k, &err), 0);
	/* Four ip=dhcp on the same (first) link: one link-up, one DHCP client. */
	struct netcfg_link many[NETCFG_MAX_LINKS];
	for (size_t i = 0; i < NETCFG_MAX_LINKS; i++) {
		snprintf(many[i].name, sizeof(many[i].name), "eth%zu", i);
		memset(many[i].mac, (int)i + 1, 6);
	}
	struct netcfg_plan p;
	assert_int_equal(netcfg_plan(NULL, &k, many, NETCFG_MAX_LINKS, &p, &warn), 0);
	assert_int_equal(p.n, 3);
	sb_free(&err);
	sb_free(&warn);
}

/* SPEC §11: what the boot waits for, each configured interface once. */
static void test_waiting_for(void **state)
{
	struct cfg *c = load();
	const struct cfg_node *n1 = &c->nodes[0];
	struct netcfg_link l[] = {
	    {"eth0", {0x52, 0x54, 0, 0, 0, 0x01}, 1},
	    {"eth1", {0x52, 0x54, 0, 0, 0, 0x02}, 0},
	    {"eth7", {0x52, 0x54, 0, 0, 0, 0x07}, 1},
	};
	struct strbuf why;
	sb_init(&why);
	/* eth1 is there without carrier */
	assert_int_equal(netcfg_waiting_for(n1, l, 3, &why), 1);
	assert_string_equal(why.buf, "link down on 52:54:00:00:00:02");
	/* eth0 has not appeared yet (driver late), eth7 neither */
	sb_reset(&why);
	assert_int_equal(netcfg_waiting_for(n1, &l[1], 1, &why), 3);
	assert_string_equal(why.buf, "no interface 52:54:00:00:00:01; link down on "
				     "52:54:00:00:00:02; no interface eth7");
	l[1].carrier = 1;
	sb_reset(&why);
	assert_int_equal(netcfg_waiting_for(n1, l, 3, &why), 0);
	assert_true(!why.buf || !why.buf[0]);
	sb_free(&why);
	cfg_free(c);
}

/* The carrier comes from sysfs: "1" up; "0", or unreadable (link not up), down. */
static void test_links_read_carrier(void **state)
{
	char dir[] = "/tmp/test_netcfg.XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const names[] = {"eth0", "eth1", "eth2"};
	static const char *const carrier[] = {"1\n", "0\n", NULL};
	char path[256];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		assert_int_equal(mkdir(path, 0755), 0);
		snprintf(path, sizeof(path), "%s/%s/address", dir, names[i]);
		FILE *f = fopen(path, "w");
		fprintf(f, "52:54:00:00:00:0%d\n", i + 1);
		fclose(f);
		if (!carrier[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s/carrier", dir, names[i]);
		f = fopen(path, "w");
		fputs(carrier[i], f);
		fclose(f);
	}
	struct netcfg_link l[4];
	assert_int_equal(netcfg_links_read(dir, l, 4), 3);
	assert_int_equal(l[0].carrier, 1);
	assert_int_equal(l[1].carrier, 0);
	assert_int_equal(l[2].carrier, 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_node_lines),
	    cmocka_unit_test(test_kernel_ip),
	    cmocka_unit_test(test_dedup),
	    cmocka_unit_test(test_waiting_for),
	    cmocka_unit_test(test_links_read_carrier),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
