/* Golden files for the human and JSON answers of the console commands, on a
 * deterministic agent (tests/unit/agent_fixture.h). Volatile fields (uptime, pid) are
 * normalized. UPDATE_GOLDEN=1 rewrites the files after a deliberate change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agent_fixture.h"
#include "elect_drv.h"
#include "hs.h"

#define GOLDEN SRCDIR "/tests/golden/console/"

/* Volatile fields: uptime and pid become 0, configuration hashes (they follow the rig
 * file, which other tests own) become "H". Every occurrence. */
static void normalize(char *s)
{
	static const struct {
		const char *key, *repl;
		bool hex;
	} keys[] = {
	    {"uptime      ", "0", false},      {"\"uptime_s\":", "0", false},
	    {"\"pid\":", "0", false},	       {"blake2b ", "H", true},
	    {"\"config_hash\":\"", "H", true},
	};
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		for (char *p = strstr(s, keys[k].key); p; p = strstr(p, keys[k].key)) {
			p += strlen(keys[k].key);
			char *e = p;
			while ((*e >= '0' && *e <= '9') || (keys[k].hex && *e >= 'a' && *e <= 'f'))
				e++;
			if (e > p) {
				*p = keys[k].repl[0];
				memmove(p + 1, e, strlen(e) + 1);
			}
		}
	}
}

static void check_golden(const char *name, const char *got)
{
	char path[256];
	snprintf(path, sizeof(path), GOLDEN "%s", name);
	if (getenv("UPDATE_GOLDEN")) {
		fixture_write(path, got, strlen(got));
		return;
	}
	char *want = NULL;
	size_t len;
	if (read_full_file(path, 1 << 20, &want, &len) < 0)
		fail_msg("missing golden file %s (UPDATE_GOLDEN=1 writes it); got:\n%s", path, got);
	if (strcmp(want, got))
		fail_msg("%s differs; got:\n%s\nwant:\n%s", path, got, want);
	free(want);
}

/* Runs `line` as human and as JSON, compares both with <name>.txt and <name>.json. */
static void golden(struct fixture *f, const char *name, const char *line, bool want_failed)
{
	for (int json = 0; json < 2; json++) {
		char l[160], file[96];
		snprintf(l, sizeof(l), "%s%s", line, json ? " --json" : "");
		snprintf(file, sizeof(file), "%s.%s", name, json ? "json" : "txt");
		bool failed;
		char *out = fixture_run(f, l, &failed);
		normalize(out);
		printf("== %s\n%s", l, out);
		assert_int_equal(failed, want_failed);
		check_golden(file, out);
		free(out);
	}
}

/* Stand-ins for the modules' commands, registered over the absent placeholders the way
 * the modules register theirs, and answering through console_req_answer() as theirs do. */
static int fake_wipe(struct console_req *req, void *ud)
{
	struct strbuf msg;
	sb_init(&msg);
	int r = 0;
	if (req->argc != 2) {
		console_req_error(req, "usage: approve-wipe <disk>");
		return -EINVAL;
	}
	if (strcmp(req->argv[1], "/dev/vdb")) {
		sb_printf(&msg, "no foreign disk '%s' (disks lists them)", req->argv[1]);
		r = -ENOENT;
	} else {
		sb_puts(&msg, "wipe of /dev/vdb (serial QM00002) authorized once");
	}
	r = console_req_answer(req, "approve-wipe", r, &msg);
	sb_free(&msg);
	return r;
}
static int fake_continue(struct console_req *req, void *ud)
{
	struct strbuf msg;
	sb_init(&msg);
	sb_puts(&msg, "wait-operator released; starting profile infra-only");
	int r = console_req_answer(req, "continue", 0, &msg);
	sb_free(&msg);
	return r;
}
static int fake_promote(struct console_req *req, void *ud)
{
	struct strbuf msg;
	sb_init(&msg);
	sb_printf(&msg, "the %s master b1 holds a valid lease (epoch 7)", req->argv[1]);
	int r = console_req_answer(req, "promote", -EBUSY, &msg);
	sb_free(&msg);
	return r;
}
static int fake_demote(struct console_req *req, void *ud)
{
	struct strbuf msg;
	sb_init(&msg);
	sb_printf(&msg, "%s: stepping down to slave at epoch 8", req->argv[1]);
	int r = console_req_answer(req, "demote", 0, &msg);
	sb_free(&msg);
	return r;
}

static int disk_reach(void *ud, struct strbuf *d)
{
	sb_puts(d, "/dev/vdb: no medium");
	return -ENOMEDIUM;
}
static int md_reach(void *ud, struct strbuf *d)
{
	sb_puts(d, "resyncing 42% (1/2 members)");
	return 0;
}
static const struct health_component_ops disk_ops = {.check_reachable = disk_reach};
static const struct health_component_ops md_ops = {.check_reachable = md_reach};

static void test_golden_not_available(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	golden(&f, "help", "help", false);
	golden(&f, "approve-wipe-unavailable", "approve-wipe /dev/vdb", true);
	golden(&f, "continue-unavailable", "continue", true);
	golden(&f, "promote-unavailable", "promote infra", true);
	golden(&f, "shell-socket", "shell", true);
	golden(&f, "unknown", "frobnicate", true);
	golden(&f, "query-usage", "query all shell", true);
	/* Without the handshake module every other node is an error that says why. */
	golden(&f, "query-no-transport", "query all status", false);
	fixture_close(&f);
}

static void test_golden_hooks(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	struct console *c = f.a.env.console;
	assert_int_equal(console_register(c, "approve-wipe", "<disk>", "", fake_wipe, NULL), 0);
	assert_int_equal(console_register(c, "continue", "", "", fake_continue, NULL), 0);
	assert_int_equal(console_register(c, "promote", "<infra|admin>", "", fake_promote, NULL),
			 0);
	assert_int_equal(console_register(c, "demote", "<infra|admin>", "", fake_demote, NULL), 0);
	/* A real command is not replaced. */
	assert_int_equal(console_register(c, "demote", "", "", fake_demote, NULL), -EEXIST);
	golden(&f, "approve-wipe", "approve-wipe /dev/vdb", false);
	golden(&f, "approve-wipe-refused", "approve-wipe /dev/vdz", true);
	golden(&f, "continue", "continue", false);
	golden(&f, "promote-refused", "promote infra", true);
	golden(&f, "demote", "demote admin", false);
	fixture_close(&f);
}

static void test_golden_status_health(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	golden(&f, "status", "status", false);
	golden(&f, "query-self", "query node a1 status", false);
	/* A disk that needs an operator, an array resyncing under it. */
	assert_int_equal(health_register(f.a.env.health, &disk_ops, NULL, "disk", "vdb", NULL), 2);
	assert_int_equal(health_register(f.a.env.health, &md_ops, NULL, "md", "infra", NULL), 3);
	health_run_due(f.a.env.health, FIX_MONO_US);
	fix_mono = FIX_MONO_US + 1500 * USEC_PER_MSEC;
	golden(&f, "health", "health", false);
	golden(&f, "status-degraded", "status", false);
	golden(&f, "health-usage", "health everything", true);
	fixture_close(&f);
}

/* ---- fencing in `status` (SPEC §7) ---- */

/* The fixture's configuration again, with `watchdog = wd` and without [quorum] (the
 * election then needs no network), and a real election driver on it. */
static void fixture_elect(struct fixture *f, const char *wd)
{
	char *text, *q, *end, line[200];
	size_t len;
	struct strbuf err, conf;
	static const uint8_t key[HS_KEY_BYTES];

	assert_int_equal(read_full_file(f->conf, 1 << 20, &text, &len), 0);
	q = strstr(text, "\n[quorum]\n");
	assert_non_null(q);
	end = strstr(q + 1, "\n[");
	assert_non_null(end);
	memmove(q, end, strlen(end) + 1);
	q = strstr(text, "\nwatchdog = /dev/watchdog\n");
	assert_non_null(q);
	sb_init(&conf);
	sb_put(&conf, text, (size_t)(q - text));
	snprintf(line, sizeof(line), "\nwatchdog = %s\n", wd);
	sb_puts(&conf, line);
	sb_puts(&conf, q + strlen("\nwatchdog = /dev/watchdog\n"));
	fixture_write(f->conf, conf.buf, conf.len);
	sb_free(&conf);
	free(text);
	cfg_free(f->a.env.cfg);
	sb_init(&err);
	assert_int_equal(cfg_load(f->conf, NULL, 0, &f->a.env.cfg, &err), 0);
	sb_free(&err);
	assert_int_equal(elect_drv_new(&f->a.env, key, NULL, &f->a.elect), 0);
}

static void expect_status(struct fixture *f, const char *human, const char *json)
{
	char *out = fixture_run(f, "status", NULL);

	printf("== status\n%s", out);
	if (!strstr(out, human))
		fail_msg("status has no '%s':\n%s", human, out);
	free(out);
	out = fixture_run(f, "status --json", NULL);
	printf("== status --json\n%s", out);
	if (!strstr(out, json))
		fail_msg("status --json has no '%s':\n%s", json, out);
	free(out);
}

static void test_status_unfenced(void **state)
{
	struct fixture f;

	fixture_open(&f, false);
	fixture_elect(&f, "none");
	expect_status(
	    &f, "\nfencing     unfenced (watchdog = none): a hung master is not reset\n",
	    "\"fencing\":{\"state\":\"unfenced\",\"watchdog\":\"none\",\"timeout_ms\":1000,"
	    "\"petted\":false,\"stopped\":null,\"detail\":null}");
	f.a.elect = elect_drv_free(f.a.elect);
	fixture_close(&f);
}

/* A host-mode agent arms no real watchdog; a plain file takes the keep-alives instead. */
static void test_status_armed(void **state)
{
	struct fixture f;
	char wd[160], human[256], json[512];

	fixture_open(&f, false);
	snprintf(wd, sizeof(wd), "%s/wd", f.dir);
	fixture_write(wd, "", 0);
	fixture_elect(&f, wd);
	snprintf(human, sizeof(human), "\nfencing     watchdog %s (1000 ms)\n", wd);
	snprintf(json, sizeof(json),
		 "\"fencing\":{\"state\":\"armed\",\"watchdog\":\"%s\",\"timeout_ms\":1000,"
		 "\"petted\":true,\"stopped\":null,\"detail\":null}",
		 wd);
	expect_status(&f, human, json);
	f.a.elect = elect_drv_free(f.a.elect);
	fixture_close(&f);
}

/* A configured watchdog that cannot be opened: the node says it does not become master. */
static void test_status_missing(void **state)
{
	struct fixture f;
	char wd[160], human[320];

	fixture_open(&f, false);
	snprintf(wd, sizeof(wd), "%s/no-such-watchdog", f.dir);
	fixture_elect(&f, wd);
	snprintf(human, sizeof(human),
		 "\nfencing     no watchdog (%s: No such file or directory): this node does not "
		 "become master\n",
		 wd);
	expect_status(&f, human, "\"fencing\":{\"state\":\"missing\"");
	f.a.elect = elect_drv_free(f.a.elect);
	fixture_close(&f);
}

/* Every state's words, FENCED included (reached only through a failed demote hook of a
 * master: tests/integration/56 and 94 drive it for real). */
static void test_fencing_format(void **state)
{
	static const struct {
		struct elect_fencing f;
		const char *human, *json;
	} cases[] = {
	    {{ELECT_FENCE_NOT_ARMED, "/dev/watchdog", 1000000, "", ""},
	     "watchdog /dev/watchdog (1000 ms), not armed yet (the election has not started)",
	     "{\"state\":\"not-armed\",\"watchdog\":\"/dev/watchdog\",\"timeout_ms\":1000,"
	     "\"petted\":false,\"stopped\":null,\"detail\":null}"},
	    {{ELECT_FENCE_ARMED, "/dev/watchdog", 2000000,
	      "infra: its demote hook still runs and the lease ran out", ""},
	     "watchdog /dev/watchdog (2000 ms), keep-alives stopped (infra: its demote hook still "
	     "runs and the lease ran out): the node resets",
	     "{\"state\":\"armed\",\"watchdog\":\"/dev/watchdog\",\"timeout_ms\":2000,"
	     "\"petted\":false,\"stopped\":\"infra: its demote hook still runs and the lease ran "
	     "out\",\"detail\":null}"},
	    {{ELECT_FENCE_FENCED, "/dev/watchdog", 1000000,
	      "infra: fenced, its demote hook failed or hung", "infra"},
	     "FENCED (infra: the demote hook failed or hung), watchdog /dev/watchdog (1000 ms) no "
	     "longer petted: the node resets",
	     "{\"state\":\"fenced\",\"watchdog\":\"/dev/watchdog\",\"timeout_ms\":1000,"
	     "\"petted\":false,\"stopped\":\"infra: fenced, its demote hook failed or hung\","
	     "\"detail\":\"infra\"}"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		for (int json = 0; json < 2; json++) {
			struct strbuf out;

			sb_init(&out);
			elect_fencing_format(&cases[i].f, json, &out);
			assert_string_equal(out.buf, json ? cases[i].json : cases[i].human);
			sb_free(&out);
		}
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden_not_available), cmocka_unit_test(test_golden_hooks),
	    cmocka_unit_test(test_golden_status_health), cmocka_unit_test(test_status_unfenced),
	    cmocka_unit_test(test_status_armed),	 cmocka_unit_test(test_status_missing),
	    cmocka_unit_test(test_fencing_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
