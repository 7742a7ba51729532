/* echo: sends every message back to the client that sent it. */
#include <gatewayworker.h>

GW_MODULE_ABI;

void on_message(const char *client_id, const char *data, size_t len)
{
    (void)client_id;
    gw_send_to_current_client_ex(data, len, gw_message_is_binary() ? GW_BINARY : 0);
}
