#include "proxy.h"
int tt_px_front_done(void) { return 0; }
int tt_px_front_go(void) { return tt_px_tunnel_open(); }
