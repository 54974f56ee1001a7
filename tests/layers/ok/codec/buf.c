#include "buf.h"
#include <string.h>
int tt_buf_len(void) { return (int)strlen("buf"); }
