/* gwclient.h - libgwclient: reach a GatewayWorker-C cluster from any program
 * (a web backend pushing a notification, a cron job counting who is online):
 * GatewayWorker's GatewayClient, in C.
 *
 *     gw_client_options o = {.registers = (const char *[]){"127.0.0.1:1238"},
 *                            .n_registers = 1};
 *     char err[256];
 *     if (gw_client_init(&o, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); ... }
 *     gw_send_to_uid("42", "hello", 5);
 *     const gw_result *r = gw_wait(gw_get_all_client_count(NULL, NULL), 0);
 *     gw_client_close();   // sends what is queued, then disconnects
 *
 * After gw_client_init, the functions of gatewayworker.h that address clients
 * work as in a business worker: sends, close/destroy, uids, groups, sessions and
 * queries (collect them with gw_wait, or pass a callback and run the loop with
 * gw_client_run). The *_current_client functions return GW_ENOCONTEXT. Unlike a
 * worker, a client sends uid/group messages to every gateway (it keeps no
 * presence index). Sends return once the message is queued; gw_client_flush or
 * gw_client_close waits until it was handed to the gateways.
 *
 * The client finds the gateways through the registers and receives answers on an
 * inbox of its own (a free TCP port on lan_ip, which the gateways must be able to
 * reach). One client per process; not thread-safe; calls block for at most the
 * timeouts given.
 */
#ifndef GWCLIENT_H
#define GWCLIENT_H

#include <gatewayworker.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gw_client_options {
    const char *const *registers; /* "ip:port" of the registers (at least one) */
    size_t n_registers;
    const char *secret_key; /* the cluster's secret_key, or NULL/"" */
    const char *lan_ip;     /* IPv4 the gateways answer to (default 127.0.0.1) */
    double timeout;         /* seconds: discovery and query deadline (default 5) */
    size_t max_message_size; /* default 1048576, as gateway.max_message_size */
} gw_client_options;

/* Connects to the cluster and waits (at most timeout) until the registers have
 * named at least one gateway. Returns 0; GW_EINVAL for bad options;
 * GW_EUNREACHABLE when no register answered or no gateway is up (err says which);
 * or a negative errno. */
int gw_client_init(const gw_client_options *opts, char *err, size_t errlen);
/* Gateways currently known. */
int gw_client_gateway_count(void);
/* Writes "ip:port" of known gateway i (0-based) into out; 0 or GW_EINVAL. */
int gw_client_gateway_addr(int i, char *out, size_t outlen);
/* Runs the client's loop for `seconds` (query callbacks run here). */
void gw_client_run(double seconds);
/* Waits until every queued command was handed to the gateways, at most
 * `seconds`. 0, or GW_EUNREACHABLE if some could not be sent in time. */
int gw_client_flush(double seconds);
/* Flushes (at most the timeout given at init), then closes everything. */
void gw_client_close(void);

#ifdef __cplusplus
}
#endif

#endif
