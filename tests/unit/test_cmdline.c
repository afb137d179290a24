/* Kernel command line, the kernel's ip= syntax, identity by name and MAC, and the
 * number/duration/size parsers everything else leans on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cmdline.h"
#include "identity.h"

#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

static void compartd_keys_and_overrides(void **state)
{
	struct kcmdline k;
	struct strbuf err;
	sb_init(&err);
	const char *line = "BOOT_IMAGE=vmlinuz quiet console=tty0 console=ttyS0,115200n8 "
			   "compartd.node=a1 compartd.config=/etc/x.conf compartd.debug "
			   "compartd.timeouts.path_timeout=3s compartd.node.a1.handshake=10.0.0.1 "
			   "compartd.console=/dev/ttyS1 \"compartd.storage.m0.root=yes\" "
			   "compartd.identity_wait=90s BOOTIF=01-52-54-00-77-0a-01\n";
	assert_int_equal(kcmdline_parse(line, &k, &err), 0);
	assert_true(k.has_identity_wait);
	assert_int_equal(k.identity_wait_us, 90 * USEC_PER_SEC);
	assert_true(k.has_node);
	assert_string_equal(k.node, "a1");
	assert_string_equal(k.config, "/etc/x.conf");
	assert_true(k.debug);
	assert_string_equal(k.console, "/dev/ttyS1");
	assert_string_equal(k.kernel_console, "ttyS0");
	assert_int_equal(k.n_ovr, 3);
	assert_string_equal(k.ovr[0].section, "timeouts");
	assert_string_equal(k.ovr[0].key, "path_timeout");
	assert_string_equal(k.ovr[0].value, "3s");
	assert_string_equal(k.ovr[1].section, "node.a1");
	assert_string_equal(k.ovr[1].key, "handshake");
	assert_string_equal(k.ovr[2].section, "storage.m0");
	assert_true(k.has_bootif);
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x77, 0x0a, 0x01};
	assert_memory_equal(k.bootif, mac, 6);
	sb_free(&err);
}

static void bad_keys_are_named(void **state)
{
	struct kcmdline k;
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(kcmdline_parse("compartd.node compartd.config=relative ip=1.2.3:x "
					"BOOTIF=zz compartd.debug=maybe compartd.x=1 "
					"compartd.identity_wait=soon",
					&k, &err),
			 -EINVAL);
	assert_non_null(strstr(err.buf, "compartd.node: not understood"));
	assert_non_null(strstr(err.buf, "compartd.config=relative: not understood"));
	assert_non_null(strstr(err.buf, "ip=1.2.3:x: not understood"));
	assert_non_null(strstr(err.buf, "BOOTIF=zz: not understood"));
	assert_non_null(strstr(err.buf, "compartd.debug=maybe: not understood"));
	assert_non_null(strstr(err.buf, "compartd.x=1: not understood"));
	assert_non_null(strstr(err.buf, "compartd.identity_wait=soon: not understood"));
	assert_false(k.has_identity_wait);
	sb_free(&err);
}

/* SPEC §2: only identity, config, console, debug, timeouts, node network keys and a
 * storage's root key; what can destroy data or run code is refused with the key named. */
static void dangerous_overrides_refused(void **state)
{
	struct kcmdline k;
	struct strbuf err;
	sb_init(&err);
	const char *line = "compartd.layout.wipe=/dev/sda compartd.profile.infra-only.run=/bin/x "
			   "compartd.role.infra.promote=/bin/y compartd.cluster.key_file=/tmp/k "
			   "compartd.node.a1.priority=999 compartd.node.a1.mgmt_capable=yes "
			   "compartd.cluster.name=other compartd.console.password=x "
			   "compartd.quorum.target=iqn.x compartd.storage.m0.target=iqn.y "
			   "compartd.node.a1.external=10.0.0.2 compartd.timeouts.lease=2s";
	assert_int_equal(kcmdline_parse(line, &k, &err), -EINVAL);
	static const char *const named[] = {
	    "compartd.layout.wipe refused: the disk layout (it can destroy data)",
	    "compartd.profile.infra-only.run refused: hooks (they run code)",
	    "compartd.role.infra.promote refused: hooks",
	    "compartd.cluster.key_file refused: the cluster key file",
	    "compartd.node.a1.priority refused: only a node's network keys",
	    "compartd.node.a1.mgmt_capable refused",
	    "compartd.cluster.name refused",
	    "compartd.console.password refused",
	    "compartd.quorum.target refused",
	    "compartd.storage.m0.target refused: only a storage's root key"};
	for (size_t i = 0; i < ARRAY_SIZE(named); i++) {
		if (!strstr(err.buf, named[i]))
			fail_msg("not named: %s\nin: %s", named[i], err.buf);
	}
	/* the allowed ones still apply */
	assert_int_equal(k.n_ovr, 2);
	assert_string_equal(k.ovr[0].key, "external");
	assert_string_equal(k.ovr[1].key, "lease");
	assert_null(kcmdline_override_refused("node.b2", "route"));
	assert_null(kcmdline_override_refused("storage.x", "root"));
	assert_non_null(kcmdline_override_refused("cluster", "port"));
	assert_non_null(kcmdline_override_refused("cluster", "rules"));
	sb_free(&err);
}

/* A rig or test line carries many overrides: all of them apply, in order (the last of a
 * key wins when the config is loaded), and one too many is named, not silently lost. */
static void many_overrides(void **state)
{
	struct kcmdline *k = calloc(1, sizeof(*k));
	struct strbuf line, err;
	sb_init(&line);
	sb_init(&err);
	for (int i = 0; i < KCMD_MAX_OVR; i++)
		sb_printf(&line, "compartd.node.n%d.handshake=127.0.1.%d ", i, i);
	assert_int_equal(kcmdline_parse(line.buf, k, &err), 0);
	assert_int_equal(k->n_ovr, KCMD_MAX_OVR);
	assert_string_equal(k->ovr[KCMD_MAX_OVR - 1].section, "node.n63");
	assert_string_equal(k->ovr[KCMD_MAX_OVR - 1].value, "127.0.1.63");
	sb_puts(&line, "compartd.timeouts.t_max=50ms");
	assert_int_equal(kcmdline_parse(line.buf, k, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "compartd.timeouts.t_max=50ms: ignored, more than 64 "
					"compartd.<section>.<key> settings"));
	sb_free(&line);
	sb_free(&err);
	free(k);
}

static void kernel_ip_syntax(void **state)
{
	struct kip k;
	char a[64];
	assert_int_equal(kip_parse("dhcp", &k), 0);
	assert_int_equal(k.mode, KIP_DHCP);
	assert_int_equal(kip_parse("off", &k), 0);
	assert_int_equal(k.mode, KIP_OFF);
	assert_int_equal(
	    kip_parse("10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.0:node1:eth0:none:9.9.9.9", &k), 0);
	assert_int_equal(k.mode, KIP_STATIC);
	cfg_prefix_format(&k.client, true, a, sizeof(a));
	assert_string_equal(a, "10.0.0.5/24");
	cfg_prefix_format(&k.gateway, false, a, sizeof(a));
	assert_string_equal(a, "10.0.0.254");
	assert_string_equal(k.hostname, "node1");
	assert_string_equal(k.device, "eth0");
	assert_int_equal(k.n_dns, 1);
	assert_int_equal(kip_parse("::::::dhcp", &k), 0);
	assert_int_equal(k.mode, KIP_DHCP);
	assert_int_equal(kip_parse("[fd00::5]::[fd00::1]:64::eth1:off", &k),
			 -EINVAL); /* netmask must be an address */
	assert_int_equal(kip_parse("[fd00::5]::[fd00::1]:::eth1:off", &k), 0);
	cfg_prefix_format(&k.client, true, a, sizeof(a));
	assert_string_equal(a, "fd00::5/128");
	assert_int_equal(kip_parse("10.0.0.5::::::bogus", &k), -EINVAL);
	assert_int_equal(kip_parse("10.0.0.5:::255.0.255.0::", &k), -EINVAL); /* holes in mask */
	assert_int_equal(kip_parse("1:2:3:4:5:6:7:8:9:10:11", &k), -EINVAL);
}

static const char *conf =
    "[cluster]\nname = t\nkey_file = /k\n[pair p]\n"
    "[compartment a]\nzone = mz\npair = p\n[compartment b]\nzone = dmz\npair = p\n"
    "[node n1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 02:00:00:00:00:01\nmac = "
    "02:00:00:00:01:01\n"
    "[node n2]\ncompartment = b\nhandshake = 127.0.0.2\nmac = 02:00:00:00:00:02\n";

static void identity_by_name_and_mac(void **state)
{
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(cfg_parse("t.conf", conf, strlen(conf), NULL, 0, &c, &err), 0);
	int node = -1;
	assert_int_equal(identity_resolve(c, "n2", NULL, NULL, 0, &node, &err), 0);
	assert_int_equal(node, 1);
	assert_int_equal(identity_resolve(c, "n9", NULL, NULL, 0, &node, &err), -ENOENT);
	assert_non_null(strstr(err.buf, "node 'n9' is not in t.conf"));
	uint8_t macs[3][6] = {{2, 0, 0, 0, 9, 9}, {2, 0, 0, 0, 1, 1}};
	node = -1;
	assert_int_equal(identity_resolve(c, NULL, NULL, (const uint8_t(*)[6])macs, 2, &node, &err),
			 0);
	assert_int_equal(node, 0);
	/* two nodes' MACs on one host: ambiguous unless BOOTIF says which */
	memcpy(macs[2], (uint8_t[]){2, 0, 0, 0, 0, 2}, 6);
	sb_reset(&err);
	assert_int_equal(identity_resolve(c, NULL, NULL, (const uint8_t(*)[6])macs, 3, &node, &err),
			 -ENOTUNIQ);
	assert_non_null(strstr(err.buf, "match several nodes (n1, n2)"));
	assert_int_equal(
	    identity_resolve(c, NULL, macs[2], (const uint8_t(*)[6])macs, 3, &node, &err), 0);
	assert_int_equal(node, 1);
	/* none of this host's MACs is configured: a configured NIC may still appear (-ENXIO,
	 * the agent waits), also with no NIC at all yet */
	sb_reset(&err);
	assert_int_equal(identity_resolve(c, NULL, NULL, (const uint8_t(*)[6])macs, 1, &node, &err),
			 -ENXIO);
	assert_non_null(strstr(err.buf, "(02:00:00:00:09:09)"));
	sb_reset(&err);
	assert_int_equal(identity_resolve(c, NULL, NULL, NULL, 0, &node, &err), -ENXIO);
	assert_non_null(strstr(err.buf, "(none found)"));
	/* a BOOTIF that matches nothing does not settle it either */
	sb_reset(&err);
	assert_int_equal(
	    identity_resolve(c, NULL, macs[0], (const uint8_t(*)[6])macs, 1, &node, &err), -ENXIO);
	cfg_free(c);
	sb_free(&err);
}

/* A configuration without any mac = line: no NIC can ever identify the host. */
static void identity_without_macs_is_final(void **state)
{
	static const char *nomac =
	    "[cluster]\nname = t\nkey_file = /k\n[pair p]\n"
	    "[compartment a]\nzone = mz\npair = p\n[compartment b]\nzone = dmz\npair = p\n"
	    "[node n1]\ncompartment = a\nhandshake = 127.0.0.1\n"
	    "[node n2]\ncompartment = b\nhandshake = 127.0.0.2\n";
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(cfg_parse("t.conf", nomac, strlen(nomac), NULL, 0, &c, &err), 0);
	int node = -1;
	sb_reset(&err);
	assert_int_equal(identity_resolve(c, NULL, NULL, NULL, 0, &node, &err), -ENOENT);
	assert_non_null(strstr(err.buf, "it configures no mac = at all"));
	assert_int_equal(node, -1);
	cfg_free(c);
	sb_free(&err);
}

static void local_macs_from_sysfs(void **state)
{
	char dir[] = "/tmp/compartd-sysfs-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const char *ifs[][2] = {{"lo", "00:00:00:00:00:00"},
				{"eth0", "52:54:00:12:34:56"},
				{"eth1", "00:00:00:00:00:00"},
				{"eth0.7", "52:54:00:12:34:56"}};
	char p[256];
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, ifs[i][0]);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/%s/address", dir, ifs[i][0]);
		FILE *f = fopen(p, "w");
		fprintf(f, "%s\n", ifs[i][1]);
		fclose(f);
	}
	uint8_t macs[8][6];
	assert_int_equal(identity_local_macs(dir, macs, 8), 1);
	snprintf(p, sizeof(p), "rm -rf %s", dir);
	assert_int_equal(system(p), 0);
}

struct num_case {
	const char *s;
	int r;
	uint64_t v;
};

static void durations_and_sizes(void **state)
{
	static const struct num_case dur[] = {
	    {"500ms", 0, 500000}, {"3s", 0, 3000000},
	    {"2m", 0, 120000000}, {"250us", 0, 250},
	    {"200", 0, 200000},	  {"", -EINVAL, 0},
	    {"5h", -EINVAL, 0},	  {"-1s", -EINVAL, 0},
	    {"1.5s", -EINVAL, 0}, {"99999999999999999999s", -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
		uint64_t v = 0;
		assert_int_equal(parse_duration(dur[i].s, &v), dur[i].r);
		if (dur[i].r == 0)
			assert_int_equal(v, dur[i].v);
	}
	static const struct num_case sz[] = {
	    {"512MiB", 0, 512ULL << 20}, {"4GiB", 0, 4ULL << 30},     {"16M", 0, 16ULL << 20},
	    {"1T", 0, 1ULL << 40},	 {"4096", 0, 4096},	      {"4 GiB", -EINVAL, 0},
	    {"GiB", -EINVAL, 0},	 {"20000000TiB", -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		uint64_t v = 0;
		assert_int_equal(parse_size(sz[i].s, &v), sz[i].r);
		if (sz[i].r == 0)
			assert_int_equal(v, sz[i].v);
	}
	char b[32];
	format_duration(1500000, b, sizeof(b));
	assert_string_equal(b, "1500ms");
	format_duration(120000000, b, sizeof(b));
	assert_string_equal(b, "120s");
	format_size(3ULL << 30, b, sizeof(b));
	assert_string_equal(b, "3GiB");
	format_size(1000, b, sizeof(b));
	assert_string_equal(b, "1000");
}

static void event_values_are_quoted(void **state)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_event_val(&sb, "plain");
	sb_putc(&sb, ' ');
	sb_event_val(&sb, "two words");
	sb_putc(&sb, ' ');
	sb_event_val(&sb, "a=\"b\"");
	sb_putc(&sb, ' ');
	sb_event_val(&sb, "");
	assert_string_equal(sb.buf, "plain \"two words\" \"a=\\\"b\\\"\" \"\"");
	sb_free(&sb);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(compartd_keys_and_overrides),
	    cmocka_unit_test(bad_keys_are_named),
	    cmocka_unit_test(many_overrides),
	    cmocka_unit_test(dangerous_overrides_refused),
	    cmocka_unit_test(kernel_ip_syntax),
	    cmocka_unit_test(identity_by_name_and_mac),
	    cmocka_unit_test(identity_without_macs_is_final),
	    cmocka_unit_test(local_macs_from_sysfs),
	    cmocka_unit_test(durations_and_sizes),
	    cmocka_unit_test(event_values_are_quoted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
