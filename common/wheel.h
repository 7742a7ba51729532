/* wheel.h - a hashed timing wheel for per-connection deadlines (heartbeats).
 *
 * The wheel has nslots slots of tick_ms each (one revolution = nslots * tick_ms);
 * a node with deadline d sits in slot (d / tick_ms) mod nslots, or in the current
 * slot if d is already past. Add and remove are O(1); wheel_advance visits the
 * slots of the ticks elapsed since the previous advance (at most one revolution,
 * however long the gap) and fires every node whose deadline <= now. Nodes further
 * than one revolution ahead share slots with nearer ones and are skipped until
 * their turn (one check per revolution).
 *
 * Guarantees: a node never fires before its deadline, and fires at the first
 * wheel_advance with now_ms >= its deadline (so lateness is only the spacing of
 * advance calls; with a periodic timer of tick_ms, at most one tick).
 *
 * Nodes are intrusive (embed a wheel_node in the connection) and owned by the
 * caller; the wheel only links them. Single-threaded, non-blocking. Times are in
 * milliseconds of any monotonic clock (uv_now), as uint64_t.
 */
#ifndef GW_WHEEL_H
#define GW_WHEEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct wheel_node {
    struct wheel_node *next;
    struct wheel_node **pprev; /* NULL when not in a wheel */
    uint64_t deadline_ms;
} wheel_node;

typedef struct wheel {
    wheel_node **slots;
    uint64_t mask; /* nslots - 1 */
    uint64_t tick_ms;
    uint64_t cur;    /* tick of the last advance: the first slot the next one visits */
    uint64_t now_ms; /* now_ms of the last advance (or of init) */
    size_t count;    /* nodes in the wheel */
    int advancing;   /* inside wheel_advance */
} wheel;

/* Fired node callback: the node is already out of the wheel. */
typedef void wheel_cb(wheel_node *node, void *arg);

/* Sets up an empty wheel at time now_ms. nslots must be a power of two (>= 1),
 * tick_ms >= 1. Returns 0, -EINVAL or -ENOMEM (w then zeroed). Intended use:
 * tick 50 ms, 4096 slots (a revolution of 204.8 s). */
int wheel_init(wheel *w, uint64_t tick_ms, size_t nslots, uint64_t now_ms);
/* Unlinks every node still in the wheel (they become inactive, nothing fires)
 * and frees the slots; leaves w zeroed. Safe on a zeroed wheel and twice. Not
 * from inside a wheel callback. */
void wheel_deinit(wheel *w);

/* Puts node in the wheel to fire at deadline_ms; if it is already in the wheel it
 * is moved (rescheduled). A deadline at or before the last advance's time fires at
 * the next advance. O(1). May be called from a wheel callback. */
void wheel_add(wheel *w, wheel_node *node, uint64_t deadline_ms);
/* Takes node out of the wheel; a no-op when it is not in one (a zeroed node, or a
 * node already fired or removed). O(1). May be called from a wheel callback, on
 * any node. */
void wheel_remove(wheel *w, wheel_node *node);
/* 1 if node is in a wheel, 0 otherwise. */
static inline int wheel_is_active(const wheel_node *node)
{
    return node->pprev != NULL;
}

/* Fires every node whose deadline <= now_ms: each is removed, then cb(node, arg)
 * runs. cb may add or remove any node (itself included, in any slot); a node it
 * adds with a deadline <= now_ms fires in this call or the next one. Work is
 * bounded by one revolution of slots plus the nodes in them, whatever the gap
 * since the last call. A now_ms earlier than the last advance's is treated as
 * equal to it. Not re-entrant: a call from inside cb returns 0 and does nothing.
 * Returns the number of nodes fired. */
size_t wheel_advance(wheel *w, uint64_t now_ms, wheel_cb *cb, void *arg);

/* Nodes in the wheel. */
size_t wheel_count(const wheel *w);
/* A lower bound of the earliest deadline in the wheel (a deadline already due
 * gives a value <= the last advance's time), or UINT64_MAX when empty. It may be
 * earlier than the true earliest deadline, never later: arm the timer for it and
 * advance. O(nslots) worst case. */
uint64_t wheel_next_deadline(const wheel *w);

#endif
