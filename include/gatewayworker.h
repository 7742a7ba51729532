/* gatewayworker.h - the API of GatewayWorker-C business modules.
 *
 * A business module is a shared library loaded by gw-businessworker. It declares
 * the ABI it was built for and defines event callbacks; gateways deliver each
 * client's events to one worker process, in order:
 *
 *     #include <gatewayworker.h>
 *     GW_MODULE_ABI;
 *
 *     void on_message(const char *client_id, const char *data, size_t len)
 *     {
 *         gw_send_to_current_client(data, len);   // echo
 *     }
 *
 * Callbacks (only on_message is required; define the others as needed, with
 * exactly these names and signatures):
 *
 *   void on_worker_start(void);       once, after the module is loaded
 *   void on_worker_stop(void);        once, before the worker exits
 *   void on_connect(const char *client_id);
 *                                     a client connected: text/frame clients when the
 *                                     TCP connection is accepted, WebSocket clients
 *                                     when their upgrade request arrived (messages
 *                                     sent now are delivered after the 101)
 *   void on_websocket_connect(const char *client_id, const gw_request *req);
 *                                     a WebSocket handshake was accepted
 *   void on_message(const char *client_id, const char *data, size_t len);
 *                                     a complete message (data is not NUL-terminated
 *                                     for binary messages; for text it is followed by
 *                                     a NUL byte not counted in len)
 *   void on_close(const char *client_id);
 *                                     the connection is gone; the session is still
 *                                     readable (read-only). When a gateway process
 *                                     dies, the worker that had a client's events
 *                                     runs on_close for it once the gateway leaves
 *                                     the cluster (cluster.node_timeout later)
 *
 * client_id is 20 lowercase hex characters (GatewayWorker's format): gateway LAN
 * IPv4, gateway inbox port and connection number. It is valid during the call;
 * copy it to keep it.
 *
 * Threading: every callback runs on the worker's single event-loop thread; every
 * gw_* function must be called from that thread (callbacks, gw_timer callbacks,
 * or libuv handles on gw_loop()). No gw_* function blocks unless its name ends in
 * _sync. Strings passed in are copied before the call returns (the caller keeps
 * ownership); returned strings are owned by the worker and valid until the next
 * gw_* call unless said otherwise.
 *
 * Return values: 0 = done (for sends: queued to the gateway, not delivered),
 * positive GW_E* = an expected error the caller may handle, negative = a system
 * error (-ENOMEM). gw_strerror() describes any of them.
 */
#ifndef GATEWAYWORKER_H
#define GATEWAYWORKER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised whenever a change breaks modules built against an older header. */
#define GW_ABI_VERSION 1u

#define GW_EXPORT __attribute__((visibility("default")))

/* Put once in a module's source (at file scope). */
#define GW_MODULE_ABI GW_EXPORT const uint32_t gw_module_abi_version = GW_ABI_VERSION

/* The callbacks a module may define (declared here so that they are exported
 * even when the module is built with -fvisibility=hidden). */
typedef struct gw_request gw_request;
GW_EXPORT void on_worker_start(void);
GW_EXPORT void on_worker_stop(void);
GW_EXPORT void on_connect(const char *client_id);
GW_EXPORT void on_websocket_connect(const char *client_id, const gw_request *req);
GW_EXPORT void on_message(const char *client_id, const char *data, size_t len);
GW_EXPORT void on_close(const char *client_id);

/* Expected errors (positive). */
enum gw_error {
    GW_OK = 0,
    GW_EINVAL = 1,       /* malformed argument (client_id not 20 hex chars, NULL data, ...) */
    GW_ETOOBIG = 2,      /* message larger than gateway.max_message_size */
    GW_EUTF8 = 3,        /* text message that is not valid UTF-8 (send it with GW_BINARY) */
    GW_EUNREACHABLE = 4, /* the client's gateway is not (or no longer) in the cluster */
    GW_ENOCONTEXT = 5,   /* a *_current_client call outside an event callback */
    GW_EREADONLY = 6,    /* a session change in on_close */
    GW_ENOQUERY = 7,     /* gw_wait on an unknown or already collected query */
};

/* Flags of the *_ex send functions. */
#define GW_BINARY 0x1u /* WebSocket binary frame (default: text, which must be UTF-8) */
#define GW_RAW 0x2u    /* bytes written to the socket as they are, without framing */

/* Text for a return value of any gw_* function. Never NULL. */
const char *gw_strerror(int err);

/* ---- the current event -------------------------------------------------- */

typedef struct gw_client {
    const char *client_id;   /* 20 hex chars */
    const char *remote_addr; /* client IP as text (IPv4 or IPv6) */
    uint16_t remote_port;
    const char *gateway_addr; /* gateway LAN IP */
    uint16_t gateway_port;    /* the client listener's port (GatewayWorker's GATEWAY_PORT) */
    const char *protocol;     /* "websocket", "text" or "frame" */
} gw_client;

/* The client of the event being handled, or NULL outside an event callback. */
const gw_client *gw_current_client(void);
/* 1 when the message being handled arrived as a WebSocket binary frame. */
int gw_message_is_binary(void);

/* The session of the current client: a JSON object kept by its gateway
 * (GatewayWorker's $_SESSION). Change it in place; after the callback returns the
 * changed keys are merged into the gateway's copy (keys you removed are removed),
 * and the next event of this client sees them. In on_close it is read-only. NULL
 * outside an event. The object is owned by the worker (do not decref). */
json_t *gw_session(void);

/* The WebSocket upgrade request given to on_websocket_connect. Strings are
 * NUL-terminated and valid during the callback; NULL when absent. */
const char *gw_request_method(const gw_request *r);
const char *gw_request_uri(const gw_request *r);          /* path and query as sent */
const char *gw_request_path(const gw_request *r);         /* "/chat" */
const char *gw_request_query_string(const gw_request *r); /* "a=1&b=2" (raw) */
/* A query parameter, percent-decoded ($_GET). */
const char *gw_request_get(const gw_request *r, const char *name);
/* A header by name, case-insensitive. */
const char *gw_request_header(const gw_request *r, const char *name);
/* A cookie by name. */
const char *gw_request_cookie(const gw_request *r, const char *name);
/* Everything as one JSON object: {"method","uri","path","query","get":{},
 * "headers":{lower-case names},"cookies":{}} (borrowed, read-only). */
const json_t *gw_request_json(const gw_request *r);

/* ---- sending -------------------------------------------------------------- */

/* Sends a message to one client (text frame on WebSocket). */
int gw_send_to_client(const char *client_id, const void *data, size_t len);
int gw_send_to_client_ex(const char *client_id, const void *data, size_t len, unsigned flags);
/* Sends to the client of the current event. GW_ENOCONTEXT outside an event. */
int gw_send_to_current_client(const void *data, size_t len);
int gw_send_to_current_client_ex(const void *data, size_t len, unsigned flags);

/* Sends to every client of the cluster, or only to the n_ids clients in
 * client_ids (when client_ids is not NULL), skipping the n_exclude clients in
 * exclude (may be NULL). Each gateway frames the message once and writes the same
 * bytes to all its recipients. */
int gw_send_to_all(const void *data, size_t len, const char *const *client_ids, size_t n_ids,
                   const char *const *exclude, size_t n_exclude);
int gw_send_to_all_ex(const void *data, size_t len, const char *const *client_ids, size_t n_ids,
                      const char *const *exclude, size_t n_exclude, unsigned flags);

/* Closes a client gracefully: sends `last_message` (may be NULL/0) if given, then
 * a WebSocket close frame (1000), then closes the connection once written. */
int gw_close_client(const char *client_id, const void *last_message, size_t len);
/* As gw_close_client with a WebSocket close code (1000-1003, 1007-1014, 3000-4999). */
int gw_close_client_ex(const char *client_id, const void *last_message, size_t len,
                       uint16_t code, unsigned flags);
int gw_close_current_client(const void *last_message, size_t len);
/* Closes a client at once, dropping whatever is still queued for it. */
int gw_destroy_client(const char *client_id);
int gw_destroy_current_client(void);

/* Sends to every client bound to one of the uids (each client once, also when it
 * matches several). Goes only to gateways that hold one of the uids. */
int gw_send_to_uid(const char *uid, const void *data, size_t len);
int gw_send_to_uids_ex(const char *const *uids, size_t n_uids, const void *data, size_t len,
                       unsigned flags);
/* Sends to every member of the group(s), each client once, skipping the clients
 * in exclude (may be NULL). Goes only to gateways that hold members. */
int gw_send_to_group(const char *group, const void *data, size_t len);
int gw_send_to_groups_ex(const char *const *groups, size_t n_groups, const void *data,
                         size_t len, const char *const *exclude, size_t n_exclude,
                         unsigned flags);

/* ---- uids and groups ------------------------------------------------------- */

/* A uid or group is any UTF-8 string of 1..1024 bytes ("0" included). */

/* Binds the client to uid (a client has at most one uid, replaced by a new bind;
 * a uid may have many clients). */
int gw_bind_uid(const char *client_id, const char *uid);
/* Unbinds the client from uid, if that is its uid. */
int gw_unbind_uid(const char *client_id, const char *uid);
int gw_join_group(const char *client_id, const char *group);
int gw_leave_group(const char *client_id, const char *group);
/* Removes every member from the group (they stay connected). */
int gw_ungroup(const char *group);

/* ---- sessions of any client ------------------------------------------------ */

/* Replaces the client's session with `session` (a JSON object, not stolen). */
int gw_set_session(const char *client_id, const json_t *session);
/* Merges `patch` into the client's session at its gateway (RFC 7396: a null
 * value removes a key, objects merge recursively), so concurrent updates of
 * different keys from different workers never overwrite each other. */
int gw_update_session(const char *client_id, const json_t *patch);

/* ---- queries ----------------------------------------------------------------- */

/* Queries ask the gateways and complete when every gateway asked has answered, or
 * at the deadline (businessworker.query_timeout, default 5 s). They return a query
 * id (> 0), or a negative GW_E* / errno value. The result goes to `cb` (called
 * later from the loop, never from inside the call) or, when cb is NULL, is
 * collected with gw_wait(). */
typedef struct gw_result {
    int complete;      /* 1 when every gateway asked has answered */
    unsigned asked;    /* gateways asked */
    unsigned answered; /* gateways that answered before the deadline */
    const json_t *value; /* the result (borrowed: valid during the callback, or until
                            the next gw_wait / the end of the current callback) */
} gw_result;
typedef void (*gw_result_cb)(const gw_result *r, void *arg);

/* Blocks until query `id` (started with cb NULL) completes, or `timeout` seconds
 * (0: until the query's own deadline). Other clients' events wait meanwhile, and
 * run in order afterwards. NULL for an unknown id. */
const gw_result *gw_wait(long id, double timeout);

long gw_is_online(const char *client_id, gw_result_cb cb, void *arg);         /* true/false */
long gw_get_session(const char *client_id, gw_result_cb cb, void *arg);       /* object/null */
long gw_get_uid_by_client_id(const char *client_id, gw_result_cb cb, void *arg); /* string/null */
long gw_get_all_client_count(gw_result_cb cb, void *arg);                     /* integer */
long gw_get_client_count_by_group(const char *group, gw_result_cb cb, void *arg); /* integer */
long gw_get_all_client_id_list(gw_result_cb cb, void *arg);                   /* [client_id] */
long gw_get_client_id_list_by_group(const char *group, gw_result_cb cb, void *arg);
long gw_get_all_client_sessions(gw_result_cb cb, void *arg);       /* {client_id: session} */
long gw_get_client_sessions_by_group(const char *group, gw_result_cb cb, void *arg);
long gw_get_client_id_by_uid(const char *uid, gw_result_cb cb, void *arg);   /* [client_id] */
long gw_is_uid_online(const char *uid, gw_result_cb cb, void *arg);          /* true/false */
long gw_get_all_uid_list(gw_result_cb cb, void *arg);                        /* [uid] */
long gw_get_all_uid_count(gw_result_cb cb, void *arg);                       /* integer */
long gw_get_uid_list_by_group(const char *group, gw_result_cb cb, void *arg); /* [uid] */
long gw_get_uid_count_by_group(const char *group, gw_result_cb cb, void *arg); /* integer */
long gw_get_all_group_id_list(gw_result_cb cb, void *arg);                   /* [group] */
long gw_get_all_group_uid_list(gw_result_cb cb, void *arg);         /* {group: [uid]} */
long gw_get_all_group_client_id_list(gw_result_cb cb, void *arg);   /* {group: [client_id]} */
/* Every client with what an operator wants to see: [{"client_id", "gateway",
 * "remote", "remote_port", "protocol", "uid", "groups", "idle_ms" (since its last
 * message), "send_queue" (bytes waiting)}]. */
long gw_get_connections(gw_result_cb cb, void *arg);
/* Batch forms (GatewayClient's): one round trip for many uids / groups. */
long gw_batch_get_client_id_by_uid(const char *const *uids, size_t n, gw_result_cb cb,
                                   void *arg);                      /* {uid: [client_id]} */
long gw_batch_get_client_count_by_group(const char *const *groups, size_t n, gw_result_cb cb,
                                        void *arg);                 /* {group: count} */

/* ---- the worker ----------------------------------------------------------------- */

/* In on_websocket_connect, when gateway.websocket_auth is on: refuse the
 * handshake with an HTTP status (400-599) and a short reason instead of 101.
 * GW_ENOCONTEXT elsewhere. */
int gw_websocket_reject(int status, const char *reason);

/* This worker's index among the businessworker processes of its host (0-based). */
int gw_worker_id(void);
/* businessworker.module_config from the configuration (a JSON object; borrowed). */
const json_t *gw_module_config(void);

/* Timers on the worker's loop. Returns an id > 0, or a negative error. A repeating
 * timer fires every `seconds` until gw_timer_del. The callback may call any gw_*
 * function (there is no current client inside it). */
typedef void (*gw_timer_cb)(void *arg);
long gw_timer_add(double seconds, int repeat, gw_timer_cb cb, void *arg);
/* Cancels a timer; 0, or GW_EINVAL for an unknown id. */
int gw_timer_del(long id);

/* The worker's libuv loop (uv_loop_t *), for modules that do their own I/O. Never
 * block it: every client of this worker waits while a callback runs. */
void *gw_loop(void);

#ifdef __cplusplus
}
#endif

#endif
