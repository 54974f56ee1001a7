#include "proto/tls.h"
#include "llhttp.h"
int tt_px_front(void) { return tt_tls_up(); }
