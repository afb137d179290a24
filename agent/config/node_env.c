#include "node_env.h"

#include "log.h"

static const char *const stage_str[_NODE_STAGE_MAX] = {
    [NODE_STAGE_EARLY] = "early",	[NODE_STAGE_IDENTITY] = "identity",
    [NODE_STAGE_DISKS] = "disks",	[NODE_STAGE_RAID] = "raid",
    [NODE_STAGE_STORAGE] = "storage",	[NODE_STAGE_HANDSHAKE] = "handshake",
    [NODE_STAGE_DECISION] = "decision", [NODE_STAGE_ELECTION] = "election",
    [NODE_STAGE_READY] = "ready",
};

const char *node_stage_to_str(enum node_stage s)
{
	return s < _NODE_STAGE_MAX ? stage_str[s] : NULL;
}

void node_env_set_stage(struct node_env *e, enum node_stage s)
{
	e->stage = s;
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "stage", node_stage_to_str(s));
	if (e->cfg && e->self >= 0)
		event_add(&ev, "node", e->cfg->nodes[e->self].name);
	event_emit(&ev);
}
