/* Addresses, prefixes and sizes as cluster.conf writes them. */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- addresses ---- */

int cfg_addr_parse(const char *s, uint16_t default_port, struct cfg_addr *ret)
{
	char host[64];
	const char *port = NULL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* bare IPv6 without port */
		size_t n = colon ? (size_t)(colon - s) : strlen(s);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		if (colon)
			port = colon + 1;
	}
	long p = default_port;
	if (port && parse_int(port, 1, 65535, &p) < 0)
		return -EINVAL;
	struct cfg_addr a = {0};
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		a.len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		a.len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*ret = a;
	return 0;
}

void cfg_addr_format(const struct cfg_addr *a, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in4->sin_port));
	} else if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, n, "none");
	}
}

bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

int cfg_prefix_parse(const char *s, bool need_len, struct cfg_prefix *ret)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n >= sizeof(host) || (need_len && !slash) || (!need_len && slash))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	struct cfg_prefix p = {0};
	long max;
	if (inet_pton(AF_INET, host, p.addr) == 1) {
		p.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, p.addr) == 1) {
		p.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	long len = max;
	if (slash && parse_int(slash + 1, 0, max, &len) < 0)
		return -EINVAL;
	p.len = (uint8_t)len;
	*ret = p;
	return 0;
}

void cfg_prefix_format(const struct cfg_prefix *p, bool with_len, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	inet_ntop(p->family, p->addr, host, sizeof(host));
	if (with_len)
		snprintf(out, n, "%s/%u", host, p->len);
	else
		snprintf(out, n, "%s", host);
}

uint64_t cfg_size_resolve(const struct cfg_size *s, uint64_t disk_bytes)
{
	if (s->pct)
		return disk_bytes / 100 * s->pct;
	return s->bytes;
}
