/* netcfg_plan: node net/route lines and the kernel's ip= into rtnetlink actions. */
#include "cmdline.h"
#include "config.h"
#include "netcfg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

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
    {"eth0", {0x52, 0x54, 0, 0, 0, 0x01}},
    {"eth1", {0x52, 0x54, 0, 0, 0, 0x02}},
    {"eth2", {0x52, 0x54, 0, 0, 0, 0x03}},
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_node_lines),
	    cmocka_unit_test(test_kernel_ip),
	    cmocka_unit_test(test_dedup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
