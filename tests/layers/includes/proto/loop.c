#include "loop.h"
int tt_loop(void) { return 1; }
