#include "text.h"

#include <strings.h>

static int text_ows(char c) { return c == ' ' || c == '\t'; }

int tt_list_next(const char *list, size_t len, size_t *pos, const char **el, size_t *el_len)
{
    size_t i = *pos;
    for (;;) {
        while (i < len && (text_ows(list[i]) || list[i] == ','))
            i++;
        if (i >= len) {
            *pos = len;
            return 0;
        }
        size_t st = i;
        while (i < len && list[i] != ',')
            i++;
        size_t en = i;
        while (en > st && text_ows(list[en - 1]))
            en--;
        if (en > st) {
            *pos = i;
            *el = list + st;
            *el_len = en - st;
            return 1;
        }
    }
}

int tt_list_has(const char *list, size_t len, const char *tok, size_t tok_len)
{
    size_t pos = 0, n;
    const char *el;
    while (tt_list_next(list, len, &pos, &el, &n)) {
        size_t name = 0;
        while (name < n && el[name] != ';')
            name++;
        while (name > 0 && text_ows(el[name - 1]))
            name--;
        if (name == tok_len && strncasecmp(el, tok, tok_len) == 0)
            return 1;
    }
    return 0;
}

int tt_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char *tt_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return status < 200   ? "Informational"
           : status < 300 ? "OK"
           : status < 400 ? "Redirect"
           : status < 500 ? "Client Error"
                          : "Server Error";
}
