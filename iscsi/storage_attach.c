/* The storage attached to the running node: its console command `paths`, one health
 * component per iSCSI path (health_paths.h) and one per NBD export (health_export.h). */
#include "storage.h"

#include "health_export.h"
#include "health_paths.h"
#include "log.h"
#include "mpath.h"
#include "node_env.h"

#include <stdlib.h>

struct storage_attached {
	struct health_paths *paths;
	struct health_export *exports;
};

int storage_attach(struct storage *s, const struct node_env *env, struct storage_attached **ret)
{
	static const size_t none = 0;
	*ret = NULL;
	if (!s) /* `paths` still answers: this node reaches no storage */
		return env->console ? mpath_console_register(env->console, NULL, &none) : 0;
	struct storage_attached *at = calloc(1, sizeof(*at));
	if (!at)
		return -ENOMEM;
	int r;
	if (env->console && (r = storage_console_register(s, env->console)) < 0)
		log_warn_errno(r, "storage: console commands not registered, ignoring");
	uint64_t every = env->cfg->timeouts.path_check_interval;
	if (env->health) {
		r = health_paths_register(env->health, s, every, &at->paths);
		if (r < 0)
			log_warn_errno(r, "path health checks not registered, ignoring");
		r = health_export_register(env->health, s, every, &at->exports);
		if (r < 0)
			log_warn_errno(r, "export health checks not registered, ignoring");
	}
	*ret = at;
	return 0;
}

struct storage_attached *storage_detach(struct storage_attached *at)
{
	if (at) {
		health_paths_free(at->paths);
		health_export_free(at->exports);
		free(at);
	}
	return NULL;
}
