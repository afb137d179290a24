/* The NBD wire protocol, server side, as pure functions over byte buffers: the fixed
 * newstyle handshake (NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST,
 * NBD_OPT_ABORT) and the transmission requests and simple replies. Bytes come from an
 * untrusted peer: every length is checked (tests/fuzz/fuzz_nbd.c). */
#pragma once

#include "util.h"

#include <stdbool.h>
#include <stdint.h>

#define NBDX_REQ_HDR 28
#define NBDX_REPLY_HDR 16
#define NBDX_MAX_PAYLOAD (32U << 20)
#define NBDX_MAX_OPTION 4096

/* Transmission flags (NBD_FLAG_*). */
#define NBDX_FLAG_HAS_FLAGS (1U << 0)
#define NBDX_FLAG_SEND_FLUSH (1U << 2)
#define NBDX_FLAG_SEND_TRIM (1U << 5)
#define NBDX_FLAG_CAN_MULTI_CONN (1U << 8)

enum nbdx_cmd {
	NBDX_CMD_READ = 0,
	NBDX_CMD_WRITE = 1,
	NBDX_CMD_DISC = 2,
	NBDX_CMD_FLUSH = 3,
	NBDX_CMD_TRIM = 4
};

struct nbdx_export_info {
	const char *name;
	uint64_t size;
	uint16_t flags; /* transmission flags */
	uint32_t min_block, pref_block, max_block;
};

enum nbdx_hs_state {
	NBDX_HS_CLIENT_FLAGS,
	NBDX_HS_OPTIONS,
	NBDX_HS_DONE,
	NBDX_HS_ABORT,
	_NBDX_HS_MAX
};

struct nbdx_hs {
	enum nbdx_hs_state state;
	bool no_zeroes;
	const struct nbdx_export_info *exp;
};

/* Starts a handshake: appends the server greeting to `out`. */
void nbdx_hs_init(struct nbdx_hs *hs, const struct nbdx_export_info *exp, struct strbuf *out);
/* Consumes at most one client message from `in`, appends the replies to `out`. Returns the
 * bytes consumed (> 0), 0 when more bytes are needed, -EPROTO when the client broke the
 * protocol (the connection is closed). hs->state says when transmission begins (DONE) or
 * the client gave up (ABORT). */
int nbdx_hs_input(struct nbdx_hs *hs, const uint8_t *in, size_t len, struct strbuf *out);

struct nbdx_req {
	uint16_t flags, type;
	uint64_t handle, offset;
	uint32_t len;
};

/* Parses one request header from `in`. Returns the whole message length (28, plus the
 * payload of a WRITE) once the header is there, 0 when more bytes are needed, -EPROTO on
 * a bad magic or a payload beyond NBDX_MAX_PAYLOAD. */
int nbdx_req_parse(const uint8_t *in, size_t len, struct nbdx_req *ret);
/* 0 when the request is acceptable for this export, else the errno to answer with
 * (EINVAL unknown type or beyond the end or unaligned, EOPNOTSUPP trim not offered). */
int nbdx_req_check(const struct nbdx_req *r, const struct nbdx_export_info *exp);
void nbdx_reply_header(uint8_t out[NBDX_REPLY_HDR], uint32_t error, uint64_t handle);
/* The NBD error number for an errno (EIO, EINVAL, ENOSPC, EOPNOTSUPP, ...). */
uint32_t nbdx_errno_to_wire(int err);
