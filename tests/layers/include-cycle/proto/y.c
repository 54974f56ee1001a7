#include "x.h"
int tt_y(void) { return 1; }
