/* bcast_module: the business module of `gw-bench broadcast`.
 *
 * A message that starts with "B:" (module_config {"prefix": "..."} changes it) is sent
 * to every client of the cluster except its sender, with gw_send_to_all: each gateway
 * frames it once and writes the same bytes to all its clients. Any other message is
 * echoed to its sender, so the same module serves `gw-bench echo` too.
 */
#include <gatewayworker.h>

#include <string.h>

GW_MODULE_ABI;

static char prefix[64] = "B:";
static size_t prefix_len = 2;

void on_worker_start(void)
{
    const json_t *cfg = gw_module_config();
    const char *p = json_string_value(json_object_get(cfg, "prefix"));
    if (p && strlen(p) < sizeof prefix) {
        strcpy(prefix, p);
        prefix_len = strlen(p);
    }
}

void on_message(const char *client_id, const char *data, size_t len)
{
    unsigned flags = gw_message_is_binary() ? GW_BINARY : 0;
    if (prefix_len && len >= prefix_len && memcmp(data, prefix, prefix_len) == 0) {
        const char *exclude[1] = {client_id};
        gw_send_to_all_ex(data, len, NULL, 0, exclude, 1, flags);
        return;
    }
    gw_send_to_current_client_ex(data, len, flags);
}
