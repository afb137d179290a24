#include "proctitle.h"

#include <errno.h>
#include <stddef.h>

static char *argv0;

void proctitle_init(int argc, char **argv)
{
	argv0 = argc > 0 && argv ? argv[0] : NULL;
}

int proctitle_mark_root_storage(void)
{
	if (!argv0 || !argv0[0])
		return -ENOENT;
	argv0[0] = '@';
	return 0;
}
