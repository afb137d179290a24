/* One iSCSI session held open while something changes on the target (86-rig-guest-grow.sh):
 * every 500 ms a TEST UNIT READY and a READ CAPACITY(16) on the same I_T nexus. Prints
 * `capacity BYTES` at the start and whenever it changes, `sense KEY ASC ASCQ` for every
 * CHECK CONDITION (a unit attention is sense key 6), and `end` when STOP_FILE exists or
 * SECONDS have passed. Once RESET_FILE exists it sends one LOGICAL UNIT RESET (`lun-reset
 * RC`): LIO answers it with a unit attention (06/29/03) on this nexus, which shows the
 * watcher sees the unit attentions LIO does queue. libiscsi, as the rig's other initiator
 * tools.
 *
 *   iscsi_ua_watch URL INITIATOR SECONDS STOP_FILE RESET_FILE
 *   (URL: iscsi://[user%secret@]host[:port]/target/lun[?target_user=U&target_password=P]) */
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void sense(const struct scsi_task *t)
{
	printf("sense %x %02x %02x\n", (unsigned)t->sense.key,
	       (unsigned)(t->sense.ascq >> 8) & 0xff, (unsigned)t->sense.ascq & 0xff);
}

/* The LU's size in bytes, 0 on a CHECK CONDITION (printed) or an error. */
static uint64_t capacity(struct iscsi_context *c, int lun)
{
	struct scsi_task *t = iscsi_readcapacity16_sync(c, lun);
	uint64_t bytes = 0;
	if (!t)
		return 0;
	if (t->status == SCSI_STATUS_CHECK_CONDITION) {
		sense(t);
	} else if (t->status == SCSI_STATUS_GOOD) {
		struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);
		if (rc)
			bytes = (rc->returned_lba + 1) * rc->block_length;
	}
	scsi_free_scsi_task(t);
	return bytes;
}

static void tur(struct iscsi_context *c, int lun)
{
	struct scsi_task *t = iscsi_testunitready_sync(c, lun);
	if (t && t->status == SCSI_STATUS_CHECK_CONDITION)
		sense(t);
	if (t)
		scsi_free_scsi_task(t);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s URL INITIATOR SECONDS STOP_FILE RESET_FILE\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct iscsi_context *c = iscsi_create_context(argv[2]);
	struct iscsi_url *u = c ? iscsi_parse_full_url(c, argv[1]) : NULL;
	if (!u) {
		fprintf(stderr, "bad URL: %s\n", c ? iscsi_get_error(c) : "no context");
		return 1;
	}
	iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (iscsi_full_connect_sync(c, u->portal, u->lun) != 0) {
		fprintf(stderr, "login failed: %s\n", iscsi_get_error(c));
		return 1;
	}
	uint64_t last = capacity(c, u->lun);
	printf("capacity %llu\n", (unsigned long long)last);
	time_t end = time(NULL) + atoi(argv[3]);
	int reset = 0;
	while (time(NULL) < end && access(argv[4], F_OK) != 0) {
		usleep(500 * 1000);
		if (!reset && access(argv[5], F_OK) == 0) {
			reset = 1;
			printf("lun-reset %d\n", iscsi_task_mgmt_lun_reset_sync(c, u->lun));
		}
		tur(c, u->lun);
		uint64_t now = capacity(c, u->lun);
		if (now && now != last)
			printf("capacity %llu\n", (unsigned long long)now);
		last = now ? now : last;
	}
	printf("end\n");
	iscsi_logout_sync(c);
	iscsi_destroy_url(u);
	iscsi_destroy_context(c);
	return 0;
}
