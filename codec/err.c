#include "err.h"

const char *tt_strerror(int err)
{
    switch (err) {
    case TT_OK:
        return "success";
#define TT_ERR_CASE(name, val, msg)                                            \
    case TT_ERR_##name:                                                        \
        return msg;
        TT_ERR_MAP(TT_ERR_CASE)
#undef TT_ERR_CASE
    }
    return "unknown error";
}

const char *tt_h2_strerror(unsigned code)
{
    static const char *const names[] = {
        "NO_ERROR",       "PROTOCOL_ERROR",      "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
        "FRAME_SIZE_ERROR", "REFUSED_STREAM",    "CANCEL",
        "COMPRESSION_ERROR", "CONNECT_ERROR",    "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
    };
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}
