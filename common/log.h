/* log.h - the one logging module.
 *
 * Every line: "2026-11-26T16:30:00.123Z <role>[<pid>] <LEVEL> <ID> <message>".
 * ID is a stable identifier of a notable event ("GW-AUTH-FAIL") or "-".
 * Lines go to stderr, or to a file opened with gw_log_open_file (reopened by
 * gw_log_reopen, e.g. on SIGHUP, for logrotate). Writes are one write(2) per line,
 * so several processes may share a file. Never blocks beyond that write.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdint.h>

enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO = 1,
    GW_LOG_WARN = 2,
    GW_LOG_ERROR = 3,
    GW_LOG_OFF = 4,
};

/* Sets the role tag (copied, truncated to 31 chars) and the minimum level. */
void gw_log_init(const char *role, int level);
void gw_log_set_level(int level);
int gw_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns the level or -1. */
int gw_log_level_parse(const char *name);
/* Appends to path from now on (NULL: back to stderr). Returns 0 or -errno. */
int gw_log_open_file(const char *path);
/* Reopens the current file (after rotation by an outside tool). */
int gw_log_reopen(void);

void gw_log_write(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern int gw_log_level_min;

#define GW_LOG(level, id, ...)                                                                     \
    do {                                                                                           \
        if ((level) >= gw_log_level_min)                                                           \
            gw_log_write((level), (id), __VA_ARGS__);                                              \
    } while (0)
#define LOG_DEBUG(...) GW_LOG(GW_LOG_DEBUG, "-", __VA_ARGS__)
#define LOG_INFO(id, ...) GW_LOG(GW_LOG_INFO, id, __VA_ARGS__)
#define LOG_WARN(id, ...) GW_LOG(GW_LOG_WARN, id, __VA_ARGS__)
#define LOG_ERROR(id, ...) GW_LOG(GW_LOG_ERROR, id, __VA_ARGS__)

/* Rate limiting for lines that input from outside can trigger: at most `burst`
 * lines per `period_ms`; the next line after a suppressed run says how many were
 * suppressed. Embed one gw_ratelimit per call site (static is fine). */
typedef struct gw_ratelimit {
    uint64_t window_start_ms;
    uint32_t in_window;
    uint32_t suppressed;
} gw_ratelimit;

/* Returns 1 when the caller should log now; *suppressed gets the number of lines
 * dropped since the last allowed one (0 usually). */
int gw_ratelimit_allow(gw_ratelimit *rl, uint32_t burst, uint32_t period_ms, uint32_t *suppressed);

#define LOG_RL(level, id, ...)                                                                     \
    do {                                                                                           \
        static gw_ratelimit rl_;                                                                   \
        uint32_t sup_;                                                                             \
        if ((level) >= gw_log_level_min && gw_ratelimit_allow(&rl_, 10, 1000, &sup_)) {            \
            if (sup_)                                                                              \
                gw_log_write((level), (id), "(%u similar lines suppressed)", sup_);                \
            gw_log_write((level), (id), __VA_ARGS__);                                              \
        }                                                                                          \
    } while (0)

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
uint64_t gw_now_ms(void);

#endif
