#include "proxy.h"
int tt_px_tunnel_open(void) { return tt_px_front_done(); }
