/* libFuzzer: the election state machine fed arbitrary event sequences (heartbeats and
 * acknowledgements with any epoch, role, sequence and sender; quorum-device answers with
 * any slots and holder; timers at any time). It must never reject the node it is, act on
 * an unknown node, or promote twice without a demote in between. */
#include "elect.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take(const uint8_t **p, const uint8_t *end, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n && *p < end; i++)
		v = v << 8 | *(*p)++;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct elect_params par = {.n_nodes = 4,
				   .self = 0,
				   .side = {0, 0, 1, 1},
				   .rank = {0, 2, 1, 3},
				   .has_qdev = size % 2 == 0,
				   .heartbeat_interval = 200000,
				   .disk_heartbeat_interval = 250000,
				   .lease = 500000,
				   .io_timeout = 1000000,
				   .fence_timeout = size % 3 ? 1000000 : 0};
	struct elect sm;
	struct elect_actions out;
	uint64_t now = 1000000;
	bool promoted = false;

	elect_init(&sm, &par);
	elect_step(&sm, &(struct elect_event){.type = ELECT_EV_START, .eligible = true}, now, &out);
	while (p < end) {
		struct elect_event ev = {0};

		ev.type = (enum elect_event_type)(take(&p, end, 1) % _ELECT_EV_MAX);
		ev.node = (int)(take(&p, end, 1) % 6) - 1;
		ev.seq = take(&p, end, 2);
		ev.epoch = take(&p, end, 1);
		ev.role = (enum elect_role)(take(&p, end, 1) % _ELECT_ROLE_MAX);
		ev.io = (enum elect_io)(take(&p, end, 1) % _ELECT_IO_MAX);
		ev.holder = (int)(take(&p, end, 1) % 7) - 2;
		ev.registered = take(&p, end, 1) & 1;
		ev.eligible = take(&p, end, 1) & 1;
		ev.sent_at = now - take(&p, end, 2);
		for (int i = 0; i < 4; i++)
			ev.slots[i] =
			    (struct elect_slot){.valid = take(&p, end, 1) & 1,
						.seq = take(&p, end, 1),
						.epoch = take(&p, end, 1),
						.role = (enum elect_role)(take(&p, end, 1) % 4)};
		now += take(&p, end, 2) * 100;
		if (elect_step(&sm, &ev, now, &out) < 0)
			continue;
		if (sm.role == ELECT_ROLE_MASTER && sm.p.refuse_master)
			__builtin_trap();
		for (int i = 0; i < out.n; i++) {
			const struct elect_action *a = &out.a[i];

			if (a->type == ELECT_ACT_PROMOTE) {
				if (promoted)
					__builtin_trap();
				promoted = true;
			} else if (a->type == ELECT_ACT_DEMOTE) {
				if (!promoted)
					__builtin_trap();
				promoted = false;
			} else if (a->type == ELECT_ACT_QDEV_RELEASE && sm.hook_pending) {
				__builtin_trap(); /* the token is handed on only after the demote
						     hook */
			} else if ((a->type == ELECT_ACT_SEND_ACK ||
				    a->type == ELECT_ACT_QDEV_PREEMPT) &&
				   (a->node < 0 || a->node >= 4) &&
				   !(a->type == ELECT_ACT_QDEV_PREEMPT &&
				     a->node == ELECT_HOLDER_UNKNOWN)) {
				__builtin_trap();
			}
		}
	}
	return 0;
}
