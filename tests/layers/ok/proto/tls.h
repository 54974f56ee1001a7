#include <openssl/ssl.h>
#include "codec/buf.h"
int tt_tls_up(void);
