/* libFuzzer: a client-role HTTP/2 connection with four requests open, fed
 * arbitrary bytes after the server's SETTINGS (see conn_common.h). */
#include "conn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run(TT_H2_CLIENT, data, size);
}
