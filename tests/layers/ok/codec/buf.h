#include <stddef.h>
int tt_buf_len(void);
