#include "common/wheel.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>

int wheel_init(wheel *w, uint64_t tick_ms, size_t nslots, uint64_t now_ms)
{
    memset(w, 0, sizeof *w);
    if (tick_ms == 0 || nslots == 0 || (nslots & (nslots - 1)) != 0 ||
        nslots > SIZE_MAX / sizeof(wheel_node *))
        return -EINVAL;
    w->slots = gw_calloc(nslots, sizeof(wheel_node *));
    if (w->slots == NULL)
        return -ENOMEM;
    w->mask = nslots - 1;
    w->tick_ms = tick_ms;
    w->cur = now_ms / tick_ms;
    w->now_ms = now_ms;
    return 0;
}

static void node_clear(wheel_node *n)
{
    n->next = NULL;
    n->pprev = NULL;
}

void wheel_deinit(wheel *w)
{
    if (w->slots) {
        for (uint64_t i = 0; i <= w->mask; i++) {
            wheel_node *n = w->slots[i];
            while (n) {
                wheel_node *next = n->next;
                node_clear(n);
                n = next;
            }
        }
        gw_free(w->slots);
    }
    memset(w, 0, sizeof *w);
}

static void list_push(wheel_node **head, wheel_node *n)
{
    n->next = *head;
    if (n->next)
        n->next->pprev = &n->next;
    *head = n;
    n->pprev = head;
}

static void list_unlink(wheel_node *n)
{
    *n->pprev = n->next;
    if (n->next)
        n->next->pprev = n->pprev;
    node_clear(n);
}

/* Slot for a deadline: its own tick, or the current one if that tick is past.
 * During an advance w->cur is already the advance's last tick, so a past deadline
 * added from a callback lands in a slot the next advance visits first. */
static wheel_node **slot_for(wheel *w, uint64_t deadline_ms)
{
    uint64_t t = deadline_ms / w->tick_ms;
    if (t < w->cur)
        t = w->cur;
    return &w->slots[t & w->mask];
}

void wheel_add(wheel *w, wheel_node *node, uint64_t deadline_ms)
{
    if (wheel_is_active(node))
        wheel_remove(w, node);
    node->deadline_ms = deadline_ms;
    list_push(slot_for(w, deadline_ms), node);
    w->count++;
}

void wheel_remove(wheel *w, wheel_node *node)
{
    if (!wheel_is_active(node))
        return;
    list_unlink(node);
    w->count--;
}

size_t wheel_advance(wheel *w, uint64_t now_ms, wheel_cb *cb, void *arg)
{
    if (w->slots == NULL || w->advancing)
        return 0;
    if (now_ms < w->now_ms)
        now_ms = w->now_ms;
    uint64_t first = w->cur;
    uint64_t last = now_ms / w->tick_ms;
    if (last - first > w->mask) /* a long gap: one revolution visits every slot */
        first = last - w->mask;
    w->cur = last;
    w->now_ms = now_ms;
    w->advancing = 1;

    size_t fired = 0;
    for (uint64_t t = first; t <= last; t++) {
        wheel_node **slot = &w->slots[t & w->mask];
        if (*slot == NULL)
            continue;
        /* Detach the slot into a local list: callbacks may add to this slot (the
         * node goes to the real slot and is not seen again in this pass) or remove
         * any node from the local list (pprev keeps that O(1) and safe). */
        wheel_node *pending = *slot;
        *slot = NULL;
        pending->pprev = &pending;
        while (pending) {
            wheel_node *n = pending;
            list_unlink(n);
            if (n->deadline_ms <= now_ms) {
                w->count--;
                fired++;
                cb(n, arg);
            } else {
                list_push(slot, n); /* a later revolution */
            }
        }
    }
    w->advancing = 0;
    return fired;
}

size_t wheel_count(const wheel *w)
{
    return w->count;
}

uint64_t wheel_next_deadline(const wheel *w)
{
    if (w->count == 0 || w->slots == NULL)
        return UINT64_MAX;
    /* The current slot may hold past deadlines and nodes of later revolutions:
     * take its exact minimum. A node in a later slot t has deadline >= t * tick. */
    uint64_t best = UINT64_MAX;
    for (const wheel_node *n = w->slots[w->cur & w->mask]; n; n = n->next)
        if (n->deadline_ms < best)
            best = n->deadline_ms;
    for (uint64_t t = w->cur + 1; t <= w->cur + w->mask; t++) {
        if (w->slots[t & w->mask]) {
            uint64_t lb = t * w->tick_ms;
            return lb < best ? lb : best;
        }
    }
    return best;
}
