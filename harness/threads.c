/*
 * threads.c: the tool's OpenMP wait policy on a machine that is also doing other work.
 *
 * libgomp's threads spin at every barrier for 300,000 rounds before they sleep (its default
 * when OMP_WAIT_POLICY is unset). A training step has hundreds of short parallel regions; when
 * another process holds a core, the spinning thread burns the time slice that the thread it
 * waits for needs, and training collapses (issue 16: 5-17x slower at 2 threads than at 1,
 * load 5; bench/threads.sh shows it). Unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT,
 * the tool runs with GOMP_SPINCOUNT=LCG_SPINCOUNT (1000, libgomp's own count when it knows
 * the CPUs are oversubscribed): tens of microseconds of spin, enough for back-to-back regions,
 * then sleep. bench/threads.sh on the 2-core machine, beside `yes` (load 6): 33k tok/s at
 * 2 threads against 3k with the default spin, 16k with 10000 and 25k at 1 thread.
 *
 * libgomp reads its environment once, in its own constructor, before main and before any
 * constructor of the program (and .preinit_array runs before libc has its environment), so
 * lcg_threads_init sets the variable and re-executes the program through /proc/self/exe: same
 * process, same arguments, the environment plus that one variable. It does not re-execute
 * under valgrind (whose default would run the new image unchecked), in fuzz builds, or when
 * /proc/self/exe cannot be executed (it then returns and libgomp's defaults stand).
 *
 * What it does not do: change any result (every column but wall_* is the same whatever the
 * threads do), or override a thread count or wait policy the user gave.
 */
#define _POSIX_C_SOURCE 200809L
#include "threads.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lcg_threads_init(char **argv) {
#ifndef LCG_FUZZ
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return; /* valgrind */
    if (setenv("GOMP_SPINCOUNT", LCG_SPINCOUNT, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); /* not re-executed: say nothing that is not in force */
#else
    (void)argv;
#endif
}
