/* Sends bad handshake datagrams to a running agent, for tests/integration/43-hs-drops.sh.
 *
 *   hs_inject KEYFILE BIND_IP:PORT TARGET_IP:PORT TARGET_ID AS_ID AGENT_LOG
 *
 * Poses as node AS_ID (binding that node's handshake address, so the agent's HELLOs reach
 * it), completes real handshakes with two boot ids, and sends, in order: a datagram under
 * a wrong key, a forged one (right header, random ciphertext), a truncated one, an
 * oversize one, one with an unknown version, one from an unknown sender id, a replayed
 * heartbeat, a heartbeat from the replaced boot, and one from a boot never proven fresh.
 * Expected drops at the agent: bad-tag 2, truncated 1, oversize 1, version 1,
 * unknown-sender 1, replay 1, old-boot 1, unverified-boot 1. Prints what it did.
 *
 * A handshake can lose a race it cannot see: the agent's probe timer may replace the
 * challenge just answered, and that answer is then dropped as unverified-boot. So each
 * handshake is confirmed by the agent's own log line naming the boot ("… runs boot HEX"),
 * and repeated when it is missing; the last line printed, "stale answers: N", tells the
 * test how many extra unverified-boot drops that cost. */
#include "hs_wire.h"

#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>

static int fd = -1;
static struct cfg_addr target;
static uint8_t key[HS_KEY_BYTES];
static uint16_t target_id, as_id;
static uint64_t counter;
static const char *agent_log;
static int stale_answers;

static void die(const char *what)
{
	fprintf(stderr, "hs_inject: %s\n", what);
	exit(1);
}

static void send_raw(const uint8_t *buf, size_t len)
{
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)&target.ss, target.len) < 0)
		die("sendto failed");
}

/* Seals m from boot `boot` with a fresh counter; returns the datagram length. */
static int seal(const uint8_t *k, const uint8_t boot[16], uint16_t sender, struct hs_msg *m,
		uint8_t *out)
{
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION,
				.type = (uint8_t)m->type,
				.sender = sender,
				.dest = target_id,
				.counter = ++counter};
	memcpy(h.boot_id, boot, 16);
	int n = hs_wire_seal(k, &h, m, out, HS_WIRE_MAX);
	if (n < 0)
		die("seal failed");
	return n;
}

static void send_msg(const uint8_t boot[16], struct hs_msg *m)
{
	uint8_t buf[HS_WIRE_MAX];
	send_raw(buf, (size_t)seal(key, boot, as_id, m, buf));
}

/* Waits up to `ms` for a datagram of type `type` from the target; decodes it into m. */
static int wait_for(enum hs_msg_type type, struct hs_msg *m, uint8_t *plain, int ms)
{
	static uint8_t buf[HS_WIRE_MAX + 1];
	uint64_t until = now_usec() + (uint64_t)ms * USEC_PER_MSEC;
	while (now_usec() < until) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, ms < 100 ? ms : 100) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct hs_wire_hdr h;
		if (n <= 0 || hs_wire_parse_hdr(buf, (size_t)n, &h) != HS_DROP_NONE)
			continue;
		if (h.type == type &&
		    hs_wire_open(key, buf, (size_t)n, &h, plain, m) == HS_DROP_NONE)
			return 0;
	}
	return -ETIMEDOUT;
}

/* Has the agent logged that it adopted `boot`? Waits up to `ms` for the line. */
static bool agent_adopted(const uint8_t boot[16], int ms)
{
	char hex[33], *text = NULL;
	size_t len = 0;
	sodium_bin2hex(hex, sizeof(hex), boot, 16);
	for (int waited = 0; waited <= ms; waited += 20) {
		bool seen = read_full_file(agent_log, 64 << 20, &text, &len) >= 0 &&
			    strstr(text, hex) != NULL;
		free(text);
		text = NULL;
		if (seen)
			return true;
		usleep(20 * 1000);
	}
	return false;
}

/* A full handshake under `boot`: our HELLO, then answering the agent's HELLO, whose
 * HELLO_ACK proves the boot fresh so the agent adopts it. Repeated (at most 5 times) until
 * the agent's log confirms the adoption. */
static void handshake(const uint8_t boot[16])
{
	uint8_t plain[HS_WIRE_MAX];
	for (int attempt = 0; attempt < 5; attempt++) {
		while (recv(fd, plain, sizeof(plain), MSG_DONTWAIT) >= 0)
			; /* older HELLOs carry challenges the agent no longer waits for */
		struct hs_msg m = {.type = HS_MSG_HELLO,
				   .hello = {.challenge = 42, .profile = 0xff}};
		send_msg(boot, &m);
		struct hs_msg in, later;
		for (int tries = 0; tries < 5; tries++) {
			if (wait_for(HS_MSG_HELLO, &in, plain, 2000) < 0)
				die("the agent sent no HELLO");
			if (!in.hello.external)
				break;
		}
		/* A probe HELLO already in flight may come first: answer the newest. */
		while (wait_for(HS_MSG_HELLO, &later, plain, 30) == 0)
			if (!later.hello.external)
				in = later;
		struct hs_msg ack = {.type = HS_MSG_HELLO_ACK,
				     .hello = {.challenge = in.hello.challenge, .profile = 0xff}};
		send_msg(boot, &ack);
		/* An adopted boot is logged at once; a stale answer never is. */
		if (agent_adopted(boot, 3000))
			return;
		stale_answers++;
		printf("handshake: the answer was stale, again\n");
	}
	die("the agent never adopted the boot");
}

static void send_bad(void)
{
	uint8_t boot[16], buf[HS_WIRE_MAX + 100], wrong[HS_KEY_BYTES];
	randombytes_buf(boot, sizeof(boot));
	struct hs_msg m = {.type = HS_MSG_HELLO, .hello = {.challenge = 1, .profile = 0xff}};
	randombytes_buf(wrong, sizeof(wrong));
	send_raw(buf, (size_t)seal(wrong, boot, as_id, &m, buf));
	printf("sent: wrong key\n");
	int n = seal(key, boot, as_id, &m, buf);
	randombytes_buf(buf + HS_WIRE_HDR, (size_t)n - HS_WIRE_HDR);
	send_raw(buf, (size_t)n);
	printf("sent: forged ciphertext\n");
	send_raw(buf, 20);
	printf("sent: truncated\n");
	memset(buf, 0, sizeof(buf));
	send_raw(buf, HS_WIRE_MAX + 50);
	printf("sent: oversize\n");
	n = seal(key, boot, as_id, &m, buf);
	buf[4] = 9;
	send_raw(buf, (size_t)n);
	printf("sent: unknown version\n");
	send_raw(buf, (size_t)seal(key, boot, 77, &m, buf));
	printf("sent: unknown sender\n");
}

int main(int argc, char **argv)
{
	if (argc != 7 || sodium_init() < 0)
		die("usage: hs_inject KEYFILE BIND_IP:PORT TARGET_IP:PORT TARGET_ID AS_ID "
		    "AGENT_LOG");
	agent_log = argv[6];
	char *text = NULL;
	size_t len = 0;
	struct cfg_addr bind_addr;
	if (read_full_file(argv[1], 4096, &text, &len) < 0 ||
	    hs_key_parse((const uint8_t *)text, len, key) < 0)
		die("cannot read the key");
	free(text);
	uint8_t derived[HS_KEY_BYTES];
	hs_key_derive(key, "rig", derived); /* the rig's cluster name */
	memcpy(key, derived, sizeof(key));
	if (cfg_addr_parse(argv[2], 7460, &bind_addr) < 0 ||
	    cfg_addr_parse(argv[3], 7460, &target) < 0)
		die("bad address");
	target_id = (uint16_t)atoi(argv[4]);
	as_id = (uint16_t)atoi(argv[5]);
	fd = socket(bind_addr.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&bind_addr.ss, bind_addr.len) < 0)
		die("cannot bind");

	send_bad();

	uint8_t boot_a[16], boot_b[16], boot_c[16];
	randombytes_buf(boot_a, 16);
	randombytes_buf(boot_b, 16);
	randombytes_buf(boot_c, 16);
	handshake(boot_a);
	printf("handshake: boot A adopted\n");
	uint8_t hb[HS_WIRE_MAX];
	struct hs_msg m = {.type = HS_MSG_HEARTBEAT, .hb = {.seq = 1, .profile = 0xff}};
	int n = seal(key, boot_a, as_id, &m, hb);
	send_raw(hb, (size_t)n);
	send_raw(hb, (size_t)n);
	printf("sent: a heartbeat, then the same datagram again (replay)\n");
	handshake(boot_b);
	printf("handshake: boot B adopted, A replaced\n");
	send_msg(boot_a, &m);
	printf("sent: heartbeat from the replaced boot A\n");
	send_msg(boot_c, &m);
	printf("sent: heartbeat from boot C, never proven fresh\n");
	send_msg(boot_b, &m);
	printf("sent: a good heartbeat from boot B\n");
	printf("stale answers: %d\n", stale_answers);
	sodium_memzero(key, sizeof(key));
	close(fd);
	return 0;
}
