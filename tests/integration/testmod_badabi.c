/* testmod_badabi.c - an invalid business module: built for another module ABI.
 * gw-businessworker must refuse it (test_startup.py). */
#include <gatewayworker.h>

GW_EXPORT const uint32_t gw_module_abi_version = GW_ABI_VERSION + 1000u;

void on_message(const char *client_id, const char *data, size_t len)
{
    (void)client_id;
    gw_send_to_current_client(data, len);
}
