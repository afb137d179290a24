/* A deterministic agent for console tests: the rig configuration copied to a temp dir,
 * node a1, a loop, the console with every command of the agent and of the console
 * module, fixed clocks for the health engine and the clock check. */
#pragma once

#include "agent.h"
#include "console_cmds.h"
#include "health.h"
#include "log.h"

#include <string.h>
#include <sys/stat.h>

/* The agent links libparted (the disks module), which pulls in libselinux, whose
 * constructor trips ASan's strchr interceptor before main() (see test_disk_apply.c). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "intercept_strchr=0";
}

#ifndef SRCDIR
#define SRCDIR "."
#endif

#define FIX_REALTIME_US (1800000000ULL * USEC_PER_SEC) /* 2027-01-15 */
#define FIX_MONO_US (1000ULL * USEC_PER_SEC)

static uint64_t fix_rt = FIX_REALTIME_US, fix_mono = FIX_MONO_US;
static uint64_t fix_realtime(void)
{
	return fix_rt;
}
static uint64_t fix_monotonic(void)
{
	return fix_mono;
}

struct fixture {
	struct agent a;
	char dir[64];
	char conf[128];
};

static void fixture_write(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void fixture_open(struct fixture *f, bool listen)
{
	memset(f, 0, sizeof(*f));
	fix_rt = FIX_REALTIME_US;
	fix_mono = FIX_MONO_US;
	snprintf(f->dir, sizeof(f->dir), "/tmp/compartd-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->conf, sizeof(f->conf), "%s/cluster.conf", f->dir);
	char *text;
	size_t len;
	assert_int_equal(read_full_file(SRCDIR "/images/rig/cluster.conf", 1 << 20, &text, &len),
			 0);
	fixture_write(f->conf, text, len);
	free(text);
	struct agent *a = &f->a;
	a->env.self = -1;
	a->start_us = now_usec();
	a->env.loop = loop_new();
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(cfg_load(f->conf, NULL, 0, &a->env.cfg, &err), 0);
	sb_free(&err);
	a->env.self = cfg_find_node(a->env.cfg, "a1");
	a->env.stage = NODE_STAGE_READY;
	assert_int_equal(console_new(a->env.loop, &a->env.console), 0);
	agent_register_commands(a);
	if (listen) {
		char sock[160];
		snprintf(sock, sizeof(sock), "%s/console.sock", f->dir);
		assert_int_equal(console_listen(a->env.console, sock), 0);
	}
	assert_int_equal(console_cmds_setup(a), 0);
	/* The same checks, on clocks the test moves. */
	health_checks_unregister(a);
	struct health_clock_src clk = {fix_realtime, fix_monotonic};
	assert_int_equal(health_checks_register(a, &clk), 0);
	a->env.health->clock = fix_monotonic;
}

static void fixture_close(struct fixture *f)
{
	console_cmds_teardown(&f->a);
	console_free(f->a.env.console);
	loop_free(f->a.env.loop);
	cfg_free(f->a.env.cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

struct fix_answer {
	bool done, failed;
	struct strbuf out;
};

static void fix_finish(struct console_req *req)
{
	struct fix_answer *ans = req->transport;
	ans->done = true;
	ans->failed = req->failed;
	sb_put(&ans->out, req->out.buf ? req->out.buf : "", req->out.len);
}

/* Runs one line on the socket side (serial=false) and returns its answer (free it). */
static char *fixture_run(struct fixture *f, const char *line, bool *ret_failed)
{
	struct fix_answer ans = {0};
	sb_init(&ans.out);
	assert_int_equal(console_exec(f->a.env.console, line, false, fix_finish, &ans, NULL), 0);
	for (int i = 0; i < 100 && !ans.done; i++)
		loop_iterate(f->a.env.loop, now_usec() + 50 * USEC_PER_MSEC);
	assert_true(ans.done);
	if (ret_failed)
		*ret_failed = ans.failed;
	return ans.out.buf ? sb_steal(&ans.out) : strdup("");
}
