/* pstat.c - see pstat.h. */
#include "bench/pstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int pstat_read(pid_t pid, pstat *s)
{
    memset(s, 0, sizeof *s);
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and ')': fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -EINVAL;
    p++;
    /* After ')': state is field 3; utime and stime are fields 14 and 15. */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15) {
            st = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 15)
        return -EINVAL;
    double hz = (double)sysconf(_SC_CLK_TCK);
    s->utime = (double)ut / hz;
    s->stime = (double)st / hz;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "VmRSS:", 6) == 0) {
                s->rss_kb = strtol(line + 6, NULL, 10);
                break;
            }
        fclose(f);
    }
    s->ok = 1;
    return 0;
}

double pstat_self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
