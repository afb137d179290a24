/* Health components for the iSCSI paths of the node's storage. */
#pragma once

#include <stdint.h>

struct health;
struct health_paths;
struct storage;

/* Registers one `path:<storage>@<portal>` component per path, checked every interval_us;
 * *ret holds them until health_paths_free(), which unregisters them (call it before the
 * health engine and the storage are freed). Returns how many, or a negative errno. */
int health_paths_register(struct health *h, struct storage *s, uint64_t interval_us,
			  struct health_paths **ret);
struct health_paths *health_paths_free(struct health_paths *hp);
