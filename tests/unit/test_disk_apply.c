/* Disks on sparse image files, end to end through disk_bootstrap(): libparted writes the
 * GPT, independent tools (sfdisk, partx/libblkid, blkid) agree with it, and nothing that
 * is not ours changes by a single byte (sha256 before and after plan and apply). */
#include "bootstrap.h"
#include "log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "img_fixture.h"
#include <sodium.h>

#include "md_craft.h"

/* libparted pulls in libselinux, whose constructor reads /proc/filesystems with getline()
 * and strchr(): ASan's strchr interceptor flags it before main() runs. Only that check is
 * turned off, only in this binary. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "intercept_strchr=0";
}

#define MiB (1ULL << 20)
#define IMG_SIZE (128 * MiB)

static const char conf_text[] =
    "[cluster]\nname = t\nkey_file = /nonexistent/key\n"
    "[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
    "[compartment b]\nzone = dmz\npair = p1\n"
    "[node a1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 52:54:00:00:00:01\n"
    "[node b1]\ncompartment = b\nhandshake = 127.0.0.2\nmac = 52:54:00:00:00:02\n"
    "[layout]\nboot = 8MiB\nstate = 2MiB\ninfra = 16MiB\nadmin = 5%\n"
    "min_disk = 64MiB\nmin_guest = 16MiB\n";

static char dir[128];
static struct cfg *cfg;

static void img_path(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static char *sh_out(const char *fmt, ...) _printf_(1, 2);
static char *sh_out(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	struct strbuf sb;
	sb_init(&sb);
	char buf[4096];
	size_t l;
	while ((l = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_put(&sb, buf, l);
	pclose(f);
	return sb.buf ? sb_steal(&sb) : strdup("");
}

static struct disk_bootstrap_result *run(const char *node, const char *const *disks, int n,
					 const char *const *approve, int n_approve, bool apply)
{
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	struct disk_bootstrap_opts o = {.disks = disks,
					.n_disks = n,
					.approve = approve,
					.n_approve = n_approve,
					.apply = apply};
	assert_non_null(r);
	int self = cfg_find_node(cfg, node);
	assert_true(self >= 0);
	int e = disk_bootstrap(cfg, self, &o, r);
	assert_int_equal(e, 0);
	return r;
}

static void test_create_keep(void **state)
{
	char p[256];
	img_path("blank.img", p, sizeof(p));
	make_img(p, IMG_SIZE);
	const char *disks[] = {p};
	struct disk_bootstrap_result *r = run("a1", disks, 1, NULL, 0, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_CREATE);
	assert_int_equal(r->disks[0].result, 0);
	assert_true(r->journal_written);
	/* sfdisk (libfdisk) sees our names and types. */
	char *js = sh_out("sfdisk --json %s", p);
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		char want[128];
		snprintf(want, sizeof(want), "\"name\": \"%s\"", disk_part_name(k));
		assert_non_null(strstr(js, want));
		assert_non_null(strstr(js, disk_part_type_guid(k)));
	}
	assert_non_null(strstr(js, "\"label\": \"gpt\""));
	free(js);
	/* partx reads the table through libblkid; blkid -p the whole disk. */
	char *px = sh_out("partx -P -o NAME,TYPE,START,SECTORS %s", p);
	assert_non_null(strstr(px,
			       "NAME=\"cmpt-boot\" TYPE=\"bc13c2ff-59e6-4262-a352-b57c60c3fdb5\" "
			       "START=\"2048\" SECTORS=\"16384\""));
	assert_non_null(strstr(px,
			       "NAME=\"cmpt-state\" TYPE=\"5d138929-4580-4ec8-8641-5c8ebfefe4b2\" "
			       "START=\"18432\" SECTORS=\"4096\""));
	assert_non_null(
	    strstr(px, "NAME=\"cmpt-infra\" TYPE=\"a19d880f-05fc-4d3b-a006-743f0f84911e\""));
	free(px);
	char *bl = sh_out("blkid -p -o export %s", p);
	assert_non_null(strstr(bl, "PTTYPE=gpt"));
	free(bl);
	/* A DMZ node would not have cmpt-admin; this MZ one has it at 5% of 128 MiB. */
	assert_int_equal(r->disks[0].plan.n_parts, 5);
	assert_int_equal(r->disks[0].plan.parts[3].size, 6 * MiB);
	char ptuuid[40];
	snprintf(ptuuid, sizeof(ptuuid), "%s", r->disks[0].info.ptuuid);
	free(r);

	/* Second apply: keep, verified, not one byte written (not even the journal). */
	uint8_t h1[32], h2[32];
	sha256_file(p, h1);
	r = run("a1", disks, 1, NULL, 0, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_KEEP);
	assert_int_equal(r->disks[0].result, 0);
	assert_true(r->journal_loaded);
	assert_false(r->journal_written);
	assert_string_equal(r->disks[0].info.ptuuid, ptuuid);
	assert_int_equal(
	    journal_count_steps(&r->journal, JOURNAL_STEP_PARTITION, p, JOURNAL_STEP_DONE), 1);
	sha256_file(p, h2);
	assert_memory_equal(h1, h2, 32);
	free(r);

	/* The disk grew: still kept, guest may grow, nothing written. */
	assert_int_equal(truncate(p, IMG_SIZE + 64 * MiB), 0);
	sha256_file(p, h1);
	r = run("a1", disks, 1, NULL, 0, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_KEEP);
	assert_int_equal(r->disks[0].result, 0);
	assert_true(r->disks[0].plan.guest_can_grow);
	sha256_file(p, h2);
	assert_memory_equal(h1, h2, 32);
	free(r);
	unlink(p);
}

enum foreign_kind { F_DOS, F_GPT, F_EXT4, F_LVM, F_MD090, F_MD10, F_MD11, F_MD12, F_GPT_BACKUP };

struct foreign_case {
	const char *name;
	enum foreign_kind kind;
	const char *found; /* expected in `found` */
};

static const struct foreign_case foreign[] = {
    {"dos partition table", F_DOS, "dos"},
    {"foreign gpt", F_GPT, "gpt"},
    {"ext4", F_EXT4, "ext4"},
    {"lvm pv", F_LVM, "LVM2_member"},
    {"md 0.90 (end of disk)", F_MD090, "linux_raid_member"},
    {"md 1.0 (end of disk)", F_MD10, "linux_raid_member"},
    {"md 1.1", F_MD11, "linux_raid_member"},
    {"md 1.2", F_MD12, "linux_raid_member"},
    {"gpt, primary corrupt, backup intact", F_GPT_BACKUP, "gpt"},
};

/* Returns false when the setup cannot be made here (e.g. no loop device for LVM). */
static bool make_foreign(const struct foreign_case *c, const char *p)
{
	int fd;
	switch (c->kind) {
	case F_DOS:
		return sh("echo 'label: dos\n,32M,83\n,,83' | sfdisk -q %s >/dev/null 2>&1", p) ==
		       0;
	case F_GPT:
		return sh("sgdisk -n1:0:+20M -c1:data -n2:0:0 -c2:more %s >/dev/null 2>&1", p) == 0;
	case F_EXT4:
		return sh("mkfs.ext4 -q -F %s >/dev/null 2>&1", p) == 0;
	case F_LVM:
		return sh("d=$(losetup -f --show %s 2>/dev/null) || exit 1; "
			  "LVM_SUPPRESS_FD_WARNINGS=1 pvcreate -q -y \"$d\" >/dev/null 2>&1; r=$?; "
			  "losetup -d \"$d\"; exit $r",
			  p) == 0;
	case F_MD090:
	case F_MD10:
	case F_MD11:
	case F_MD12:
		fd = open(p, O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		int r = c->kind == F_MD090 ? md_write_v090(fd, IMG_SIZE, 0x33)
					   : md_write_v1(fd, IMG_SIZE,
							 c->kind == F_MD10   ? "1.0"
							 : c->kind == F_MD11 ? "1.1"
									     : "1.2",
							 "old:data", 0x44, 5);
		close(fd);
		return r == 0;
	case F_GPT_BACKUP:
		/* A GPT with data, then the primary header at LBA 1 destroyed. */
		if (sh("sgdisk -n1:0:+20M -c1:data %s >/dev/null 2>&1", p) != 0)
			return false;
		return sh("dd if=/dev/urandom of=%s bs=512 seek=1 count=1 conv=notrunc status=none",
			  p) == 0;
	}
	return false;
}

/* Every case runs; one that cannot be created here (only the LVM case, without a free loop
 * device) makes the whole test a cmocka skip, counted as such (a failure under CI=true). */
static void test_never_lose_data(void **state)
{
	const char *not_here = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(foreign); i++) {
		const struct foreign_case *c = &foreign[i];
		char p[256];
		img_path("foreign.img", p, sizeof(p));
		make_img(p, IMG_SIZE);
		if (!make_foreign(c, p)) {
			print_message("case %-40s cannot be created here\n", c->name);
			assert_true(c->kind == F_LVM); /* only the loop device may be missing */
			not_here = c->name;
			continue;
		}
		uint8_t before[32], after[32];
		sha256_file(p, before);
		const char *disks[] = {p};
		for (int apply = 0; apply < 2; apply++) {
			struct disk_bootstrap_result *r = run("a1", disks, 1, NULL, 0, apply);
			print_message(
			    "case %-40s %s: %s (%s)\n", c->name, apply ? "apply" : "plan ",
			    disk_verdict_to_str(r->disks[0].plan.verdict), r->disks[0].plan.found);
			assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_FOREIGN);
			assert_non_null(strstr(r->disks[0].plan.found, c->found));
			free(r);
			sha256_file(p, after);
			assert_memory_equal(before, after, 32);
		}
		/* Also when the GPT rewriter is pointed at it directly: it checks first. */
		if (c->kind == F_GPT_BACKUP) {
			const char *names[] = {"data"}, *guids[] = {DISK_GUID_LINUX};
			assert_true(disk_gpt_set_types(p, 512, names, guids, 1) < 0);
			sha256_file(p, after);
			assert_memory_equal(before, after, 32);
		}
		/* Authorized, the same disk is wiped clean of that signature and laid out. */
		const char *approve[] = {p};
		struct disk_bootstrap_result *r = run("a1", disks, 1, approve, 1, true);
		assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_WIPED);
		assert_int_equal(r->disks[0].result, 0);
		free(r);
		char *bl = sh_out("blkid -p -o export %s; wipefs -n %s", p, p);
		assert_null(strstr(bl, "linux_raid_member"));
		assert_null(strstr(bl, "LVM2_member"));
		assert_null(strstr(bl, "ext4"));
		assert_null(strstr(bl, "dos"));
		assert_non_null(strstr(bl, "PTTYPE=gpt"));
		free(bl);
		unlink(p);
	}
	if (not_here) {
		print_error("case %s did not run: skipped\n", not_here);
		skip();
	}
}

/* A wipe authorization is used once: recorded in the journal (on the other disk too), a
 * second foreign state of the same disk is not wiped again. */
static void test_wipe_once(void **state)
{
	char a[256], b[256];
	img_path("a.img", a, sizeof(a));
	img_path("b.img", b, sizeof(b));
	make_img(a, IMG_SIZE);
	make_img(b, IMG_SIZE);
	assert_int_equal(sh("mkfs.ext4 -q -F %s >/dev/null 2>&1", b), 0);
	const char *disks[] = {a, b}, *approve[] = {b};
	struct disk_bootstrap_result *r = run("b1", disks, 2, NULL, 0, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_CREATE);
	assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_FOREIGN);
	free(r);
	r = run("b1", disks, 2, approve, 1, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_KEEP);
	assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_WIPED);
	assert_int_equal(r->disks[1].result, 0);
	assert_int_equal(r->disks[1].plan.n_parts, 4); /* DMZ: no cmpt-admin */
	assert_true(journal_wipe_consumed(&r->journal, b));
	assert_int_equal(r->n_jdevs, 2);
	free(r);
	char *bl = sh_out("blkid -p -o export %s", b);
	assert_null(strstr(bl, "ext4"));
	assert_non_null(strstr(bl, "PTTYPE=gpt"));
	free(bl);
	/* The disk gets foreign data again; the same authorization does nothing now. */
	assert_int_equal(sh("mkfs.ext4 -q -F %s >/dev/null 2>&1", b), 0);
	uint8_t h1[32], h2[32];
	sha256_file(b, h1);
	r = run("b1", disks, 2, approve, 1, true);
	assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_FOREIGN);
	assert_true(r->journal_loaded);
	free(r);
	sha256_file(b, h2);
	assert_memory_equal(h1, h2, 32);
	unlink(a);
	unlink(b);
}

/* A crash between writing the GPT and setting the type GUIDs: the next run finishes it
 * without repartitioning (same disk GUID, same partition GUIDs). */
static void test_fix_types(void **state)
{
	char p[256];
	img_path("types.img", p, sizeof(p));
	make_img(p, IMG_SIZE);
	const char *disks[] = {p};
	free(run("a1", disks, 1, NULL, 0, true));
	const char *names[] = {"cmpt-state", "cmpt-boot"},
		   *guids[] = {DISK_GUID_LINUX, DISK_GUID_LINUX};
	assert_int_equal(disk_gpt_set_types(p, 512, names, guids, 2), 0);
	char *before = sh_out("sfdisk --json %s | grep -v '\"type\"'", p);
	struct disk_bootstrap_result *r = run("a1", disks, 1, NULL, 0, false);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_KEEP);
	assert_true(r->disks[0].plan.fix_types);
	free(r);
	r = run("a1", disks, 1, NULL, 0, true);
	assert_int_equal(r->disks[0].result, 0);
	free(r);
	char *after = sh_out("sfdisk --json %s | grep -v '\"type\"'", p);
	assert_string_equal(before, after);
	char *js = sh_out("sfdisk --json %s", p);
	assert_non_null(strstr(js, DISK_GUID_STATE));
	assert_non_null(strstr(js, DISK_GUID_BOOT));
	/* sgdisk's own CRC check agrees both tables are sound. */
	assert_int_equal(sh("sgdisk -v %s 2>&1 | grep -q 'No problems found'", p), 0);
	free(js);
	free(before);
	free(after);
	unlink(p);
}

/* Power lost inside libparted's GPT write of the second disk, after k of its five writes
 * (COMPARTD_FAULT_AT=gpt-write@2, COMPARTD_FAULT_TORN=k, in a child): the next run finishes
 * that disk with the disk GUID its intent named and one done record; a torn table that is
 * not our layout is foreign, journal or not (test_never_lose_data). */
static void test_resume_torn(void **state)
{
	char a[256], b[256];
	img_path("ra.img", a, sizeof(a));
	img_path("rb.img", b, sizeof(b));
	const char *disks[] = {a, b};
	for (int k = 1; k <= 4; k++) {
		make_img(a, IMG_SIZE);
		make_img(b, IMG_SIZE);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char t[8];
			snprintf(t, sizeof(t), "%d", k);
			setenv("COMPARTD_FAULT_AT", "gpt-write@2", 1);
			setenv("COMPARTD_FAULT_TORN", t, 1);
			free(run("a1", disks, 2, NULL, 0, true));
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 99);
		struct disk_bootstrap_result *r = run("a1", disks, 2, NULL, 0, false);
		const struct journal_step *s =
		    journal_step_pending(&r->journal, JOURNAL_STEP_PARTITION, b);
		assert_non_null(s);
		assert_int_equal(s->disk_size, IMG_SIZE);
		char guid[40];
		snprintf(guid, sizeof(guid), "%s", s->disk_guid);
		assert_int_equal(strlen(guid), 36);
		assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_CREATE);
		free(r);
		r = run("a1", disks, 2, NULL, 0, true);
		assert_int_equal(r->disks[1].result, 0);
		assert_string_equal(r->disks[1].info.ptuuid, guid);
		assert_null(journal_step_pending(&r->journal, JOURNAL_STEP_PARTITION, b));
		assert_int_equal(
		    journal_count_steps(&r->journal, JOURNAL_STEP_PARTITION, b, JOURNAL_STEP_DONE),
		    1);
		free(r);
		assert_int_equal(sh("sgdisk -v %s 2>&1 | grep -q 'No problems found'", b), 0);
	}
	/* Done now: torn again, not our layout, it is foreign like any other. */
	assert_int_equal(
	    sh("sgdisk -Z %s >/dev/null 2>&1 && sgdisk -n1:0:+10M %s >/dev/null 2>&1", b, b), 0);
	struct disk_bootstrap_result *r = run("a1", disks, 2, NULL, 0, true);
	assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_FOREIGN);
	free(r);
	unlink(a);
	unlink(b);
}

static char *captured;
static void on_finish(struct console_req *req)
{
	free(captured);
	captured = strdup(req->out.buf ? req->out.buf : "");
}

/* The running agent's view: `disks` / `raid` on the console, and an operator approval
 * that wipes one foreign disk once. */
static void test_module_console(void **state)
{
	char a[256], b[256];
	img_path("ma.img", a, sizeof(a));
	img_path("mb.img", b, sizeof(b));
	make_img(a, IMG_SIZE);
	make_img(b, IMG_SIZE);
	assert_int_equal(sh("mkfs.ext4 -q -F %s >/dev/null 2>&1", b), 0);
	const char *disks[] = {a, b};
	struct disk_bootstrap_opts o = {.disks = disks, .n_disks = 2, .apply = true};
	struct disk_module *m = NULL;
	assert_int_equal(disk_module_new(cfg, cfg_find_node(cfg, "a1"), &o, &m), 0);
	struct console *con = NULL;
	assert_int_equal(console_new(NULL, &con), 0);
	assert_non_null(m);
	assert_non_null(con);
	assert_int_equal(disk_console_register(con, m), 0);
	console_exec(con, "disks", false, on_finish, NULL, NULL);
	assert_non_null(strstr(captured, "has not run"));
	assert_int_equal(disk_module_bootstrap(m), 0);
	console_exec(con, "disks --json", false, on_finish, NULL, NULL);
	assert_non_null(strstr(captured, "\"verdict\":\"create\""));
	assert_non_null(strstr(captured, "\"verdict\":\"foreign\""));
	assert_non_null(strstr(captured, "\"found\":\"ext4\""));
	console_exec(con, "disks", false, on_finish, NULL, NULL);
	assert_non_null(strstr(captured, "cmpt-state   start"));
	assert_non_null(strstr(captured, "foreign"));
	/* Another module records its role; the next bootstrap reads it back. */
	struct journal_state *js = disk_module_journal(m);
	assert_non_null(js);
	journal_set_role(js, CFG_KIND_INFRA, "master", 77);
	assert_int_equal(disk_module_journal_store(m), 0);
	console_exec(con, "raid --json", false, on_finish, NULL, NULL);
	assert_string_equal(captured, "{\"arrays\":[]}\n");

	struct strbuf msg;
	sb_init(&msg);
	assert_int_equal(disk_approve_wipe(m, a, &msg), -EINVAL); /* not foreign */
	sb_reset(&msg);
	assert_int_equal(disk_approve_wipe(m, "/dev/nothing", &msg), -ENOENT);
	sb_reset(&msg);
	assert_int_equal(disk_approve_wipe(m, b, &msg), 0);
	assert_non_null(strstr(msg.buf, "wiped and partitioned"));
	const struct disk_bootstrap_result *r = disk_module_result(m);
	assert_int_equal(r->disks[1].plan.verdict, DISK_VERDICT_WIPED);
	assert_int_equal(r->journal.roles[CFG_KIND_INFRA].epoch, 77);
	assert_true(journal_wipe_consumed(&r->journal, b));
	/* Foreign again: the same approval is spent. */
	assert_int_equal(sh("mkfs.ext4 -q -F %s >/dev/null 2>&1", b), 0);
	assert_int_equal(disk_module_bootstrap(m), 0);
	assert_int_equal(disk_module_result(m)->disks[1].plan.verdict, DISK_VERDICT_FOREIGN);
	sb_free(&msg);
	console_free(con);
	disk_module_free(m);
	free(captured);
	captured = NULL;
	unlink(a);
	unlink(b);
}

/* Whole disks from a sysfs tree: partitions, loop/ram/md/dm/sr/nbd and empty devices are
 * not disks; the order is stable. */
static void test_sysfs_list(void **state)
{
	assert_int_equal(
	    sh("cd %s && mkdir -p sys/block/sdb sys/block/sda sys/block/loop0 "
	       "sys/block/md127 sys/block/dm-0 sys/block/sr0 sys/block/nbd0 sys/block/vda "
	       "sys/block/nvme0n1 sys/block/sdc && for d in sda sdb loop0 md127 dm-0 sr0 nbd0 "
	       "vda nvme0n1; do echo 2048 > sys/block/$d/size; done && echo 0 > sys/block/sdc/size",
	       dir),
	    0);
	char root[256], paths[DISK_MAX][CFG_PATH_MAX];
	snprintf(root, sizeof(root), "%s/sys", dir);
	int n = disk_list_sysfs(root, paths, DISK_MAX);
	assert_int_equal(n, 4);
	assert_string_equal(paths[0], "/dev/nvme0n1");
	assert_string_equal(paths[1], "/dev/sda");
	assert_string_equal(paths[2], "/dev/sdb");
	assert_string_equal(paths[3], "/dev/vda");
	char pp[64];
	disk_part_path("/dev/nvme0n1", 3, pp, sizeof(pp));
	assert_string_equal(pp, "/dev/nvme0n1p3");
	disk_part_path("/dev/vda", 3, pp, sizeof(pp));
	assert_string_equal(pp, "/dev/vda3");
	assert_true(disk_list_sysfs("/nonexistent", paths, DISK_MAX) < 0);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test-disk-XXXXXX", t ? t : "/var/tmp");
	if (!mkdtemp(dir) || sodium_init() < 0)
		return -1;
	log_set_target(LOG_TARGET_NONE);
	return cfg_parse("test.conf", conf_text, sizeof(conf_text) - 1, NULL, 0, &cfg, NULL);
}

static int teardown(void **state)
{
	cfg_free(cfg);
	sh("rm -rf %s", dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_keep),	   cmocka_unit_test(test_never_lose_data),
	    cmocka_unit_test(test_wipe_once),	   cmocka_unit_test(test_fix_types),
	    cmocka_unit_test(test_module_console), cmocka_unit_test(test_resume_torn),
	    cmocka_unit_test(test_sysfs_list),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
