/* A file over the limit on purpose.
 * size: one state machine over one private struct, split only by exposing it
 */
#include "buf.h"
int tt_big(void) { return tt_buf_len(); }
