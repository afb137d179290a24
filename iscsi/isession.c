/* See isession.h. */
#include "isession.h"

#include "util.h"

#include <stdlib.h>
#include <sys/socket.h>

struct iscsi_context *isession_context(const struct isession_opts *o)
{
	struct iscsi_context *ctx = iscsi_create_context(o->initiator);
	if (!ctx)
		return NULL;
	iscsi_set_targetname(ctx, o->target);
	iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE);
	iscsi_set_noautoreconnect(ctx, 1);
	if (o->chap_user && o->chap_secret)
		iscsi_set_initiator_username_pwd(ctx, o->chap_user, o->chap_secret);
	/* libiscsi's own bounds on the login, so that it calls back (and frees what it holds
	 * for the connect) soon after the owner gives up. */
	iscsi_set_timeout(ctx, (int)((o->login_timeout_us + USEC_PER_SEC - 1) / USEC_PER_SEC));
	iscsi_set_tcp_syncnt(ctx, 1);
	return ctx;
}

void isession_destroy(struct iscsi_context *ctx)
{
	int fd = iscsi_get_fd(ctx);
	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){.l_onoff = 1},
				 sizeof(struct linger));
	iscsi_destroy_context(ctx); /* may call back with CANCELLED */
}

void isession_park_init(struct isession_park *p, struct loop *l)
{
	*p = (struct isession_park){.loop = l};
}

void isession_unpark(struct isession_park *p)
{
	if (!p->ctx)
		return;
	p->w = watch_remove(p->w);
	isession_destroy(p->ctx);
	p->ctx = NULL;
	free(p->cb_data);
	p->cb_data = NULL;
}

static void watch_events(struct isession_park *p)
{
	(void)watch_set_fd(p->w, iscsi_get_fd(p->ctx), (uint32_t)iscsi_which_events(p->ctx));
}

static void on_parked_fd(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct isession_park *p = ud;
	if (p->ctx && !p->done && iscsi_service(p->ctx, (int)revents) < 0)
		p->done = true;
	if (p->done)
		p->w = watch_remove(p->w); /* destroyed at the next service, outside libiscsi */
	else
		watch_events(p);
}

void isession_park(struct isession_park *p, struct iscsi_context *ctx, void *cb_data, uint64_t now)
{
	isession_unpark(p); /* an older one still waiting: its task is lost, rarely */
	p->ctx = ctx;
	p->cb_data = cb_data;
	p->done = false;
	p->until = now + ISESSION_PARK_MAX_US;
	p->serviced = now;
	int fd = iscsi_get_fd(ctx);
	if (fd >= 0)
		p->w = watch_add(p->loop, fd, (uint32_t)iscsi_which_events(ctx), on_parked_fd, p,
				 NULL);
	if (!p->w)
		isession_unpark(p);
}

void isession_park_called_back(struct isession_park *p)
{
	p->done = true;
}

void isession_park_service(struct isession_park *p, uint64_t now)
{
	if (!p->ctx)
		return;
	/* libiscsi checks its login timeout in iscsi_service: once a second is enough. */
	if (!p->done && now < p->until && now >= p->serviced + USEC_PER_SEC) {
		p->serviced = now;
		if (iscsi_service(p->ctx, 0) < 0)
			p->done = true;
		else if (p->w)
			watch_events(p);
	}
	if (p->done || now >= p->until)
		isession_unpark(p);
}
