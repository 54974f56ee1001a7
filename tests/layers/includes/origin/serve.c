#include "serve.h"
#include "../tests/helper.h"
#include <someday/unknown.h>
int tt_serve(void) { return 3; }
