/* `key install` and the stored cluster key (key_install.h). */
#include "key_install.h"

#include "config_store.h"
#include "hs.h"
#include "key_store.h"
#include "log.h"
#include "serial.h"

#include <sodium.h>
#include <string.h>

_Static_assert(CFG_KEY_ID_BYTES == HS_KEY_ID_BYTES, "key id sizes");
_Static_assert(KEY_STORE_ID_BYTES == HS_KEY_ID_BYTES, "key id sizes");
_Static_assert(KEY_STORE_KEY_BYTES == HS_KEY_BYTES, "key sizes");

/* The one wait of this process (there is one agent per process). */
static struct {
	struct agent *a;
	agent_key_cont_fn cont;
	bool waiting;
} kw;

static void id_hex(const uint8_t *id, char out[2 * HS_KEY_ID_BYTES + 1])
{
	sodium_bin2hex(out, 2 * HS_KEY_ID_BYTES + 1, id, HS_KEY_ID_BYTES);
}

/* Whether key has the configuration's key id. */
static bool key_has_cfg_id(const struct cfg *c, const uint8_t *key)
{
	uint8_t id[HS_KEY_ID_BYTES];
	hs_key_id(key, id);
	return c->has_key_id && !sodium_memcmp(id, c->key_id, HS_KEY_ID_BYTES);
}

/* The key stored on cmpt-state with key_id: 0, or -ENOKEY. */
static int stored_key(struct agent *a, uint8_t *key)
{
	const struct cfg *c = a->env.cfg;
	int n;
	const struct journal_dev *d = config_lkg_devs(a->lkg, &n);
	char want[2 * HS_KEY_ID_BYTES + 1];
	id_hex(c->key_id, want);
	int r = n > 0 ? key_store_load(d, n, c->key_id, key, NULL) : -ENOENT;
	if (r == -EKEYREJECTED)
		log_warn(
		    "the cluster key stored on cmpt-state is not key %s (cluster.conf's key_id)",
		    want);
	if (r == 0 && !key_has_cfg_id(c, key)) {
		log_warn("the cluster key stored on cmpt-state does not have its recorded id, "
			 "ignoring it");
		r = -EBADMSG;
	}
	if (r < 0)
		return -ENOKEY;
	struct event ev; /* an event: the serial console shows it */
	event_begin(&ev, "key");
	event_add(&ev, "action", "load");
	event_add(&ev, "id", want);
	event_add(&ev, "from", "cmpt-state");
	event_emit(&ev);
	return 0;
}

int agent_key_get(struct agent *a, uint8_t **ret_key)
{
	const struct cfg *c = a->env.cfg;
	if (hs_key_file_exists(c->key_file) || !c->has_key_id) {
		int r = hs_key_load(c->key_file, c->name, ret_key);
		if (r == -ENOENT && !c->has_key_id)
			log_error(
			    "no cluster key: set [cluster] key_id in cluster.conf to have the "
			    "node wait for it on the serial console ('key install')");
		return r;
	}
	uint8_t *k = sodium_malloc(HS_KEY_BYTES);
	if (!k)
		return -ENOMEM;
	int r = stored_key(a, k);
	if (r < 0) {
		sodium_free(k);
		return r;
	}
	*ret_key = k;
	return 0;
}

/* Stores the verified key on every cmpt-state; the message for the operator into msg. */
static void key_keep(struct agent *a, const uint8_t *key, struct strbuf *msg)
{
	int n, ok = 0;
	const struct journal_dev *d = config_lkg_devs(a->lkg, &n);
	int r = n > 0 ? key_store_save(d, n, key, a->env.cfg->key_id, &ok) : -ENODEV;
	struct event ev;
	event_begin(&ev, "key");
	event_add(&ev, "action", "install");
	char id[2 * HS_KEY_ID_BYTES + 1];
	id_hex(a->env.cfg->key_id, id);
	event_add(&ev, "id", id);
	event_add_u64(&ev, "stored", (uint64_t)ok);
	event_emit(&ev);
	if (ok == 0)
		sb_printf(msg,
			  "key %s accepted, but there is no cmpt-state to keep it on: it is "
			  "used for this boot only\n",
			  id);
	else
		sb_printf(msg,
			  "key %s accepted and stored on %d cmpt-state%s%s; continuing the "
			  "boot\n",
			  id, ok, ok == 1 ? "" : "s",
			  r < 0 ? " (not on every one: see the log)" : "");
}

static void on_key_typed(struct console_req *req, const char *secret, void *ud)
{
	struct agent *a = kw.a;
	uint8_t *key = sodium_malloc(HS_KEY_BYTES);
	if (!secret || !key || !kw.waiting) {
		console_req_error(req, !secret ? "key install cancelled" : "cannot take the key");
	} else if (hs_key_parse_typed(secret, key) < 0) {
		console_req_error(req, "not a cluster key (64 hex characters, or the base64 of 32 "
				       "bytes); nothing stored");
	} else if (!key_has_cfg_id(a->env.cfg, key)) {
		uint8_t id[HS_KEY_ID_BYTES];
		char got[2 * HS_KEY_ID_BYTES + 1], want[2 * HS_KEY_ID_BYTES + 1];
		hs_key_id(key, id);
		id_hex(id, got);
		id_hex(a->env.cfg->key_id, want);
		log_warn("key install: a key with id %s was refused (cluster.conf wants %s)", got,
			 want);
		console_req_error(req,
				  "wrong key: its id is %s, cluster.conf's key_id is %s; "
				  "nothing stored",
				  got, want);
	} else {
		key_keep(a, key, &req->out);
		kw.waiting = false;
		console_req_done(req);
		int r = kw.cont(a, TAKE_PTR(key)); /* frees the key */
		if (r < 0) {
			log_error_errno(r, "the boot cannot continue after the key install");
			loop_quit(a->env.loop, 1);
		}
		return;
	}
	if (key)
		sodium_free(key);
	console_req_done(req);
}

static int cmd_key(struct console_req *req, void *ud)
{
	if (req->argc != 2 || strcmp(req->argv[1], "install")) {
		console_req_error(req, "usage: key install");
		return -EINVAL;
	}
	if (!req->serial) {
		console_req_error(req, "the cluster key is typed on the serial console only");
		return -EPERM;
	}
	if (!kw.waiting) {
		console_req_error(req, "this node has its cluster key already");
		return -EALREADY;
	}
	int r = serial_ask_secret(req, "cluster key (not echoed): ", on_key_typed, NULL);
	if (r < 0) {
		console_req_error(req, "cannot ask for the key here");
		return r;
	}
	return CONSOLE_ASYNC;
}

void agent_key_register(struct agent *a)
{
	kw.a = a;
	console_register(a->env.console, "key", "install",
			 "type the cluster key on the serial console when the node waits for it",
			 cmd_key, NULL);
}

int agent_key_wait(struct agent *a, agent_key_cont_fn cont)
{
	kw.a = a;
	kw.cont = cont;
	kw.waiting = true;
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "stage", "handshake");
	event_add(&ev, "waiting", "cluster key: type 'key install' on the serial console");
	event_emit(&ev);
	return 0;
}
