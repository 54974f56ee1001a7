#include "proto/tls.h"
#include <zlib.h>
#include <math.h>
int tt_fs_open(void) { return tt_tls_up(); }
