#include "y.h"
int tt_x(void);
