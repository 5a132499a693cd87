/*
 * proctree: a process's descendants, through /proc (Linux), and killing
 * them.  Internal, never exported, and depending on nothing but libc, so
 * that the command compiles its own copy of it (as it does jsonw.c): the
 * executor's end (executor.c), a timed-out executor (exec_proc.c), the
 * command's end of a task (src/cli/process.c) and the liveness checks of
 * gpudispatch status and the results lock all use these.
 */
#ifndef GD_PROCTREE_H
#define GD_PROCTREE_H

#include <stddef.h>
#include <sys/types.h>

/* The pids of root's descendants (not root), breadth first through
 * /proc/PID/task/TID/children.  \return how many (at most max). */
size_t gd__descendants(pid_t root, pid_t *out, size_t max);

/* \return 1 when pid is a process that is more than a zombie (a zombie
 * runs nothing and writes nothing any more), else 0. */
int gd__proc_alive(pid_t pid);

/* SIGKILL every descendant of root (not root itself), over and over until
 * none is left alive but zombies.  \return how many signals went out. */
int gd__kill_descendants(pid_t root);

#endif
