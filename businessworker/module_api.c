/* module_api.c - the gw_* functions only a business worker has (the current event,
 * the handshake verdict, module facts, timers); the rest is in api/api.c. */
#include "businessworker/worker_int.h"
#include "common/alloc.h"
#include "common/clientid.h"
#include "common/log.h"
#include "common/mq.h"
#include "common/proto.h"
#include "common/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VISIBLE __attribute__((visibility("default")))

/* ---- current event ---- */

static const char *const proto_names[] = {"websocket", "text", "frame"};

VISIBLE const gw_client *gw_current_client(void)
{
    gw_worker *w = gw_worker_self;
    if (w == NULL || !w->ev.active)
        return NULL;
    ev_ctx *e = &w->ev;
    if (!e->client_ready) {
        /* Formatted on demand: most modules never look. */
        wire_info_addr(&e->info, e->remote_addr, sizeof e->remote_addr);
        mq_format_ipv4(e->gateway_addr, sizeof e->gateway_addr, e->gateway_ip);
        e->client = (gw_client){.client_id = e->client_id,
                                .remote_addr = e->remote_addr,
                                .remote_port = e->info.remote_port,
                                .gateway_addr = e->gateway_addr,
                                .gateway_port = e->info.gateway_port,
                                .protocol = proto_names[e->info.proto]};
        e->client_ready = 1;
    }
    return &e->client;
}

VISIBLE int gw_message_is_binary(void)
{
    gw_worker *w = gw_worker_self;
    return w && w->ev.active && w->ev.cmd == GWP_EV_MESSAGE && w->ev.binary;
}

static const char *obj_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

VISIBLE const char *gw_request_method(const gw_request *r)
{
    return obj_str(r->root, "method");
}

VISIBLE const char *gw_request_uri(const gw_request *r)
{
    return obj_str(r->root, "uri");
}

VISIBLE const char *gw_request_path(const gw_request *r)
{
    return obj_str(r->root, "path");
}

VISIBLE const char *gw_request_query_string(const gw_request *r)
{
    return obj_str(r->root, "query");
}

VISIBLE const char *gw_request_get(const gw_request *r, const char *name)
{
    return obj_str(json_object_get(r->root, "get"), name);
}

VISIBLE const char *gw_request_header(const gw_request *r, const char *name)
{
    const json_t *h = json_object_get(r->root, "headers");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)h, key, v)
    {
        if (strcasecmp(key, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

VISIBLE const char *gw_request_cookie(const gw_request *r, const char *name)
{
    return obj_str(json_object_get(r->root, "cookies"), name);
}

VISIBLE const json_t *gw_request_json(const gw_request *r)
{
    return r->root;
}

VISIBLE int gw_websocket_reject(int status, const char *reason)
{
    gw_worker *w = gw_worker_self;
    if (w == NULL || !w->ev.active || w->ev.cmd != GWP_EV_WS_CONNECT)
        return GW_ENOCONTEXT;
    if (status < 400 || status > 599)
        return GW_EINVAL;
    w->ev.verdict = status;
    snprintf(w->ev.verdict_reason, sizeof w->ev.verdict_reason, "%s", reason ? reason : "");
    return 0;
}

/* ---- worker facts, timers, loop ---- */

VISIBLE int gw_worker_id(void)
{
    gw_worker *w = gw_worker_self;
    return w ? w->index : -1;
}

VISIBLE const json_t *gw_module_config(void)
{
    gw_worker *w = gw_worker_self;
    return w ? w->cfg->businessworker.module_config : NULL;
}

VISIBLE void *gw_loop(void)
{
    gw_worker *w = gw_worker_self;
    return w ? w->loop : NULL;
}

static void timer_unlink(gw_worker *w, gw_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        w->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static void timer_closed(uv_handle_t *h)
{
    gw_timer *t = container_of((uv_timer_t *)h, gw_timer, t);
    gw_worker *w = h->data;
    gw_free(t);
    if (w)
        worker_release(w);
}

static void timer_fire(uv_timer_t *h)
{
    gw_timer *t = container_of(h, gw_timer, t);
    gw_worker *w = gw_worker_self;
    gw_timer_cb cb = t->cb;
    void *arg = t->arg;
    if (!t->repeat) {
        timer_unlink(w, t);
        h->data = NULL;
        uv_close((uv_handle_t *)h, timer_closed);
    }
    cb(arg);
    if (w)
        gw_api_event_end(&w->api);
}

VISIBLE long gw_timer_add(double seconds, int repeat, gw_timer_cb cb, void *arg)
{
    gw_worker *w = gw_worker_self;
    if (w == NULL || w->stopping)
        return -GW_ENOCONTEXT;
    if (cb == NULL || !(seconds >= 0) || seconds > 1e9)
        return -GW_EINVAL;
    gw_timer *t = gw_calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    uv_timer_init(w->loop, &t->t);
    t->id = ++w->next_timer_id;
    t->repeat = repeat;
    t->cb = cb;
    t->arg = arg;
    uint64_t ms = (uint64_t)(seconds * 1000 + 0.5);
    uv_timer_start(&t->t, timer_fire, ms, repeat ? (ms ? ms : 1) : 0);
    t->next = w->timers;
    if (w->timers)
        w->timers->prev = t;
    w->timers = t;
    return t->id;
}

VISIBLE int gw_timer_del(long id)
{
    gw_worker *w = gw_worker_self;
    if (w == NULL)
        return GW_ENOCONTEXT;
    for (gw_timer *t = w->timers; t; t = t->next)
        if (t->id == id) {
            timer_unlink(w, t);
            t->t.data = NULL;
            uv_close((uv_handle_t *)&t->t, timer_closed);
            return 0;
        }
    return GW_EINVAL;
}

void api_timers_close_all(gw_worker *w)
{
    while (w->timers) {
        gw_timer *t = w->timers;
        timer_unlink(w, t);
        t->t.data = w;
        w->pending_closes++;
        uv_close((uv_handle_t *)&t->t, timer_closed);
    }
}
