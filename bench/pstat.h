/* pstat.h - CPU time and memory of a process, from /proc (Linux).
 *
 * Used by the load generator to charge server CPU to messages: read before and after
 * a measurement window, subtract. Blocking file reads of a few hundred bytes; call
 * outside hot paths.
 */
#ifndef GW_BENCH_PSTAT_H
#define GW_BENCH_PSTAT_H

#include <sys/types.h>

typedef struct pstat {
    double utime; /* seconds of user CPU */
    double stime; /* seconds of system CPU */
    long rss_kb;  /* VmRSS */
    int ok;       /* 1 when read */
} pstat;

/* Reads pid's counters into *s. Returns 0, or -errno (s->ok is then 0). */
int pstat_read(pid_t pid, pstat *s);

/* CPU seconds (user + system) of this process so far, all threads. */
double pstat_self_cpu(void);

#endif
