/* `disks = auto` (SPEC §3): every non-removable whole disk on a local bus — not iSCSI, NBD,
 * FC or USB — that is not the boot medium. Everything is read from a sysfs tree whose root
 * is a parameter (tests point it at a fixture), the kernel command line and mountinfo. */
#include "disk.h"
#include "log.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const transport_str[_DISK_TRANSPORT_MAX] = {
    [DISK_TRANSPORT_LOCAL] = "local", [DISK_TRANSPORT_ISCSI] = "iscsi",
    [DISK_TRANSPORT_NBD] = "nbd",     [DISK_TRANSPORT_FC] = "fc",
    [DISK_TRANSPORT_USB] = "usb",     [DISK_TRANSPORT_VIRTUAL] = "virtual",
};

const char *disk_transport_to_str(enum disk_transport t)
{
	return t < _DISK_TRANSPORT_MAX ? transport_str[t] : NULL;
}

static bool read_line(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "re");
	out[0] = '\0';
	if (!f)
		return false;
	bool ok = fgets(out, (int)n, f) != NULL;
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return ok;
}

/* From the device's place in the sysfs tree: /devices/…/sessionN/… is an iSCSI session,
 * …/usbN/… a USB bus, …/rport-…/… an FC remote port, /devices/virtual/… no hardware. */
enum disk_transport disk_sysfs_transport(const char *sysfs_root, const char *name)
{
	char p[PATH_MAX], real[PATH_MAX];
	if (!strncmp(name, "nbd", 3))
		return DISK_TRANSPORT_NBD;
	snprintf(p, sizeof(p), "%s/block/%s", sysfs_root, name);
	if (!realpath(p, real))
		return DISK_TRANSPORT_LOCAL;
	if (strstr(real, "/session"))
		return DISK_TRANSPORT_ISCSI;
	if (strstr(real, "/usb"))
		return DISK_TRANSPORT_USB;
	if (strstr(real, "/rport-") || strstr(real, "/fc_"))
		return DISK_TRANSPORT_FC;
	if (strstr(real, "/devices/virtual/"))
		return DISK_TRANSPORT_VIRTUAL;
	return DISK_TRANSPORT_LOCAL;
}

/* "sda2" → "sda" through the sysfs tree (a partition's directory sits in its disk's). */
static void whole_disk(const char *sysfs_root, const char *name, char *out, size_t n)
{
	char p[PATH_MAX], real[PATH_MAX];
	snprintf(out, n, "%s", name);
	snprintf(p, sizeof(p), "%s/class/block/%s/partition", sysfs_root, name);
	if (access(p, F_OK) < 0)
		return;
	snprintf(p, sizeof(p), "%s/class/block/%s/..", sysfs_root, name);
	if (!realpath(p, real))
		return;
	const char *b = strrchr(real, '/');
	(void)!snprintf(out, n, "%.127s", b ? b + 1 : real);
}

/* root=/dev/X, root=UUID=…, PARTUUID=…, LABEL=… on the kernel command line. */
static bool from_cmdline(const char *sysfs_root, const char *cmdline, char *out, size_t n)
{
	char buf[4096], dev[256] = "";
	if (!read_line(cmdline, buf, sizeof(buf)))
		return false;
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save))
		if (!strncmp(t, "root=", 5))
			snprintf(dev, sizeof(dev), "%s", t + 5);
	if (!dev[0])
		return false;
	char *resolved = NULL;
	if (strncmp(dev, "/dev/", 5) && strchr(dev, '='))
		resolved = blkid_evaluate_tag(dev, NULL, NULL);
	const char *d = resolved ? resolved : dev;
	bool ok = !strncmp(d, "/dev/", 5) && !strchr(d + 5, '/');
	if (ok)
		whole_disk(sysfs_root, d + 5, out, n);
	free(resolved);
	return ok;
}

/* The disk behind a mounted boot file system: "/", "/boot", "/boot/efi", or a live
 * medium (/run/initramfs/live, /cdrom, /lib/live/mount/medium). */
static bool from_mountinfo(const char *sysfs_root, const char *mountinfo, char *out, size_t n)
{
	static const char *const points[] = {
	    "/boot", "/boot/efi", "/run/initramfs/live", "/cdrom", "/lib/live/mount/medium", "/"};
	FILE *f = fopen(mountinfo, "re");
	char line[1024], found[sizeof(points) / sizeof(points[0])][32] = {{0}};
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		char mp[512];
		if (sscanf(line, "%*u %*u %u:%u %*s %511s", &maj, &min, mp) != 3 || maj == 0)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(points); i++)
			if (!strcmp(mp, points[i]))
				snprintf(found[i], sizeof(found[i]), "%u:%u", maj, min);
	}
	fclose(f);
	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		char p[PATH_MAX], real[PATH_MAX];
		if (!found[i][0])
			continue;
		snprintf(p, sizeof(p), "%s/dev/block/%s", sysfs_root, found[i]);
		if (!realpath(p, real))
			continue;
		const char *b = strrchr(real, '/');
		whole_disk(sysfs_root, b ? b + 1 : real, out, n);
		return true;
	}
	return false;
}

int disk_boot_medium(const char *sysfs_root, const char *cmdline, const char *mountinfo, char *out,
		     size_t n)
{
	char name[128];
	if (!from_mountinfo(sysfs_root, mountinfo, name, sizeof(name)) &&
	    !from_cmdline(sysfs_root, cmdline, name, sizeof(name))) {
		out[0] = '\0';
		return -ENOENT;
	}
	snprintf(out, n, "/dev/%s", name);
	return 0;
}

/* Why `auto` leaves /dev/<name> alone, or NULL when it may take it. */
const char *disk_auto_excluded(const char *sysfs_root, const char *name, const char *boot_medium)
{
	char p[PATH_MAX], v[8];
	if (boot_medium && !strncmp(boot_medium, "/dev/", 5) && !strcmp(boot_medium + 5, name))
		return "boot medium";
	snprintf(p, sizeof(p), "%s/block/%s/removable", sysfs_root, name);
	if (read_line(p, v, sizeof(v)) && !strcmp(v, "1"))
		return "removable";
	switch (disk_sysfs_transport(sysfs_root, name)) {
	case DISK_TRANSPORT_LOCAL:
		return NULL;
	case DISK_TRANSPORT_ISCSI:
		return "iscsi";
	case DISK_TRANSPORT_NBD:
		return "nbd";
	case DISK_TRANSPORT_FC:
		return "fc";
	case DISK_TRANSPORT_USB:
		return "usb";
	case DISK_TRANSPORT_VIRTUAL:
		return "virtual";
	case _DISK_TRANSPORT_MAX:
		break;
	}
	return "unknown transport";
}

int disk_list_auto(const struct disk_auto_opts *o, char paths[][CFG_PATH_MAX], int max)
{
	const char *root = o->sysfs_root ? o->sysfs_root : "/sys";
	char boot[CFG_PATH_MAX] = "";
	const char *bm = o->boot_medium;
	if (!bm && disk_boot_medium(root, o->cmdline ? o->cmdline : "/proc/cmdline",
				    o->mountinfo ? o->mountinfo : "/proc/self/mountinfo", boot,
				    sizeof(boot)) == 0)
		bm = boot;
	if (bm && *bm)
		log_info("disks = auto: boot medium %s", bm);
	char(*all)[CFG_PATH_MAX] = calloc(DISK_MAX, CFG_PATH_MAX);
	if (!all)
		return -ENOMEM;
	int n = disk_list_sysfs(root, all, DISK_MAX), k = 0;
	for (int i = 0; i < n && k < max; i++) {
		const char *why = disk_auto_excluded(root, all[i] + 5, bm);
		if (why) {
			struct event ev;
			event_begin(&ev, "disk");
			event_add(&ev, "dev", all[i]);
			event_add(&ev, "verdict", "skipped");
			event_add(&ev, "reason", why);
			event_emit(&ev);
			continue;
		}
		memcpy(paths[k++], all[i], CFG_PATH_MAX);
	}
	free(all);
	return n < 0 ? n : k;
}
