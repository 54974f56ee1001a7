/* libFuzzer: a server-role HTTP/2 connection fed arbitrary bytes after a
 * valid preface and SETTINGS (see conn_common.h). */
#include "conn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run(TT_H2_SERVER, data, size);
}
