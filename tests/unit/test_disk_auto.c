/* `disks = auto` on a fixture sysfs tree laid out like the kernel's: local buses (ATA,
 * virtio, NVMe) are taken; iSCSI sessions, USB, FC remote ports, NBD, removable media and
 * the boot medium (from mountinfo, or root= on the kernel command line) are not. */
#include "disk.h"
#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "img_fixture.h"

static char dir[128], root[256];

/* disk <name> <device dir under devices/> <maj:min> <removable> [partition maj:min] */
static void disk(const char *name, const char *devdir, const char *mm, int removable,
		 const char *part_mm)
{
	assert_int_equal(sh("mkdir -p %s && cd %s && d=devices/%s/block/%s && mkdir -p $d block "
			    "class/block dev/block && "
			    "echo 262144 >$d/size && echo %d >$d/removable && "
			    "ln -s ../$d block/%s && ln -s ../../$d class/block/%s && "
			    "ln -s ../../$d dev/block/%s",
			    root, root, devdir, name, removable, name, name, mm),
			 0);
	if (!part_mm)
		return;
	const char *sep = name[strlen(name) - 1] >= '0' && name[strlen(name) - 1] <= '9' ? "p" : "";
	assert_int_equal(sh("cd %s && d=devices/%s/block/%s/%s%s1 && mkdir -p $d && "
			    "echo 1 >$d/partition && echo 2048 >$d/size && "
			    "ln -s ../../$d class/block/%s%s1 && ln -s ../../$d dev/block/%s",
			    root, devdir, name, name, sep, name, sep, part_mm),
			 0);
}

static void write_file(const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_transports(void **state)
{
	assert_int_equal(disk_sysfs_transport(root, "sda"), DISK_TRANSPORT_LOCAL);
	assert_int_equal(disk_sysfs_transport(root, "vda"), DISK_TRANSPORT_LOCAL);
	assert_int_equal(disk_sysfs_transport(root, "nvme0n1"), DISK_TRANSPORT_LOCAL);
	assert_int_equal(disk_sysfs_transport(root, "sdb"), DISK_TRANSPORT_ISCSI);
	assert_int_equal(disk_sysfs_transport(root, "sdc"), DISK_TRANSPORT_USB);
	assert_int_equal(disk_sysfs_transport(root, "sdd"), DISK_TRANSPORT_FC);
	assert_int_equal(disk_sysfs_transport(root, "nbd0"), DISK_TRANSPORT_NBD);
	assert_string_equal(disk_auto_excluded(root, "sde", NULL), "removable");
	assert_string_equal(disk_auto_excluded(root, "sdb", NULL), "iscsi");
	assert_string_equal(disk_auto_excluded(root, "sda", "/dev/sda"), "boot medium");
	assert_null(disk_auto_excluded(root, "sda", "/dev/vda"));
}

static void test_boot_medium(void **state)
{
	char out[64], ci[256], mi[256];
	snprintf(ci, sizeof(ci), "%s/cmdline", dir);
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	/* An initramfs on PXE: nothing mounted from a disk, no root=. */
	write_file("cmdline", "console=ttyS0 compartd.node=a1\n");
	write_file("mountinfo", "1 1 0:2 / / rw - rootfs rootfs rw\n"
				"22 1 0:21 / /proc rw - proc proc rw\n");
	assert_int_equal(disk_boot_medium(root, ci, mi, out, sizeof(out)), -ENOENT);
	/* root= names a partition: its whole disk. */
	write_file("cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n");
	assert_int_equal(disk_boot_medium(root, ci, mi, out, sizeof(out)), 0);
	assert_string_equal(out, "/dev/sda");
	/* A mounted /boot wins (the disk the kernel came from). */
	write_file("mountinfo", "1 1 0:2 / / rw - rootfs rootfs rw\n"
				"30 1 259:1 / /boot rw,relatime - ext4 /dev/nvme0n1p1 rw\n");
	assert_int_equal(disk_boot_medium(root, ci, mi, out, sizeof(out)), 0);
	assert_string_equal(out, "/dev/nvme0n1");
	/* A whole-disk root. */
	write_file("mountinfo", "1 1 254:0 / / rw - ext4 /dev/vda rw\n");
	assert_int_equal(disk_boot_medium(root, ci, mi, out, sizeof(out)), 0);
	assert_string_equal(out, "/dev/vda");
}

static void test_list_auto(void **state)
{
	char ci[256], mi[256], paths[DISK_MAX][CFG_PATH_MAX];
	snprintf(ci, sizeof(ci), "%s/cmdline", dir);
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	write_file("cmdline", "root=/dev/sda1\n");
	write_file("mountinfo", "30 1 259:1 / /boot rw - ext4 /dev/nvme0n1p1 rw\n");
	struct disk_auto_opts o = {.sysfs_root = root, .cmdline = ci, .mountinfo = mi};
	int n = disk_list_auto(&o, paths, DISK_MAX);
	assert_int_equal(n, 2);
	assert_string_equal(paths[0], "/dev/sda");
	assert_string_equal(paths[1], "/dev/vda");
	/* Told the boot medium: only that one is left out. */
	o.boot_medium = "/dev/vda";
	n = disk_list_auto(&o, paths, DISK_MAX);
	assert_int_equal(n, 2);
	assert_string_equal(paths[0], "/dev/nvme0n1");
	assert_string_equal(paths[1], "/dev/sda");
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test-disk-auto-XXXXXX", t ? t : "/var/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(root, sizeof(root), "%s/sys", dir);
	log_set_target(LOG_TARGET_NONE);
	const char *pci = "pci0000:00";
	char d[256];
	snprintf(d, sizeof(d), "%s/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", pci);
	disk("sda", d, "8:0", 0, "8:1");
	snprintf(d, sizeof(d), "platform/host3/session1/target3:0:0/3:0:0:0");
	disk("sdb", d, "8:16", 0, NULL);
	snprintf(d, sizeof(d), "%s/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0", pci);
	disk("sdc", d, "8:32", 0, NULL);
	snprintf(d, sizeof(d), "%s/0000:00:03.0/host5/rport-5:0-0/target5:0:0/5:0:0:0", pci);
	disk("sdd", d, "8:48", 0, NULL);
	snprintf(d, sizeof(d), "%s/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0", pci);
	disk("sde", d, "8:64", 1, NULL);
	snprintf(d, sizeof(d), "%s/0000:00:04.0/virtio1", pci);
	disk("vda", d, "254:0", 0, NULL);
	snprintf(d, sizeof(d), "%s/0000:00:05.0/nvme/nvme0", pci);
	disk("nvme0n1", d, "259:0", 0, "259:1");
	disk("nbd0", "virtual", "43:0", 0, NULL);
	return 0;
}

static int teardown(void **state)
{
	sh("rm -rf %s", dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transports),
	    cmocka_unit_test(test_boot_medium),
	    cmocka_unit_test(test_list_auto),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
