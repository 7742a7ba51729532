/* module.c - loading a business module with dlopen and checking it. */
#include "businessworker/worker_int.h"
#include "common/log.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

int module_load(gw_module_fns *m, const char *path)
{
    memset(m, 0, sizeof *m);
    m->path = path;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        LOG_ERROR("GW-MODULE", "cannot load business module %s: %s", path, dlerror());
        return -ENOEXEC;
    }
    const uint32_t *abi = dlsym(h, "gw_module_abi_version");
    if (abi == NULL) {
        LOG_ERROR("GW-MODULE",
                  "business module %s refused: missing symbol gw_module_abi_version "
                  "(put GW_MODULE_ABI; in the module, see include/gatewayworker.h)",
                  path);
        dlclose(h);
        return -ENOEXEC;
    }
    if (*abi != GW_ABI_VERSION) {
        LOG_ERROR("GW-MODULE",
                  "business module %s refused: built for module ABI %u, this worker speaks "
                  "ABI %u; rebuild it against this version's include/gatewayworker.h",
                  path, *abi, GW_ABI_VERSION);
        dlclose(h);
        return -ENOEXEC;
    }
    *(void **)&m->on_message = dlsym(h, "on_message");
    if (m->on_message == NULL) {
        LOG_ERROR("GW-MODULE",
                  "business module %s refused: missing symbol on_message (every module must "
                  "define void on_message(const char *client_id, const char *data, size_t len))",
                  path);
        dlclose(h);
        return -ENOEXEC;
    }
    *(void **)&m->on_worker_start = dlsym(h, "on_worker_start");
    *(void **)&m->on_worker_stop = dlsym(h, "on_worker_stop");
    *(void **)&m->on_connect = dlsym(h, "on_connect");
    *(void **)&m->on_websocket_connect = dlsym(h, "on_websocket_connect");
    *(void **)&m->on_close = dlsym(h, "on_close");
    m->handle = h;
    LOG_INFO("GW-MODULE", "business module %s loaded (ABI %u)", path, GW_ABI_VERSION);
    return 0;
}
