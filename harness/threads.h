/*
 * threads.h: the tool's OpenMP wait policy on a machine that is also doing other work
 * (harness/threads.c). Results never depend on it; only speed does.
 */
#ifndef LCG_THREADS_H
#define LCG_THREADS_H

/* the spin count the tool gives libgomp when the user set neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT */
#define LCG_SPINCOUNT "1000"

/* call first in main, with main's argv: when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set,
 * sets GOMP_SPINCOUNT=LCG_SPINCOUNT and re-executes the program (libgomp reads its environment
 * once, before main); returns only when nothing was to be done or the exec failed */
void lcg_threads_init(char **argv);

#endif
