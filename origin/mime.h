/*
 * Content-Type by file extension, for the --root file server.
 */
#ifndef TT_MIME_H
#define TT_MIME_H

#include <stddef.h>

/* Returns the media type for `name` (a file name or path) by its extension,
 * case-insensitive; "application/octet-stream" when unknown.  The string is
 * static. */
const char *tt_mime_type(const char *name);

/* 1 when a body of media type `type` is worth gzip'ing (text, scripts, JSON,
 * XML, SVG ...), 0 for media and archives that are already compressed. */
int tt_mime_compressible(const char *type);

#endif
