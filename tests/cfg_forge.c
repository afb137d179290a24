/* Serves forged configuration transfers to a running agent, for
 * tests/integration/38-config-announce.sh.
 *
 *   cfg_forge KEYFILE BIND_IP:PORT TARGET_IP:PORT TARGET_ID AS_ID AGENT_LOG
 *
 * Poses as node AS_ID (binding its handshake address) with the cluster key, so every
 * datagram is authentic: the forgery is in the content. Three rounds, each a real
 * handshake whose HELLO_ACK announces a newer version (and a hash) the agent then asks
 * for: (1) bytes whose hash is not the announced one, (2) a total above 1 MiB, (3) the
 * first chunk only, then silence (a truncated transfer). The agent must refuse the first
 * two (`reason=hash-mismatch`, `reason=too-large`) and give up on the third
 * (`action=fetch-failed reason=no-answer`); it keeps running its own file. */
#include "cfgsync.h"
#include "hs_wire.h"

#include "config.h"
#include "util.h"

#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd = -1;
static struct cfg_addr target;
static uint8_t key[HS_KEY_BYTES];
static uint16_t target_id, as_id;
static uint64_t counter;
static const char *agent_log;

static void die(const char *what)
{
	fprintf(stderr, "cfg_forge: %s\n", what);
	exit(1);
}

static void send_msg(const uint8_t boot[16], struct hs_msg *m)
{
	uint8_t buf[HS_WIRE_MAX];
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION,
				.type = (uint8_t)m->type,
				.sender = as_id,
				.dest = target_id,
				.counter = ++counter};
	memcpy(h.boot_id, boot, 16);
	int n = hs_wire_seal(key, &h, m, buf, sizeof(buf));
	if (n < 0 ||
	    sendto(fd, buf, (size_t)n, 0, (const struct sockaddr *)&target.ss, target.len) < 0)
		die("cannot send");
}

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

static bool log_has(const char *needle, int ms)
{
	for (int waited = 0; waited <= ms; waited += 20) {
		char *text = NULL;
		size_t len = 0;
		bool seen = read_full_file(agent_log, 64 << 20, &text, &len) >= 0 &&
			    strstr(text, needle) != NULL;
		free(text);
		if (seen)
			return true;
		usleep(20 * 1000);
	}
	return false;
}

/* A handshake under a fresh boot whose answer announces (version, hash); repeated until
 * the agent asks for that version (at most 5 times). */
static void announce(uint64_t version, const uint8_t hash[32], uint8_t boot[16],
		     struct cfgsync_get *got)
{
	uint8_t plain[HS_WIRE_MAX];
	randombytes_buf(boot, 16);
	for (int attempt = 0; attempt < 5; attempt++) {
		while (recv(fd, plain, sizeof(plain), MSG_DONTWAIT) >= 0)
			;
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
		while (wait_for(HS_MSG_HELLO, &later, plain, 30) == 0)
			if (!later.hello.external)
				in = later;
		struct hs_msg ack = {.type = HS_MSG_HELLO_ACK,
				     .hello = {.challenge = in.hello.challenge,
					       .profile = 0xff,
					       .config_version = version}};
		memcpy(ack.hello.config_hash, hash, 32);
		send_msg(boot, &ack);
		struct hs_msg q;
		if (wait_for(HS_MSG_CONFIG_GET, &q, plain, 1500) == 0 &&
		    cfgsync_get_decode(q.blob.data, q.blob.len, got) == 0 &&
		    got->version == version)
			return;
		printf("no GET for version %llu yet, again\n", (unsigned long long)version);
	}
	die("the agent never asked for the announced version");
}

static void serve(const uint8_t boot[16], const struct cfgsync_get *g, uint32_t total,
		  const char *bytes, size_t len)
{
	struct cfgsync_data d = {.version = g->version,
				 .total = total,
				 .offset = g->offset,
				 .bytes = (const uint8_t *)bytes,
				 .len = len};
	memcpy(d.hash, g->hash, 32);
	uint8_t b[HS_BLOB_MAX];
	struct hs_msg m = {.type = HS_MSG_CONFIG_DATA};
	m.blob.data = b;
	m.blob.len = cfgsync_data_encode(&d, b);
	send_msg(boot, &m);
}

int main(int argc, char **argv)
{
	if (argc != 7 || sodium_init() < 0)
		die("usage: cfg_forge KEYFILE BIND_IP:PORT TARGET_IP:PORT TARGET_ID AS_ID "
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
	hs_key_derive(key, "rig", derived);
	memcpy(key, derived, sizeof(key));
	if (cfg_addr_parse(argv[2], 7460, &bind_addr) < 0 ||
	    cfg_addr_parse(argv[3], 7460, &target) < 0)
		die("bad address");
	target_id = (uint16_t)atoi(argv[4]);
	as_id = (uint16_t)atoi(argv[5]);
	fd = socket(bind_addr.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&bind_addr.ss, bind_addr.len) < 0)
		die("cannot bind");

	static const char forged[] = "[cluster]\nname = rig\n# not the announced file\n";
	uint8_t boot[16], hash[32];
	struct cfgsync_get g;
	/* 1. Not the announced file. */
	randombytes_buf(hash, sizeof(hash));
	announce(90, hash, boot, &g);
	serve(boot, &g, sizeof(forged) - 1, forged, sizeof(forged) - 1);
	if (!log_has("action=refused version=90 from=b2 reason=hash-mismatch", 3000))
		die("the forged file was not refused");
	printf("forged file: refused\n");
	/* 2. Above 1 MiB. The agent pauses 5 s after a refusal. */
	randombytes_buf(hash, sizeof(hash));
	announce(91, hash, boot, &g);
	serve(boot, &g, CFG_MAX_TEXT + 1, forged, sizeof(forged) - 1);
	if (!log_has("action=refused version=91 from=b2 reason=too-large", 3000))
		die("the oversize transfer was not refused");
	printf("oversize: refused\n");
	/* 3. Truncated: the first chunk of a two-chunk file, then silence. */
	static char big[2 * CFGSYNC_CHUNK];
	memset(big, '#', sizeof(big));
	crypto_generichash(hash, 32, (const uint8_t *)big, sizeof(big), NULL, 0);
	announce(92, hash, boot, &g);
	serve(boot, &g, sizeof(big), big, CFGSYNC_CHUNK);
	if (!log_has("action=fetch-failed version=92 from=b2 reason=no-answer", 5000))
		die("the truncated transfer did not end");
	printf("truncated: given up\n");
	sodium_memzero(key, sizeof(key));
	close(fd);
	return 0;
}
