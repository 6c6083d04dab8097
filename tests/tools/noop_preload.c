/*
 * noop_preload.c - a shared object that does nothing, preloaded by the
 * ebbrun tests in place of libebbmalloc.so: they check how ebbrun finds
 * and sets the library, not the allocator, so they must not depend on it.
 */
int ebb_tools_noop_preload_marker(void);

int ebb_tools_noop_preload_marker(void)
{
	return 1;
}
