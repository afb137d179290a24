/* Health components for the iSCSI paths (SPEC §8): one `path:<storage>@<portal>` per
 * portal. The multipath driver already isolates a failing path (it carries no I/O and its
 * commands moved to a healthy path) and logs it in again with backoff; the health ladder
 * reports that, and its restart step asks for the login now instead of after the backoff.
 * A portal that stays away ends as needs-operator and recovers on its own when it returns. */
#include "health_paths.h"

#include "health.h"
#include "mpath.h"
#include "storage.h"

#include <string.h>

struct path_watch {
	struct mpath *m;
	int idx;
	bool went_down; /* seen down at least once: a login under way is no longer the first */
};

static enum mpath_path_state state_of(struct path_watch *w, struct strbuf *detail)
{
	const char *portal, *why;
	enum mpath_path_state s = mpath_path_state(w->m, w->idx, &portal, &why);
	if (s != MPATH_PATH_UP)
		sb_printf(detail, "%s%s%s", mpath_path_state_to_str(s), why && *why ? ": " : "",
			  why ? why : "");
	return s;
}

/* The first login after start is progress, not an alarm; once a path was up, or went down
 * (its first login failed), a login under way means it is away: a new login that the
 * ladder's restart merely started is not a recovery. */
static bool first_login(const struct path_watch *w, enum mpath_path_state s)
{
	return !w->went_down && !mpath_path_ever_up(w->m, w->idx) &&
	       (s == MPATH_PATH_LOGIN || s == MPATH_PATH_PROBE);
}

static int check_reachable(void *ud, struct strbuf *detail)
{
	struct path_watch *w = ud;
	enum mpath_path_state s = state_of(w, detail);
	if (s == MPATH_PATH_DOWN)
		w->went_down = true;
	if (first_login(w, s))
		return 0;
	return s == MPATH_PATH_DOWN || s == MPATH_PATH_LOGIN ? -EHOSTUNREACH : 0;
}

static int check_parses(void *ud, struct strbuf *detail)
{
	/* Logged in, TEST UNIT READY and the identity check still under way. */
	struct path_watch *w = ud;
	enum mpath_path_state s = state_of(w, detail);
	return s == MPATH_PATH_PROBE && !first_login(w, s) ? -EAGAIN : 0;
}

static int check_integrity(void *ud, struct strbuf *detail)
{
	/* The path shows another logical unit than the others (or than the pinned one). */
	return state_of(ud, detail) == MPATH_PATH_REFUSED ? -EXDEV : 0;
}

static int isolate(void *ud, struct strbuf *msg)
{
	sb_puts(msg, "out of the rotation: its commands go to the healthy paths");
	return 0;
}

static int restart(void *ud, struct strbuf *msg)
{
	struct path_watch *w = ud;
	mpath_path_login_now(w->m, w->idx);
	sb_puts(msg, "login requested now");
	return HEALTH_PENDING;
}

static const struct health_component_ops path_ops = {
    .check_reachable = check_reachable,
    .check_parses = check_parses,
    .check_integrity = check_integrity,
    .isolate = isolate,
    .restart = restart,
    .retry_interval_us = 2 * USEC_PER_SEC,
};

struct health_paths {
	struct health *h;
	struct health_component_ops ops; /* the engine keeps a pointer to it */
	int n;
	struct path_watch w[CFG_MAX_STORAGE * MPATH_MAX_PATHS];
	char ids[CFG_MAX_STORAGE * MPATH_MAX_PATHS][HEALTH_NAME_MAX];
};

int health_paths_register(struct health *h, struct storage *s, uint64_t interval_us,
			  struct health_paths **ret)
{
	if (!h || !s)
		return 0;
	struct health_paths *hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	hp->h = h;
	hp->ops = path_ops;
	hp->ops.interval_us = interval_us;
	int r = 0;
	for (size_t i = 0; i < s->n && r >= 0; i++) {
		for (int p = 0; p < mpath_path_count(s->m[i]) && r >= 0; p++) {
			struct path_watch *w = &hp->w[hp->n];
			*w = (struct path_watch){.m = s->m[i], .idx = p};
			const char *portal;
			mpath_path_state(w->m, p, &portal, NULL);
			snprintf(hp->ids[hp->n], HEALTH_NAME_MAX, "%s@%s", mpath_name(s->m[i]),
				 portal);
			r = health_register(h, &hp->ops, w, "path", hp->ids[hp->n], NULL);
			if (r >= 0)
				hp->n++;
		}
	}
	*ret = hp;
	return r < 0 ? r : hp->n;
}

struct health_paths *health_paths_free(struct health_paths *hp)
{
	if (!hp)
		return NULL;
	for (int i = 0; i < hp->n; i++)
		health_unregister(hp->h, "path", hp->ids[i]);
	free(hp);
	return NULL;
}
