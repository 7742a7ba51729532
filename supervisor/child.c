/* child.c - fork+exec of one child process and the wording of its exit.
 *
 * Why not uv_spawn: a child must get PR_SET_PDEATHSIG=SIGKILL between fork and exec
 * (so it never outlives the master, even after kill -9 of the master), and uv_spawn
 * has no hook there. The master does the fork itself, keeps the child in its process
 * group, and reaps with waitpid(WNOHANG) from a uv_signal_t on SIGCHLD (master.c).
 * Between fork and exec the child only makes async-signal-safe calls on data
 * prepared before the fork.
 */
#include "common/alloc.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *sup_role_name(sup_role r)
{
    static const char *const names[SUP_NROLES] = {"register", "gateway", "businessworker"};
    return (unsigned)r < SUP_NROLES ? names[r] : "?";
}

void sup_signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev != NULL)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "signal %d", sig);
}

void sup_describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        const char *why = code == SUP_CHILD_EXIT_CONFIG   ? " (invalid configuration)"
                          : code == SUP_CHILD_EXIT_MODULE ? " (business module refused)"
                          : code == 127                   ? " (could not be executed)"
                                                          : "";
        snprintf(buf, len, "exited with status %d%s", code, why);
    } else if (WIFSIGNALED(status)) {
        char name[32];
        sup_signal_name(WTERMSIG(status), name, sizeof name);
        snprintf(buf, len, "killed by signal %s%s", name,
                 WCOREDUMP(status) ? " (core dumped)" : "");
    } else {
        snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
    }
}

/* The child's environment: ours without any GW_STATS_FD, plus its own. */
static char **make_env(int stats_fd)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = gw_calloc(n + 2, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    size_t plen = strlen(GW_SHSTATS_ENV);
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], GW_SHSTATS_ENV, plen) == 0 && environ[i][plen] == '='))
            env[k++] = environ[i];
    char *own = gw_malloc(plen + 16);
    if (own == NULL) {
        gw_free(env);
        return NULL;
    }
    snprintf(own, plen + 16, "%s=%d", GW_SHSTATS_ENV, stats_fd);
    env[k] = own;
    return env;
}

static void free_env(char **env)
{
    size_t k = 0;
    while (env[k + 1] != NULL)
        k++;
    gw_free(env[k]); /* ours is the last one */
    gw_free(env);
}

/* Async-signal-safe: write a message and the errno number, then _exit(127). */
static void child_fail(const char *what, const char *path, int err)
{
    char num[16];
    int i = (int)sizeof num;
    num[--i] = '\0';
    num[--i] = '\n';
    unsigned v = (unsigned)err;
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    const char *parts[] = {"gw-master: ", what, " ", path, ": errno ", num + i};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        ssize_t w = write(2, parts[p], strlen(parts[p]));
        (void)w;
    }
    _exit(127);
}

int sup_child_spawn(sup_child *c)
{
    gw_sup *s = c->sup;
    const char *bin = s->bins[c->role];
    char index[16];
    snprintf(index, sizeof index, "%d", c->index);
    char *argv[] = {(char *)bin, "--config", s->cfg.path, "--index", index, NULL};

    gw_shstats_reset(c->stats);
    int stats_fd = gw_shstats_fd(c->stats);
    char **env = make_env(stats_fd);
    if (env == NULL)
        return -ENOMEM;
    int out[2] = {-1, -1};
    if (s->log.path != NULL && pipe2(out, O_CLOEXEC) < 0) {
        int rc = -errno;
        free_env(env);
        return rc;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        if (out[0] >= 0) {
            close(out[0]);
            close(out[1]);
        }
        free_env(env);
        return rc;
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls from here to exec. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL); /* the master ignores it; exec keeps ignored signals */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
            child_fail("prctl(PR_SET_PDEATHSIG) for", bin, errno);
        /* The master may have died before prctl: then nobody would kill us. */
        if (getppid() != parent)
            _exit(126);
        if (s->devnull_fd >= 0)
            dup2(s->devnull_fd, 0);
        if (out[1] >= 0) {
            dup2(out[1], 1);
            dup2(out[1], 2);
        }
        /* The page is close-on-exec like every other master descriptor; keep ours. */
        if (fcntl(stats_fd, F_SETFD, 0) < 0)
            child_fail("cannot pass the stats page to", bin, errno);
        execve(bin, argv, env);
        child_fail("cannot execute", bin, errno);
    }
    free_env(env);
    c->pid = pid;
    c->started_ms = gw_now_ms();
    c->killed = 0;
    if (out[1] >= 0) {
        close(out[1]);
        int rc = sup_log_add_pipe(&s->log, s->loop, out[0]);
        if (rc < 0)
            LOG_WARN("GW-SUP-LOG", "%s: its output is lost: %s", c->name, uv_strerror(rc));
    }
    LOG_INFO("GW-CHILD-START", "started %s (pid %d)", c->name, (int)pid);
    return 0;
}
