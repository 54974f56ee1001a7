#include <stdint.h>
#include "proto/loop.h"
#include <openssl/ssl.h>
int tt_frame(void) { return 0; }
