/* api.h - the asking side of the Gateway API, shared by the business worker and
 * libgwclient: commands to gateways (sends, closes, membership, sessions), the
 * presence index that targets uid/group sends, and queries with deadlines.
 *
 * One gw_api per process (the public gw_* functions of include/gatewayworker.h
 * use gw_api_self). Single-threaded: the loop thread only.
 */
#ifndef GW_API_H
#define GW_API_H

#include "common/cluster.h"
#include "common/config.h"
#include "common/smap.h"

#include <jansson.h>
#include <uv.h>

typedef struct gw_api gw_api;
typedef struct gw_query gw_query;

typedef struct gw_api_stats {
    uint64_t commands_out;
    uint64_t send_errors;
    uint64_t queries;
    uint64_t queries_incomplete; /* completed at the deadline without every answer */
    uint64_t replies_late;       /* replies for queries already completed */
    uint64_t query_us_total;     /* summed time from start to completion (µs) */
    uint64_t query_us_max;       /* longest query since start (µs) */
} gw_api_stats;

struct gw_api {
    uv_loop_t *loop;
    cluster *cl;
    size_t max_message;
    uint64_t query_timeout_ms;
    int use_index;  /* target uid/group sends with the presence index (workers) */
    int autoflush;  /* send at once instead of at the end of the loop iteration */
    smap presence;  /* "ip:port" of a gateway -> its presence (uids, groups) */
    /* The event being handled (business worker only). */
    int ev_active;
    const char *ev_client_id;
    cluster_peer *ev_gateway; /* the current client's gateway and connection number */
    uint32_t ev_conn;
    /* gw_set_session/gw_update_session on the current client go through this
     * hook (the worker applies them to the session view, written back in order
     * after the callback). Returns a gw_* result. May be NULL. */
    int (*session_hook)(gw_api *a, const json_t *value, int merge);
    /* Called before a query is sent (may be NULL): the worker writes back the
     * current client's session changes so the query sees them. */
    void (*before_query)(gw_api *a);
    smap queries; /* decimal id -> gw_query */
    uint32_t next_query_id;
    gw_query *collected; /* result of the last gw_wait, freed at the next one */
    gw_api_stats stats;
};

extern gw_api *gw_api_self;

/* Prepares the API over a started cluster (borrowed). Becomes gw_api_self. */
int gw_api_init(gw_api *a, uv_loop_t *loop, cluster *cl, const gw_config *cfg, int use_index);
/* Completes pending queries as incomplete (callbacks not called) and frees
 * everything. */
void gw_api_deinit(gw_api *a);
/* Frames the API owns (REPLY, IDX): returns 1 when handled. */
int gw_api_on_frame(gw_api *a, const gwp_sender *from, const gwp_frame *f);
/* A gateway left: forget its presence, stop waiting for its answers. */
void gw_api_on_peer_down(gw_api *a, cluster_peer *p);
/* End of a module callback: frees a result collected by gw_wait inside it. */
void gw_api_event_end(gw_api *a);

/* For the worker: sends one frame, mapping errors to GW_* codes. */
int gw_api_send(gw_api *a, cluster_peer *gw, const gwp_frame *f);

#endif
