#include "nbdx_proto.h"

#include <string.h>

#define NBD_MAGIC 0x4e42444d41474943ULL	   /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454f5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC 0x25609513U
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698U

#define HS_FIXED_NEWSTYLE 1U
#define HS_NO_ZEROES 2U

#define OPT_EXPORT_NAME 1
#define OPT_ABORT 2
#define OPT_LIST 3
#define OPT_INFO 6
#define OPT_GO 7

#define REP_ACK 1U
#define REP_SERVER 2U
#define REP_INFO 3U
#define REP_ERR_UNSUP 0x80000001U
#define REP_ERR_INVALID 0x80000003U
#define REP_ERR_UNKNOWN 0x80000006U

#define INFO_EXPORT 0
#define INFO_BLOCK_SIZE 3

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(struct strbuf *o, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	sb_put(o, b, 2);
}

static void put32(struct strbuf *o, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	sb_put(o, b, 4);
}

static void put64(struct strbuf *o, uint64_t v)
{
	put32(o, (uint32_t)(v >> 32));
	put32(o, (uint32_t)v);
}

void nbdx_hs_init(struct nbdx_hs *hs, const struct nbdx_export_info *exp, struct strbuf *out)
{
	*hs = (struct nbdx_hs){.state = NBDX_HS_CLIENT_FLAGS, .exp = exp};
	put64(out, NBD_MAGIC);
	put64(out, NBD_IHAVEOPT);
	put16(out, HS_FIXED_NEWSTYLE | HS_NO_ZEROES);
}

static void opt_reply(struct strbuf *o, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	put64(o, NBD_REP_MAGIC);
	put32(o, opt);
	put32(o, type);
	put32(o, len);
	if (len)
		sb_put(o, data, len);
}

static bool name_ok(const struct nbdx_hs *hs, const uint8_t *name, uint32_t n)
{
	const char *exp = hs->exp->name ? hs->exp->name : "";
	return n == 0 || (n == strlen(exp) && memcmp(name, exp, n) == 0);
}

static void info_replies(struct nbdx_hs *hs, uint32_t opt, struct strbuf *o)
{
	const struct nbdx_export_info *e = hs->exp;
	uint8_t b[14];
	b[0] = 0;
	b[1] = INFO_EXPORT;
	for (int i = 0; i < 8; i++)
		b[2 + i] = (uint8_t)(e->size >> (56 - 8 * i));
	b[10] = (uint8_t)(e->flags >> 8);
	b[11] = (uint8_t)e->flags;
	opt_reply(o, opt, REP_INFO, b, 12);
	uint32_t v[3] = {e->min_block, e->pref_block, e->max_block};
	b[0] = 0;
	b[1] = INFO_BLOCK_SIZE;
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 4; i++)
			b[2 + 4 * k + i] = (uint8_t)(v[k] >> (24 - 8 * i));
	opt_reply(o, opt, REP_INFO, b, 14);
	opt_reply(o, opt, REP_ACK, NULL, 0);
}

/* NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, count × u16 requests. */
static void opt_go(struct nbdx_hs *hs, uint32_t opt, const uint8_t *d, uint32_t len,
		   struct strbuf *o)
{
	if (len < 6 || get32(d) > len - 6) {
		opt_reply(o, opt, REP_ERR_INVALID, NULL, 0);
		return;
	}
	uint32_t n = get32(d);
	uint32_t n_info = get16(d + 4 + n);
	if ((uint64_t)6 + n + 2ULL * n_info != len) {
		opt_reply(o, opt, REP_ERR_INVALID, NULL, 0);
		return;
	}
	if (!name_ok(hs, d + 4, n)) {
		opt_reply(o, opt, REP_ERR_UNKNOWN, NULL, 0);
		return;
	}
	info_replies(hs, opt, o);
	if (opt == OPT_GO)
		hs->state = NBDX_HS_DONE;
}

static int opt_export_name(struct nbdx_hs *hs, const uint8_t *d, uint32_t len, struct strbuf *o)
{
	/* No error reply exists for this option: an unknown name closes the connection. */
	if (!name_ok(hs, d, len))
		return -EPROTO;
	put64(o, hs->exp->size);
	put16(o, hs->exp->flags);
	if (!hs->no_zeroes) {
		static const uint8_t zeroes[124];
		sb_put(o, zeroes, sizeof(zeroes));
	}
	hs->state = NBDX_HS_DONE;
	return 0;
}

static int option(struct nbdx_hs *hs, uint32_t opt, const uint8_t *d, uint32_t len,
		  struct strbuf *o)
{
	switch (opt) {
	case OPT_EXPORT_NAME:
		return opt_export_name(hs, d, len, o);
	case OPT_ABORT:
		opt_reply(o, opt, REP_ACK, NULL, 0);
		hs->state = NBDX_HS_ABORT;
		return 0;
	case OPT_LIST: {
		if (len) {
			opt_reply(o, opt, REP_ERR_INVALID, NULL, 0);
			return 0;
		}
		const char *name = hs->exp->name ? hs->exp->name : "";
		uint32_t n = (uint32_t)strlen(name);
		put64(o, NBD_REP_MAGIC);
		put32(o, opt);
		put32(o, REP_SERVER);
		put32(o, 4 + n);
		put32(o, n);
		sb_put(o, name, n);
		opt_reply(o, opt, REP_ACK, NULL, 0);
		return 0;
	}
	case OPT_INFO:
	case OPT_GO:
		opt_go(hs, opt, d, len, o);
		return 0;
	default:
		opt_reply(o, opt, REP_ERR_UNSUP, NULL, 0);
		return 0;
	}
}

int nbdx_hs_input(struct nbdx_hs *hs, const uint8_t *in, size_t len, struct strbuf *out)
{
	switch (hs->state) {
	case NBDX_HS_CLIENT_FLAGS: {
		if (len < 4)
			return 0;
		uint32_t f = get32(in);
		if (!(f & HS_FIXED_NEWSTYLE) || (f & ~(HS_FIXED_NEWSTYLE | HS_NO_ZEROES)))
			return -EPROTO;
		hs->no_zeroes = f & HS_NO_ZEROES;
		hs->state = NBDX_HS_OPTIONS;
		return 4;
	}
	case NBDX_HS_OPTIONS: {
		if (len < 16)
			return 0;
		if (get64(in) != NBD_IHAVEOPT)
			return -EPROTO;
		uint32_t opt = get32(in + 8), olen = get32(in + 12);
		if (olen > NBDX_MAX_OPTION)
			return -EPROTO;
		if (len < 16 + (size_t)olen)
			return 0;
		int r = option(hs, opt, in + 16, olen, out);
		return r < 0 ? r : (int)(16 + olen);
	}
	case NBDX_HS_DONE:
	case NBDX_HS_ABORT:
	case _NBDX_HS_MAX:
		break;
	}
	return -EPROTO;
}

int nbdx_req_parse(const uint8_t *in, size_t len, struct nbdx_req *ret)
{
	if (len < NBDX_REQ_HDR)
		return 0;
	if (get32(in) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	struct nbdx_req r = {
	    .flags = get16(in + 4),
	    .type = get16(in + 6),
	    .handle = get64(in + 8),
	    .offset = get64(in + 16),
	    .len = get32(in + 24),
	};
	size_t total = NBDX_REQ_HDR;
	if (r.type == NBDX_CMD_WRITE) {
		if (r.len > NBDX_MAX_PAYLOAD)
			return -EPROTO;
		total += r.len;
	}
	*ret = r;
	return (int)total;
}

int nbdx_req_check(const struct nbdx_req *r, const struct nbdx_export_info *exp)
{
	switch (r->type) {
	case NBDX_CMD_READ:
	case NBDX_CMD_WRITE:
	case NBDX_CMD_TRIM:
		break;
	case NBDX_CMD_FLUSH:
	case NBDX_CMD_DISC:
		return 0;
	default:
		return EINVAL;
	}
	if (r->type == NBDX_CMD_TRIM && !(exp->flags & NBDX_FLAG_SEND_TRIM))
		return EOPNOTSUPP;
	if (r->type == NBDX_CMD_READ && r->len > NBDX_MAX_PAYLOAD)
		return EINVAL;
	if (r->offset > exp->size || r->len > exp->size - r->offset)
		return ENOSPC;
	uint32_t b = exp->min_block ? exp->min_block : 1;
	if (r->offset % b || r->len % b)
		return EINVAL;
	return 0;
}

void nbdx_reply_header(uint8_t out[NBDX_REPLY_HDR], uint32_t error, uint64_t handle)
{
	uint32_t v[2] = {NBD_SIMPLE_REPLY_MAGIC, error};
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 4; i++)
			out[4 * k + i] = (uint8_t)(v[k] >> (24 - 8 * i));
	/* The handle is opaque: it goes back in the byte order it came in. */
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(handle >> (56 - 8 * i));
}

uint32_t nbdx_errno_to_wire(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return 0;
	case EPERM:
	case EIO:
	case ENOMEM:
	case EINVAL:
	case ENOSPC:
	case EOVERFLOW:
	case ESHUTDOWN:
		return (uint32_t)err;
	case EOPNOTSUPP:
		return 95; /* NBD_ENOTSUP */
	default:
		return EIO;
	}
}
