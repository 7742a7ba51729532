/* testmod_nomsg.c - an invalid business module: GW_MODULE_ABI but no on_message.
 * gw-businessworker must refuse it (test_startup.py). */
#include <gatewayworker.h>

GW_MODULE_ABI;

void on_connect(const char *client_id)
{
    (void)client_id;
}
