#include "x.h"
int tt_x(void) { return 0; }
