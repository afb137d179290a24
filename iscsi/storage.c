#include "storage.h"

#include "log.h"
#include "proctitle.h"
#include "util.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <sodium.h>
#include <string.h>

#define NBD_TIMEOUT_MARGIN (30 * USEC_PER_SEC)

static void export_ready(struct mpath *m, void *ud)
{
	struct storage *s = ud;
	size_t i = 0;
	while (i < s->n && s->m[i] != m)
		i++;
	if (i == s->n || s->x[i])
		return;
	int r = nbdx_new(s->loop, m, &s->x[i]);
	if (r < 0) {
		log_error_errno(r, "storage %s: cannot create the NBD export", mpath_name(m));
		return;
	}
	char path[CFG_PATH_MAX + CFG_NAME_MAX];
	if (s->opts.listen)
		nbdx_listen(s->x[i], s->opts.listen);
	else if (s->opts.listen_dir) {
		snprintf(path, sizeof(path), "%s/nbd-%s.sock", s->opts.listen_dir, mpath_name(m));
		nbdx_listen(s->x[i], path);
	}
	if (!s->opts.nbd_device)
		return;
	const struct cfg_timeouts *t = &s->cfg->timeouts;
	uint64_t timeout = t->no_path_timeout + t->path_timeout + NBD_TIMEOUT_MARGIN;
	char dev[32];
	r = nbdx_kernel_attach(s->x[i], s->opts.nbd_device, timeout, dev, sizeof(dev));
	if (r < 0) {
		log_error_errno(r, "storage %s: no kernel block device, ignoring", mpath_name(m));
		return;
	}
	if (s->opts.link_dir)
		nbdx_link(s->opts.link_dir, mpath_name(m), dev);
	mpath_set_dev(m, dev);
}

static bool prefix_contains(const struct cfg_prefix *p, int family, const uint8_t *addr)
{
	if (p->family != family)
		return false;
	unsigned full = p->len / 8, rest = p->len % 8;
	if (memcmp(p->addr, addr, full) != 0)
		return false;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return rest == 0 || (p->addr[full] & mask) == (addr[full] & mask);
}

static bool portal_reachable(const struct cfg_node *n, const char *host, bool pid1)
{
	uint8_t a[16];
	int family = AF_INET;
	if (inet_pton(AF_INET, host, a) != 1) {
		family = AF_INET6;
		if (inet_pton(AF_INET6, host, a) != 1)
			return false;
	}
	if (family == AF_INET ? a[0] == 127 : IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a))
		return true;
	if (!pid1)
		return false;
	for (int i = 0; i < n->n_nets; i++)
		if (!n->nets[i].dhcp && prefix_contains(&n->nets[i].addr, family, a))
			return true;
	for (int i = 0; i < n->n_routes; i++)
		if (prefix_contains(&n->routes[i].dest, family, a))
			return true;
	/* DHCP-configured nodes: the lease decides, the portal is tried. */
	for (int i = 0; i < n->n_nets; i++)
		if (n->nets[i].dhcp)
			return true;
	return false;
}

bool storage_reachable(const struct cfg *cfg, int node, const struct cfg_storage *st, bool pid1)
{
	if (node < 0 || node >= cfg->n_nodes || st->n_portals == 0)
		return false;
	for (int i = 0; i < st->n_portals; i++)
		if (!portal_reachable(&cfg->nodes[node], st->portals[i].host, pid1))
			return false;
	return true;
}

const char *storage_root_name(const struct cfg *cfg, int node, bool pid1, const char *only)
{
	for (int i = 0; i < cfg->n_storage; i++) {
		const struct cfg_storage *st = &cfg->storage[i];
		if (st->root && (!only || !strcmp(only, st->name)) &&
		    storage_reachable(cfg, node, st, pid1))
			return st->name;
	}
	return NULL;
}

int storage_start(struct loop *l, const struct cfg *cfg, const char *node,
		  const struct storage_opts *o, struct storage **ret)
{
	struct storage *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->cfg = cfg;
	s->opts = *o;
	int r = 0;
	for (int i = 0; i < cfg->n_storage && r == 0; i++) {
		if (o->only && strcmp(o->only, cfg->storage[i].name) != 0)
			continue;
		if (cfg->storage[i].n_portals == 0)
			continue;
		if (o->only_reachable &&
		    !storage_reachable(cfg, cfg_find_node(cfg, node), &cfg->storage[i], o->pid1)) {
			log_info("storage %s: not reachable from node %s, skipped",
				 cfg->storage[i].name, node);
			continue;
		}
		r = mpath_new(l, cfg, i, node, &s->m[s->n]);
		if (r < 0)
			break;
		mpath_on_ready(s->m[s->n], export_ready, s);
		mpath_start(s->m[s->n]);
		s->n++;
	}
	if (r < 0 || s->n == 0) {
		storage_free(s);
		if (r == 0 && o->only)
			return log_error_errno(-ENOENT, "no storage '%s' in the configuration",
					       o->only);
		*ret = NULL;
		return r;
	}
	*ret = s;
	return 0;
}

struct storage *storage_free(struct storage *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		nbdx_free(s->x[i]);
		mpath_free(s->m[i]);
	}
	free(s);
	return NULL;
}

int storage_console_register(struct storage *s, struct console *c)
{
	return mpath_console_register(c, s->m, &s->n);
}

/* ---- compartd storage serve ---- */

struct serve_opts {
	const char *config, *node, *console;
	struct storage_opts so;
	struct cfg_override ovr[16];
	size_t n_ovr;
};

static void usage_serve(FILE *f)
{
	fprintf(f, "usage: compartd storage serve --config FILE --node NAME [--storage NAME]\n"
		   "         [--listen PATH] [--nbd-device auto|/dev/nbdN] [--console PATH]\n"
		   "         [--set SECTION.KEY=VALUE]...\n"
		   "Logs in to the storage's portals and exports it over NBD until SIGTERM.\n");
}

static int parse_set(struct serve_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const char *dot = eq ? memrchr(arg, '.', (size_t)(eq - arg)) : NULL;
	if (!dot || dot == arg || o->n_ovr == ARRAY_SIZE(o->ovr))
		return -EINVAL;
	struct cfg_override *v = &o->ovr[o->n_ovr];
	size_t sl = (size_t)(dot - arg), kl = (size_t)(eq - dot - 1);
	if (sl >= sizeof(v->section) || kl >= sizeof(v->key) || strlen(eq + 1) >= sizeof(v->value))
		return -EINVAL;
	memcpy(v->section, arg, sl);
	v->section[sl] = '\0';
	memcpy(v->key, dot + 1, kl);
	v->key[kl] = '\0';
	strcpy(v->value, eq + 1);
	o->n_ovr++;
	return 0;
}

static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"node", required_argument, NULL, 'n'},
					     {"storage", required_argument, NULL, 's'},
					     {"listen", required_argument, NULL, 'l'},
					     {"nbd-device", required_argument, NULL, 'd'},
					     {"console", required_argument, NULL, 'C'},
					     {"set", required_argument, NULL, 'S'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	*o = (struct serve_opts){.so.link_dir = "/dev/compart"};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:n:s:l:d:C:S:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 's':
			o->so.only = optarg;
			break;
		case 'l':
			o->so.listen = optarg;
			break;
		case 'd':
			o->so.nbd_device = optarg;
			break;
		case 'C':
			o->console = optarg;
			break;
		case 'S':
			if (parse_set(o, optarg) < 0) {
				fprintf(stderr, "--set %s: expected SECTION.KEY=VALUE\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage_serve(stdout);
			return 1;
		default:
			usage_serve(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || !o->config || !o->node) {
		usage_serve(stderr);
		return -EINVAL;
	}
	return 0;
}

static void on_quit(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	const char *root = ud;
	if (root && si->ssi_signo == SIGTERM) {
		log_warn(
		    "signal %u ignored: this process serves %s, the root file system's storage",
		    si->ssi_signo, root);
		return;
	}
	log_notice("signal %u: stopping", si->ssi_signo);
	loop_quit(l, 0);
}

static int serve(struct serve_opts *o, struct cfg *cfg)
{
	int r;
	struct loop *l = loop_new();
	struct console *con = NULL;
	struct storage *s = NULL;
	if (!l)
		return -ENOMEM;
	const char *root = storage_root_name(cfg, cfg_find_node(cfg, o->node), false, o->so.only);
	if (root && proctitle_mark_root_storage() == 0)
		log_notice("storage %s holds the root file system: argv[0] starts with '@', "
			   "SIGTERM ignored",
			   root);
	if ((r = loop_add_signal(l, SIGTERM, on_quit, (void *)root)) < 0 ||
	    (r = loop_add_signal(l, SIGINT, on_quit, NULL)) < 0)
		goto out;
	r = storage_start(l, cfg, o->node, &o->so, &s);
	if (r < 0)
		goto out;
	if (!s) {
		r = log_error_errno(-ENOENT, "node %s reaches no storage", o->node);
		goto out;
	}
	if (o->console) {
		if ((r = console_new(l, &con)) < 0 || storage_console_register(s, con) < 0 ||
		    (r = console_listen(con, o->console)) < 0) {
			r = log_error_errno(r < 0 ? r : -ENOMEM, "cannot serve the console on %s",
					    o->console);
			goto out;
		}
	}
	r = loop_run(l);
out:
	storage_free(s);
	console_free(con);
	loop_free(l);
	return r;
}

static int serve_main(int argc, char **argv)
{
	struct serve_opts o;
	int r = parse_serve(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (sodium_init() < 0)
		return 1;
	struct strbuf err;
	sb_init(&err);
	struct cfg *cfg = NULL;
	r = cfg_load(o.config, o.ovr, o.n_ovr, &cfg, &err);
	if (r < 0) {
		fprintf(stderr, "%s%s: configuration refused\n", err.buf ? err.buf : "", o.config);
		sb_free(&err);
		return 1;
	}
	sb_free(&err);
	if (o.so.listen && !o.so.only && cfg->n_storage > 1) {
		fprintf(stderr, "%s has %d storage sections: --listen needs --storage NAME\n",
			o.config, cfg->n_storage);
		cfg_free(cfg);
		return 2;
	}
	if (cfg_find_node(cfg, o.node) < 0) {
		fprintf(stderr, "node %s is not in %s\n", o.node, o.config);
		cfg_free(cfg);
		return 1;
	}
	r = serve(&o, cfg);
	cfg_free(cfg);
	return r < 0 ? 1 : 0;
}

/* `compartd storage detach /dev/nbdN`: what the initramfs does last at shutdown, once the
 * root file system is unmounted, and what tests use to break an export from outside. */
static int detach_main(int argc, char **argv)
{
	long index;
	if (argc != 2 || strncmp(argv[1], "/dev/nbd", 8) != 0 ||
	    parse_int(argv[1] + 8, 0, 65535, &index) < 0) {
		fprintf(stderr,
			"usage: compartd storage detach /dev/nbdN\n"
			"Disconnects the kernel's NBD device (netlink NBD_CMD_DISCONNECT).\n");
		return 2;
	}
	bool connected = false;
	int r = nbdx_kernel_status((int)index, &connected);
	if (r < 0) {
		fprintf(stderr, "%s: cannot ask the kernel: %s\n", argv[1], strerror(-r));
		return 1;
	}
	if (!connected) {
		fprintf(stderr, "%s is not connected\n", argv[1]);
		return 1;
	}
	nbdx_kernel_disconnect((int)index, -1);
	printf("%s disconnected\n", argv[1]);
	return 0;
}

int storage_cli_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "detach"))
		return detach_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: compartd storage serve --help | storage detach /dev/nbdN\n");
	return 2;
}
