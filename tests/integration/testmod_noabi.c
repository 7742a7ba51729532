/* testmod_noabi.c - an invalid business module: no GW_MODULE_ABI.
 * gw-businessworker must refuse it (test_startup.py). */
#include <gatewayworker.h>

void on_message(const char *client_id, const char *data, size_t len)
{
    (void)client_id;
    gw_send_to_current_client(data, len);
}
