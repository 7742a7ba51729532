/* hist.h - a log-linear latency histogram (HdrHistogram's layout, fixed precision).
 *
 * Values are unsigned 64-bit (the load generator records nanoseconds). Values below
 * 128 have their own bucket; above, every power-of-two range is cut into 64 equal
 * buckets, so a reported percentile is within 1/64 (1.6%) of the true value. Values
 * of 2^40 and more (about 18 minutes in ns) are recorded as 2^40 - 1. count, sum, min
 * and max are exact. A zeroed hist is an empty histogram; no allocation, no I/O, one
 * thread at a time (merge per-thread histograms with hist_merge).
 */
#ifndef GW_BENCH_HIST_H
#define GW_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* 128: exact values below this */
#define HIST_HALF (HIST_SUB / 2)       /* 64 buckets per power of two above */
#define HIST_MAX_BITS 40
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_BITS - HIST_SUB_BITS) * HIST_HALF)

typedef struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min; /* meaningful when count > 0 */
    uint64_t max;
    uint64_t buckets[HIST_BUCKETS];
} hist;

/* Empties h. */
void hist_reset(hist *h);

/* Adds one value. O(1). */
static inline void hist_record(hist *h, uint64_t v);

/* Adds every value of src (read only) to dst. */
void hist_merge(hist *dst, const hist *src);

/* The value at percentile p (0 < p <= 100): the upper bound of the bucket holding the
 * ceil(p% x count)-th smallest value, clamped to [min, max]. 0 for an empty histogram. */
uint64_t hist_percentile(const hist *h, double p);

/* Mean of the recorded values (0 when empty). */
double hist_mean(const hist *h);

/* ---- inline implementation ---- */

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    if (v >> HIST_MAX_BITS)
        v = ((uint64_t)1 << HIST_MAX_BITS) - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (HIST_SUB_BITS - 1); /* v >> shift is in [64, 128) */
    return HIST_SUB + (shift - 1) * HIST_HALF + (unsigned)((v >> shift) - HIST_HALF);
}

static inline void hist_record(hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->buckets[hist_index(v)]++;
}

#endif
