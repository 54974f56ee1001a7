#include "origin/serve.h"
#include <zlib.h>
int tt_px_front(void) { return 2; }
