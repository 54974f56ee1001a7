#include "tls.h"
#include <sys/socket.h>
int tt_tls_up(void) { return tt_buf_len(); }
